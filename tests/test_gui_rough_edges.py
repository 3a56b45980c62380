"""The rough edges of issue 29, each with its test: the About box fits the screen, the personal-head panel
after a restart, plain no-input / no-output device messages, export names (extension added), modes
(the umask, like every other file) and the export dialogs' last-used folder."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
from PySide6.QtCore import QRect  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from app.export import parse_events, with_extension  # noqa: E402
from app.gui.main_window import MainWindow  # noqa: E402
from app.settings import Settings, load_settings  # noqa: E402
from models.resources import default_pack_dir  # noqa: E402

SR = 16000


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))


def _window(qtbot, pack: Path, settings: Settings | None = None, **kw) -> MainWindow:
    win = MainWindow(settings or Settings(window_s=1.0, hop_s=0.5, threshold=0.05), pack_path=str(pack), **kw)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.pack_info is not None, timeout=60000)
    return win


def _close(win: MainWindow) -> None:
    win.shutdown()
    for ext in win.extensions:
        ext.window_closing()


def _tone_file(path: Path, seconds: float = 3.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    return path


def test_about_box_fits_the_screen_with_the_shipped_provenance(qtbot) -> None:
    from app.gui.about import AboutDialog

    manifest = default_pack_dir() / "manifest.json"
    provenance = json.loads(manifest.read_text())["provenance"] if manifest.is_file() else {}
    provenance = {**provenance, **{f"step {i}": "x " * 400 for i in range(60)}}  # longer than any pack's
    info = SimpleNamespace(
        name="encotag-default", pack_id="ab" * 32, licence="CC BY-SA 4.0", provenance=provenance
    )
    dlg = AboutDialog(None, info)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    screen = dlg.screen().availableGeometry()
    assert dlg.height() <= screen.height() and dlg.width() <= screen.width()
    ok = dlg.buttons.buttons()[0]
    assert ok.isVisible() and dlg.rect().contains(QRect(ok.mapTo(dlg, ok.rect().topLeft()), ok.size()))
    assert "step 59" in dlg.text.toPlainText() and "CC BY-SA 4.0" in dlg.text.toPlainText()
    assert dlg.text.verticalScrollBar().maximum() > 0  # the long text scrolls inside the box


def test_head_panel_after_restart(qtbot, tiny_mel_pack: Path) -> None:
    """A head active when the window closed: after a restart its panel has its saved size and "That was…"
    offers the head's classes, without opening the Heads dialog."""
    from app.paths import heads_dir
    from models.heads.head_store import HeadStore
    from models.heads.heads import BACKGROUND, train_head

    win = _window(qtbot, tiny_mel_pack)
    info = win.pack_info
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, info.embedding_size)).astype(np.float32)
    x[:20] += 1.0
    head, _ = train_head(
        x, np.repeat([0, 1], 20), ("ding", BACKGROUND), name="bell", pack_id=info.pack_id,
        layout=info.embedding_layout,
    )  # fmt: skip
    HeadStore(heads_dir()).save(head, "bell", None)
    win.heads.dialog.refresh_list()
    assert win.heads.dialog.activate("bell")
    qtbot.wait(200)
    first = win.heads.panel.height()
    win.close()
    win.heads.dialog.shutdown()

    again = _window(qtbot, tiny_mel_pack, load_settings())
    try:
        qtbot.waitUntil(lambda: again.heads.dialog.active_name == "bell", timeout=60000)
        qtbot.wait(200)
        panel = again.heads.panel
        assert again.heads.dock.isVisible() and panel.height() >= 0.8 * first
        assert panel.plot.height() >= panel.plot.minimumSizeHint().height()
        assert panel.span_button.isEnabled()
        assert [panel.span_class.itemText(i) for i in range(panel.span_class.count())] == ["ding", BACKGROUND]
    finally:
        _close(again)
        again.heads.dialog.shutdown()


def _no_sound_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    """PortAudio as on a machine without any sound device (what it answers there)."""
    import sounddevice as sd

    def query_devices(device=None, kind=None):  # noqa: ANN001, ANN202
        if device is None and kind is None:
            return sd.DeviceList([])
        raise sd.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sd, "query_devices", query_devices)
    monkeypatch.setattr(sd, "query_hostapis", lambda *a, **k: ())


def test_no_input_device_says_so(qtbot, tiny_mel_pack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.audio_input import NO_INPUT

    _no_sound_devices(monkeypatch)
    win = _window(qtbot, tiny_mel_pack)
    try:
        combo = win.ui.device_combo
        assert [combo.itemText(i) for i in range(combo.count())] == ["No input device found"]
        assert combo.toolTip() == NO_INPUT
        win.start_live()
        box = win.notifier.last_notice
        assert box is not None and box.text() == NO_INPUT and "unexpected" not in box.windowTitle()
        assert "-1" not in box.text() and not win.live.running
    finally:
        _close(win)


def test_play_without_output_device_says_so(
    qtbot, tiny_mel_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.gui.playback import NO_OUTPUT

    _no_sound_devices(monkeypatch)
    win = _window(qtbot, tiny_mel_pack)
    try:
        (job,) = win.open_paths([_tone_file(tmp_path / "a.wav")])
        view = win.files[job]
        with qtbot.waitSignal(view.play_failed, timeout=10000) as blocker:
            view.toggle_play()
        assert blocker.args == [NO_OUTPUT]
        qtbot.waitUntil(lambda: win.statusBar().currentMessage() == NO_OUTPUT, timeout=5000)
    finally:
        _close(win)


def test_with_extension() -> None:
    assert with_extension("/x/events", "srt") == Path("/x/events.srt")
    assert with_extension("/x/my.events", "audacity") == Path("/x/my.events.txt")
    assert with_extension("/x/a.vtt", "csv") == Path("/x/a.vtt")  # an events extension is kept


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_exports_bare_names_modes_and_last_folder(
    qtbot, tiny_mel_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int
) -> None:
    from app.gui import actions
    from app.gui.exporting import EXPORT_FILTERS

    win = _window(qtbot, tiny_mel_pack)
    old = os.umask(umask)
    try:
        (job,) = win.open_paths([_tone_file(tmp_path / "a.wav")])
        qtbot.waitUntil(lambda: win.files[job].status == "done", timeout=60000)
        out_dir = tmp_path / "exports"
        out_dir.mkdir()
        starts: list[str] = []

        def save_name(_parent, _title, start, _filters, *_a):  # noqa: ANN001, ANN202 - the user types a bare name
            starts.append(start)
            return str(out_dir / "talk"), EXPORT_FILTERS["srt"]

        monkeypatch.setattr(QFileDialog, "getSaveFileName", save_name)
        actions.export_dialog(win)
        written = out_dir / "talk.srt"
        assert written.is_file() and parse_events(written.read_text(), "srt")
        assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~umask  # as any file the user writes
        assert not (out_dir / "talk").exists()
        assert Path(starts[0]).parent == tmp_path  # first time: the opened file's folder
        actions.export_dialog(win)
        assert Path(starts[1]).parent == out_dir  # then the last export's folder

        # the head export dialog opens there too, and the head file gets the same mode
        from models.heads.heads import BACKGROUND, train_head

        info = win.pack_info
        x = np.random.default_rng(0).normal(size=(20, info.embedding_size)).astype(np.float32)
        head, _ = train_head(
            x, np.repeat([0, 1], 10), ("a", BACKGROUND), name="h", pack_id=info.pack_id,
            layout=info.embedding_layout,
        )  # fmt: skip
        dlg = win.heads.dialog
        dlg.store.save(head, "h", None)
        dlg.refresh_list()
        dlg.select_head("h")
        dlg.heads_panel.select_name("h")
        monkeypatch.setattr(
            QFileDialog, "getSaveFileName", lambda _p, _t, start, _f: (starts.append(start) or start, "")
        )
        dlg.heads_panel._export_clicked()
        assert Path(starts[2]) == out_dir / "h.safetensors"
        assert stat.S_IMODE((out_dir / "h.safetensors").stat().st_mode) == 0o666 & ~umask
    finally:
        os.umask(old)
        _close(win)
        win.heads.dialog.shutdown()
