"""User folders (app.paths), logging set-up (app.logsetup) and settings persistence (app.settings)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import pytest

from app import logsetup, paths, settings
from app.settings import SETTINGS_VERSION, Settings, load_settings, save_settings


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(paths.ENV_HOME, str(tmp_path / "home"))
    return tmp_path / "home"


def test_paths_follow_encotag_home_and_do_no_io(home: Path) -> None:
    assert paths.config_dir() == home / "config"
    assert paths.data_dir() == home / "data"
    assert paths.cache_dir() == home / "cache"
    assert paths.log_dir() == home / "logs"
    assert paths.heads_dir() == home / "data" / "heads"
    assert paths.settings_path() == home / "config" / "settings.json"
    assert not home.exists()  # computing paths creates nothing
    assert paths.heads_dir(ensure=True).is_dir()
    assert paths.cache_dir(ensure=True).is_dir()


def test_paths_default_to_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.ENV_HOME, raising=False)
    for folder in (paths.config_dir(), paths.data_dir(), paths.cache_dir(), paths.log_dir()):
        assert folder.is_absolute()
        assert "encotag" in folder.parts


def test_setup_logging_writes_file_and_is_idempotent(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    logsetup._remove_own_handlers(root)  # an earlier CLI test in this process may have installed ours
    before = list(root.handlers)
    try:
        log_file = logsetup.setup_logging(verbose=False, command="tag")
        logsetup.setup_logging(verbose=False, command="tag")
        own = [h for h in root.handlers if getattr(h, logsetup._MARK, False)]
        assert len(own) == 2  # one stderr + one file handler, not doubled by the second call
        assert log_file == home / "logs" / logsetup.LOG_FILE
        logging.getLogger("encotag.test").info("info line")
        logging.getLogger("encotag.test").warning("warning line")
        for handler in own:
            handler.flush()
        text = log_file.read_text(encoding="utf-8")
        assert "command=tag" in text and "info line" in text and "warning line" in text
        err = capsys.readouterr().err
        assert "warning line" in err and "info line" not in err
    finally:
        logsetup._remove_own_handlers(root)
        assert root.handlers == before


def test_setup_logging_survives_unwritable_log_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(paths.ENV_HOME, str(blocker))  # <file>/logs cannot be created
    try:
        assert logsetup.setup_logging(verbose=True, command=None) is None
        assert "cannot write the log file" in capsys.readouterr().err
    finally:
        logsetup._remove_own_handlers(logging.getLogger())


def test_round_trip(home: Path) -> None:
    original = Settings(
        input_device="USB Mic",
        window_s=2.0,
        hop_s=0.5,
        top_k=7,
        threshold=0.42,
        theme="dark",
        selected_tags=("Speech", "Music"),
        pack_path="/packs/x",
        head_path=None,
        last_open_dir="/home/u/audio",
        recent_files=("/a.wav", "/b.flac"),
        window_geometry="AdnQywADAAA=",
        window_state="AAAA/wAAAAD9",
    )
    written = save_settings(original)
    assert written == paths.settings_path()
    loaded = load_settings()
    assert loaded == original
    assert json.loads(written.read_text(encoding="utf-8"))["version"] == SETTINGS_VERSION
    assert [p.name for p in written.parent.iterdir()] == ["settings.json"]  # no temp files left


def test_missing_file_gives_defaults(home: Path) -> None:
    assert load_settings() == Settings()


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b""])
def test_corrupt_file_gives_defaults(home: Path, content: bytes) -> None:
    path = paths.settings_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert load_settings() == Settings()
    assert save_settings(Settings(top_k=3)) == path  # a later save works
    assert load_settings().top_k == 3


def test_invalid_fields_reset_individually(home: Path) -> None:
    path = paths.settings_path()
    path.parent.mkdir(parents=True)
    data = {
        "version": SETTINGS_VERSION,
        "top_k": 0,
        "threshold": 1.5,
        "theme": "neon",
        "window_s": 2.0,
        "hop_s": 5.0,
        "selected_tags": ["Speech", 3],
        "input_device": "Mic",
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_settings()
    defaults = Settings()
    assert (loaded.top_k, loaded.threshold, loaded.theme) == (defaults.top_k, defaults.threshold, "system")
    assert loaded.selected_tags == ()
    assert loaded.input_device == "Mic"
    assert loaded.window_s == 2.0 and loaded.hop_s == 2.0  # hop clamped to the window


def test_future_version_keeps_known_fields(home: Path) -> None:
    path = paths.settings_path()
    path.parent.mkdir(parents=True)
    data = {"version": SETTINGS_VERSION + 5, "top_k": 12, "theme": "light", "brand_new_option": {"x": 1}}
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_settings()
    assert loaded.version == SETTINGS_VERSION
    assert loaded.top_k == 12 and loaded.theme == "light"


def test_older_or_unversioned_file_is_migrated(home: Path) -> None:
    path = paths.settings_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 0, "threshold": 0.6}), encoding="utf-8")
    assert load_settings().threshold == 0.6
    path.write_text(json.dumps({"threshold": 0.7, "window_s": 3}), encoding="utf-8")
    loaded = load_settings()
    assert loaded.threshold == 0.7 and loaded.window_s == 3.0 and isinstance(loaded.window_s, float)


def test_interrupted_save_leaves_old_file_intact(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = Settings(top_k=5, theme="dark")
    path = save_settings(old)
    before = path.read_bytes()

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(settings.os, "fsync", failing_fsync)
        with pytest.raises(OSError, match="No space left"):
            save_settings(dataclasses.replace(old, top_k=20))
    assert path.read_bytes() == before
    assert load_settings() == old
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]  # temp file removed


def test_save_into_unwritable_place_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(OSError):
        save_settings(Settings(), blocker / "settings.json")
    assert blocker.read_text() == "x"


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().top_k = 3  # type: ignore[misc]
    assert os.fspath(paths.settings_path()).endswith("settings.json")
