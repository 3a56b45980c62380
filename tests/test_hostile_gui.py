"""Issue 25, items 2, 3 and the GUI part of 11: settings files and paths that stopped the GUI.

The GUI starts with a settings.json that is deeply nested, a FIFO, huge, or not UTF-8 (the bad file is
moved aside to ``.corrupt``), opening a symlink loop does not abort it, and an ordinary pack error is
one log line, not a traceback.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from app.settings import MAX_RECENT, MAX_SETTINGS_BYTES, Settings, load_settings, save_settings
from tests.hostile import run_child, wav


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))


def _settings_file(home: Path) -> Path:
    path = home / "config" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------------------------------ item 3
@pytest.mark.parametrize("kind", ["nested", "not_utf8", "too_big", "folder"])
def test_bad_settings_give_defaults_and_are_moved_aside(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    if kind == "nested":
        path.write_text("[" * 200_000 + "]" * 200_000)  # RecursionError in json
    elif kind == "not_utf8":
        path.write_bytes(b'{"theme": "dark\xff"}')  # was overwritten by the next save, no backup
    elif kind == "too_big":
        path.write_text(json.dumps({"recent_files": ["x" * 100] * (MAX_SETTINGS_BYTES // 100)}))
    else:
        path.mkdir()
    assert load_settings(path) == Settings()
    assert not path.exists() and path.with_name("settings.json.corrupt").exists()
    save_settings(Settings(top_k=3), path)  # the next save makes a fresh file
    assert load_settings(path).top_k == 3


def test_long_lists_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, "recent_files": [f"/f{i}" for i in range(50_000)],
                                "selected_tags": [f"t{i}" for i in range(5000)]}))  # fmt: skip
    s = load_settings(path)
    assert s.recent_files == tuple(f"/f{i}" for i in range(MAX_RECENT)) and len(s.selected_tags) == 527


def test_settings_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "encotag.json"
    real.parent.mkdir()
    save_settings(Settings(theme="dark"), real)
    link = tmp_path / "settings.json"
    link.symlink_to(real)
    save_settings(Settings(theme="light"), link)
    assert link.is_symlink() and load_settings(real).theme == "light"


def test_gui_starts_with_a_fifo_settings_file_and_opens_a_symlink_loop(
    tmp_path: Path, tiny_mel_pack: Path
) -> None:
    home = tmp_path / "home"
    fifo = _settings_file(home)
    os.mkfifo(fifo)  # was: the GUI hung reading it
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)  # was: Path.resolve() raised in the recent-files code, exit 134
    good = wav(tmp_path / "good.wav")
    code, _, err, _ = run_child("gui", "--pack", tiny_mel_pack, "--open", loop, good, "--exit-after", "3",
                                home=home, timeout=90)  # fmt: skip
    assert code == 0, err
    assert "Traceback" not in err
    assert fifo.with_name("settings.json.corrupt").exists()  # the FIFO was moved aside, never read
    saved = json.loads(fifo.read_text())  # a regular settings file was written on exit
    assert str(good) in saved["recent_files"]


def test_gui_starts_with_deeply_nested_settings(tmp_path: Path, tiny_mel_pack: Path) -> None:
    home = tmp_path / "home"
    _settings_file(home).write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    code, _, err, _ = run_child("gui", "--pack", tiny_mel_pack, "--exit-after", "1", home=home, timeout=90)
    assert code == 0, err  # was: RecursionError, the GUI did not start
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------ item 11
def test_gui_logs_an_ordinary_pack_error_as_one_line(
    qtbot, tmp_path: Path, tiny_mel_pack: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("pytestqt")
    import shutil

    from app.gui.main_window import MainWindow

    pack = tmp_path / "pack"
    shutil.copytree(tiny_mel_pack, pack)
    m = json.loads((pack / "manifest.json").read_text())
    m["tagger"]["width"] = "wide"
    (pack / "manifest.json").write_text(json.dumps(m))
    caplog.set_level(logging.WARNING)
    win = MainWindow(Settings(), pack_path=str(pack))
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: "failed" in win.ui.model_status.text(), timeout=30000)
    finally:
        win.shutdown()
    records = [r for r in caplog.records if "model pack" in r.getMessage()]
    assert records and all(r.exc_info is None for r in records)  # was: a full traceback
    assert any("TaggerConfig.width" in r.getMessage() for r in records)


def test_gui_marks_a_truncated_file(qtbot, tmp_path: Path, tiny_mel_pack: Path) -> None:
    pytest.importorskip("pytestqt")
    from app.gui.main_window import MainWindow

    full = wav(tmp_path / "full.wav", seconds=3.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    win = MainWindow(Settings(), pack_path=str(tiny_mel_pack))
    qtbot.addWidget(win)
    try:
        (job,) = win.open_paths([cut])
        qtbot.waitUntil(lambda: win.files[job].status.startswith("done"), timeout=60000)
        assert "truncated" in win.files[job].status  # was a plain "done"
        assert win.files[job].status in win.statusBar().currentMessage()  # and the user is told
    finally:
        win.shutdown()


def test_gui_head_job_errors_that_are_ordinary_are_one_line(
    qtbot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A head job that fails on bad input (a head or audio file that fails its checks) is one line in
    the dialog and the log, not a traceback; a bug still logs its traceback."""
    pytest.importorskip("pytestqt")
    import threading

    from app.gui.heads.jobs import HeadJobRunner
    from app.gui.jobs import JobStatus
    from models.audio import AudioError
    from models.heads.heads import HeadError

    runner = HeadJobRunner(None)
    caplog.set_level(logging.WARNING)
    outcomes = []
    for exc in (HeadError("bad.safetensors:\n card checksum mismatch"), AudioError("x.wav", "truncated"),
                ValueError("no examples"), OSError("disk full"), RuntimeError("a bug")):  # fmt: skip

        def fail(*_a: object, e: Exception = exc) -> None:
            raise e

        monkeypatch.setattr(runner, "work", fail)
        caplog.clear()
        outcomes.append(runner.execute(1, object(), threading.Event()))
        tracebacks = [r for r in caplog.records if r.exc_info is not None]
        assert len(tracebacks) == (1 if isinstance(exc, RuntimeError) else 0), exc
    assert all(o.status is JobStatus.ERROR and "\n" not in o.message for o in outcomes)
    assert outcomes[0].message == "bad.safetensors: card checksum mismatch"
