"""pytest-qt tests of the Model menu (app/gui/packs.py): the installed packs and what each is, switching on
the worker, fetching a known pack or the official codec from a local HTTP server on 127.0.0.1 (a
corrupt or offline download refused with a clear notice, a cancelled one leaving nothing behind), and
comparing two packs on one file."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QPushButton, QTableWidget  # noqa: E402

from app import paths  # noqa: E402
from app.gui.main_window import MainWindow  # noqa: E402
from app.gui.packs import PacksFeature  # noqa: E402
from app.gui.packs_jobs import CODEC_KEY  # noqa: E402
from app.settings import Settings  # noqa: E402
from models.packs import fetch as known  # noqa: E402
from tests.conftest import require_shared  # noqa: E402
from tests.local_http import LocalServer  # noqa: E402
from tests.test_gui import _tone_file  # noqa: E402

BODY = bytes(range(256)) * 2048  # 512 KiB
KEY = "efficientat-mn04"


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


def _window(qtbot, pack: Path | None) -> tuple[MainWindow, PacksFeature]:
    win = MainWindow(Settings(window_s=1.0, hop_s=0.5), pack_path=str(pack) if pack else None)
    qtbot.addWidget(win)
    feature = next(e for e in win.extensions if isinstance(e, PacksFeature))
    qtbot.waitUntil(lambda: win.pack_info is not None and feature.packs != (), timeout=30000)
    return win, feature


def _action(menu, starts: str):  # noqa: ANN202
    return next(a for a in menu.actions() if a.text().startswith(starts))


def test_model_menu_lists_packs_and_switches_on_the_worker(
    qtbot, tiny_mel_pack: Path, tiny_codec_pack: Path
) -> None:
    shutil.copytree(tiny_codec_pack, paths.packs_dir(ensure=True) / "codec")
    win, feature = _window(qtbot, tiny_mel_pack)
    try:
        qtbot.waitUntil(lambda: len(feature.packs) >= 2, timeout=10000)
        mel_name, codec_name = win.pack_info.name, "tiny codec"
        menu = win.menus.menu_model
        mel_act = _action(menu, f"{mel_name} — mel, ")
        codec_act = _action(menu, f"{codec_name}")
        assert " — codec tokens, " in codec_act.text() and mel_act.isChecked() and not codec_act.isChecked()
        assert "licence MIT" in mel_act.toolTip() and "264 of 527 labels trusted" in mel_act.toolTip()
        assert any(a.text().startswith(known.KNOWN_PACKS[KEY].title) for a in menu.actions())  # fetchable
        table = feature.details().findChild(QTableWidget)
        cols = {table.item(0, c).text(): table.item(3, c).text() for c in range(table.columnCount())}
        assert cols["mel"] == "264 of 527" and "codec tokens" in cols
        assert table.verticalHeaderItem(3).text() == "trusted labels"

        assert feature.compare_menu.menuAction() in menu.actions()
        compare_with = [a.text() for a in feature.compare_menu.actions()]
        assert any(t.startswith(codec_name) for t in compare_with)  # the other packs, not the current one
        assert not any(t.startswith(mel_name) for t in compare_with)
        _action(feature.compare_menu, codec_name).trigger()  # no file open: told, nothing started
        assert "Open a file first" in win.statusBar().currentMessage() and feature.overlays == {}

        worker_engine = win.worker.worker.engine
        codec_act.trigger()
        assert win.statusBar().currentMessage().startswith("Switching to the model pack tiny codec")
        qtbot.waitUntil(
            lambda: win.pack_info is not None and win.pack_info.name.startswith(codec_name), timeout=30000
        )
        assert win.worker.worker.engine is not worker_engine and win.worker.worker.engine.is_codec_pack
        assert win.settings.pack_path == str(paths.packs_dir() / "codec")
        qtbot.waitUntil(lambda: win.statusBar().currentMessage().startswith("Model pack ready: tiny codec"))
        qtbot.waitUntil(lambda: _action(menu, codec_name).isChecked())
        assert not _action(menu, mel_name).isChecked()
    finally:
        win.shutdown()


def _small_known(monkeypatch: pytest.MonkeyPatch, url: str, body: bytes = BODY) -> None:
    small = dataclasses.replace(known.MN04, sha256=hashlib.sha256(body).hexdigest(), size=len(body), url=url)
    monkeypatch.setitem(known.KNOWN_PACKS, KEY, dataclasses.replace(known.KNOWN_PACKS[KEY], files=(small,)))


@pytest.mark.parametrize("mode", ["corrupt", "offline"])
def test_failed_fetch_is_refused_with_a_clear_notice(
    qtbot, tiny_mel_pack: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    url = server.serve("w.pt", BODY, "corrupt") if mode == "corrupt" else LocalServer.closed_url("w.pt")
    _small_known(monkeypatch, url)
    win, feature = _window(qtbot, tiny_mel_pack)
    try:
        _action(win.menus.menu_model, known.KNOWN_PACKS[KEY].title).trigger()
        assert feature.progress_dialog is not None and feature.progress_dialog.isVisible()
        qtbot.waitUntil(lambda: feature.notice is not None and feature.notice.isVisible(), timeout=10000)
        text = feature.notice.text()
        dest = paths.downloads_dir() / known.MN04.name
        assert ("corrupt download" if mode == "corrupt" else "cannot download") in text
        assert url in text and str(dest) in text and "\n" not in text
        assert feature.progress_dialog is None
        assert not dest.exists() and list(paths.downloads_dir().iterdir()) == []
        assert not paths.packs_dir().exists() or list(paths.packs_dir().iterdir()) == []
        assert win.pack_path == str(tiny_mel_pack)  # nothing switched
    finally:
        win.shutdown()


def test_cancelled_fetch_leaves_nothing_behind(
    qtbot, tiny_mel_pack: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = BODY * 4  # 2 MiB in 4 KiB pieces 20 ms apart: about 10 s, cancelled after the first few pieces
    _small_known(monkeypatch, server.serve("w.pt", big, "slow"), big)
    win, feature = _window(qtbot, tiny_mel_pack)
    try:
        feature.fetch(KEY, ("switch", KEY))
        dlg = feature.progress_dialog
        qtbot.waitUntil(lambda: dlg.value() >= 8 and dlg.maximum() == len(big) // 1024, timeout=10000)
        assert list(paths.downloads_dir().glob("*.part"))  # the download is under way, in a temp file
        assert dlg.labelText().startswith(f"Fetching {known.KNOWN_PACKS[KEY].title}: ")
        assert dlg.labelText().endswith(" of 2.1 MB")
        (button,) = dlg.findChildren(QPushButton)  # what the user presses
        assert button.text() == "Cancel"
        button.click()
        qtbot.waitUntil(lambda: "Fetch cancelled" in win.statusBar().currentMessage(), timeout=10000)
        assert list(paths.downloads_dir().iterdir()) == []
        assert not paths.packs_dir().exists() or list(paths.packs_dir().iterdir()) == []
        assert win.pack_path == str(tiny_mel_pack) and feature.notice is None
    finally:
        win.shutdown()


def test_fetch_on_first_use_builds_the_reference_pack_and_switches(
    qtbot, tiny_mel_pack: Path, server: LocalServer
) -> None:
    weights = require_shared("teachers", "efficientat_mn04_as", "mn04_as_mAP_432.pt").read_bytes()
    win, feature = _window(qtbot, tiny_mel_pack)
    try:
        feature.fetch_urls = ((known.MN04.name, server.serve(known.MN04.name, weights)),)
        _action(win.menus.menu_model, known.KNOWN_PACKS[KEY].title).trigger()
        title = known.KNOWN_PACKS[KEY].title
        qtbot.waitUntil(lambda: win.pack_info is not None and win.pack_info.name == title, timeout=60000)
        assert win.settings.pack_path == str(paths.packs_dir() / known.KNOWN_PACKS[KEY].folder)
        assert (paths.downloads_dir() / known.MN04.name).read_bytes() == weights
        qtbot.waitUntil(
            lambda: any(s.name == title and s.kind == "mel" for s in feature.packs), timeout=10000
        )
        s = feature.summary(win.settings.pack_path)
        assert (
            s is not None
            and s.n_trusted == 527
            and "audioset_mAP (published, EfficientAT) 0.432" in s.describe()
        )
    finally:
        win.shutdown()


def test_official_codec_is_fetched_before_switching_to_a_pack_that_needs_it(
    qtbot, tiny_mel_pack: Path, tiny_codec_pack: Path, server: LocalServer
) -> None:
    from models.codec.official import default_cache_dir
    from models.packs.pack import load_pack, save_pack
    from tests.test_codec import _hub_files

    src = load_pack(tiny_codec_pack)
    cfg_bytes, weights = _hub_files(src.codec, paths.data_dir(ensure=True))  # the tiny codec stands in
    server.serve("config.json", cfg_bytes)
    server.serve("model.safetensors", weights)
    official = save_pack(
        paths.packs_dir(ensure=True) / "official", name="official codec pack", tagger_cfg=src.tagger_cfg,
        tagger_state=src.tagger_state, codec_cfg=src.codec_cfg, labels=src.info.labels,
        trusted=list(src.info.trusted), window=src.window, licence="MIT", provenance={},
    )  # fmt: skip
    win, feature = _window(qtbot, tiny_mel_pack)
    try:
        qtbot.waitUntil(lambda: feature.summary(official) is not None, timeout=10000)
        assert feature.summary(official).needs_official_codec and not feature.codec_cached
        feature.fetch_urls = ((CODEC_KEY, server.url("")),)
        feature.switch(str(official))
        assert feature.progress_dialog is not None  # the weights come first, with progress and Cancel
        qtbot.waitUntil(lambda: win.pack_info is not None and win.pack_info.name == "official codec pack",
                        timeout=60000)  # fmt: skip
        assert (default_cache_dir() / "model.safetensors").read_bytes() == weights
        assert win.worker.worker.engine.codec_id == "official-encodec-24khz" and feature.codec_cached
    finally:
        win.shutdown()


def test_compare_draws_the_second_packs_curves(
    qtbot, tiny_mel_pack: Path, tiny_codec_pack: Path, tmp_path: Path
) -> None:
    from models.tagging.engine import Engine
    from models.tagging.pipeline import tag_file

    clip = _tone_file(tmp_path / "cmp.wav", 3.0)
    win, feature = _window(qtbot, tiny_mel_pack)
    try:
        assert feature.compare(str(tiny_codec_pack)) is None  # no file open: nothing to compare
        assert "Open a file first" in win.statusBar().currentMessage()
        (job,) = win.open_paths([clip])
        qtbot.waitUntil(lambda: win.files[job].status == "done", timeout=60000)
        win.ui.picker.set_checked([0, 137])
        feature.compare(str(tiny_codec_pack))
        qtbot.waitUntil(lambda: "Compare done" in win.statusBar().currentMessage(), timeout=60000)
        feature.draw_overlays()
        overlay = feature.overlays[job]
        view = win.files[job]
        names = [win.labels[0], win.labels[137]]
        assert list(overlay.curves) == names and overlay.pack_name.startswith("tiny codec")
        engine = Engine.load(tiny_codec_pack, threads=1)
        expected = np.stack([r.probs for r in tag_file(engine, clip, window=win.worker.worker.window)])
        for j, name in zip((0, 137), names, strict=True):
            x, y = overlay.curves[name].getData()
            np.testing.assert_allclose(x, view.series.centres)  # the same windows as the main curves
            np.testing.assert_allclose(y, expected[:, j], atol=1e-5)
            assert overlay.curves[name] in view.tags.listDataItems()
        win.ui.picker.set_checked([137])  # the comparison follows the selection
        feature.draw_overlays()
        assert list(overlay.curves) == [names[1]]
        drawn = list(overlay.curves.values())
        feature.remove_comparison()
        assert job not in feature.overlays and not any(c in view.tags.listDataItems() for c in drawn)
    finally:
        win.shutdown()


def test_official_codec_offline_notice_names_the_files_and_where_to_put_them(
    qtbot, tiny_mel_pack: Path
) -> None:
    from models.codec.official import default_cache_dir

    win, feature = _window(qtbot, tiny_mel_pack)
    try:
        base = LocalServer.closed_url("")
        feature.fetch_urls = ((CODEC_KEY, base),)
        feature.fetch(CODEC_KEY)
        qtbot.waitUntil(lambda: feature.notice is not None and feature.notice.isVisible(), timeout=10000)
        text = feature.notice.text()
        assert "official EnCodec 24 kHz codec unavailable" in text and "\n" not in text
        assert f"{base}model.safetensors" in text and str(default_cache_dir() / "model.safetensors") in text
        assert not (default_cache_dir() / "model.safetensors").exists() and not feature.codec_cached
    finally:
        win.shutdown()
