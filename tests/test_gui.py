"""pytest-qt tests of the Encotag window (offscreen): files, live input, export, responsiveness, CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402

from app.export import FORMATS, parse_events  # noqa: E402
from app.gui import actions  # noqa: E402
from app.gui.file_view import FileView  # noqa: E402
from app.gui.main_window import MainWindow  # noqa: E402
from app.settings import Settings  # noqa: E402
from models.tagging.windows import count_windows  # noqa: E402
from tests.stall import TickGaps  # noqa: E402

SR = 16000


def _tone_file(path: Path, seconds: float, sr: int = SR) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0) + 0.05 * rng.standard_normal(
        t.size
    )
    sf.write(path, x.astype(np.float32), sr)
    return path


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))


@pytest.fixture
def window(qtbot, tiny_mel_pack: Path):
    win = MainWindow(Settings(window_s=1.0, hop_s=0.5, threshold=0.5), pack_path=str(tiny_mel_pack))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.pack_info is not None, timeout=30000)
    yield win
    win.shutdown()


def _drop(win: MainWindow, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    ev = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    win.dropEvent(ev)


def _wait_files_done(qtbot, win: MainWindow, timeout: int = 60000) -> None:
    qtbot.waitUntil(
        lambda: all(
            v.status in ("done", "cancelled") or v.status.startswith("error") for v in win.files.values()
        ),
        timeout=timeout,
    )


def test_drop_files_and_folder_show_tags(qtbot, window: MainWindow, tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    a = _tone_file(folder / "a.wav", 3.0)
    b = _tone_file(folder / "b.flac", 2.2)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really audio")
    _drop(window, [folder, bad])
    assert len(window.files) == 3
    _wait_files_done(qtbot, window)
    views = {v.path.name: v for v in window.files.values()}
    assert views["broken.wav"].status.startswith("error") and "broken.wav" in views["broken.wav"].status
    for name, path in (("a.wav", a), ("b.flac", b)):
        view = views[name]
        assert view.status == "done"
        n = count_windows(int(sf.info(path).frames * 32000 / SR), 32000, 16000)
        assert len(view.series) == n
        assert view.series.probs.shape == (n, 527)
        assert view.overview is not None and view.overview.duration == pytest.approx(
            sf.info(path).duration, abs=0.01
        )
    # the current tab is a file: its curves, the tags table, the bars and the trajectory are filled
    window.tabs.setCurrentWidget(views["a.wav"])
    window.refresh_all()
    view = views["a.wav"]
    assert view.tags.curves and all(
        len(c.getData()[0]) == len(view.series) for c in view.tags.curves.values()
    )
    view.set_cursor(1.3)
    rows = window.ui.table_model.rows()
    assert len(rows) == window.settings.top_k and window.ui.table_model.time_s == pytest.approx(1.3)
    i = view.series.index_at(1.3)
    best = int(np.argmax(view.series.probs[i]))
    assert rows[0] == (window.labels[best], pytest.approx(float(view.series.probs[i, best])))
    assert window.ui.topk.labels_shown[0].startswith(window.labels[best])
    assert len(window.ui.trajectory_view.scatter.data) == len(view.series)
    # clicking a trajectory point moves the file cursor to that time
    t_point = float(view.series.centres[2])
    window.ui.trajectory_view.time_clicked.emit(t_point)
    assert view.cursor_s == pytest.approx(t_point)


def test_live_synthetic_source_updates_plots(qtbot, tiny_mel_pack: Path) -> None:
    from app.audio_input import SyntheticSource

    t = np.arange(SR * 4) / SR
    signal = (0.3 * np.sin(2 * np.pi * 300 * t * (1 + t))).astype(np.float32)
    made: list[SyntheticSource] = []

    def factory() -> SyntheticSource:
        made.append(SyntheticSource(signal, SR, 512, speed=2.0, loop=True))
        return made[-1]

    win = MainWindow(Settings(window_s=1.0, hop_s=0.25), pack_path=str(tiny_mel_pack), source_factory=factory)
    qtbot.addWidget(win)
    win.show()
    try:
        win.start_live()
        assert win.live.running and win.menus.act_live.text().replace("&", "") == "Stop listening"
        qtbot.waitUntil(lambda: len(win.live.series) >= 8, timeout=60000)
        win.refresh_all()
        assert made[0].frames_sent > 0
        assert win.ui.level.rms_db > -40  # the level meter saw the signal
        assert len(win.live_tab.scope.curve.getData()[0]) > 100
        assert win.ui.topk.labels_shown and len(win.ui.topk.labels_shown) == win.settings.top_k
        assert win.ui.table_model.rows()[0][1] == pytest.approx(float(win.live.latest.probs.max()))
        curves = win.live_tab.history.curves
        assert curves and all(len(c.getData()[0]) >= 8 for c in curves.values())
        n_pts = len(win.ui.trajectory_view.scatter.data)
        assert n_pts >= 8 and win.live.trajectory.pca.n_seen >= 8
        assert np.ptp(win.ui.trajectory_view.snapshot.xy[:, 0]) > 0  # a real 2-D projection, not a point
        ends = win.live.series.ends
        assert np.all(np.diff(ends) > 0)  # newest-wins windows arrive in order
        # a new hop restarts live tagging with it (windows never closer than the hop)
        win.set_analysis(hop_s=0.5)
        assert win.settings.hop_s == 0.5
        qtbot.waitUntil(lambda: len(win.live.series) >= 4 and win.live.series.ends[0] < 2.0, timeout=60000)
        win.refresh_all()
        assert np.all(np.diff(win.live.series.ends) >= 0.5 - 1e-6)
        win.stop_live()
        assert not win.live.running and made[0].done.wait(5)
    finally:
        win.shutdown()


def test_event_loop_stays_responsive_during_long_file(qtbot, window: MainWindow, tmp_path: Path) -> None:
    """A 10 ms QTimer keeps ticking while a 4-minute file is decoded and tagged: the work is off the GUI
    thread, which only receives result batches.

    This is a behaviour check, not a speed target: the bound (1 s) is far above the 100 ms target and far
    below what decoding and tagging the file on the GUI thread would stall (several seconds), so machine
    load cannot trip it. The figure against the target is measured by ``encotag bench`` ("GUI: longest
    event-loop stall", docs/PERFORMANCE.md). What is bounded is the GUI thread's own CPU time between two
    ticks, the app blocking its own event loop (tests/stall.py: waits for a CPU or for the GIL are load).
    """
    long_file = _tone_file(tmp_path / "long.wav", 240.0)  # long enough to span many ticks on a fast machine
    window.open_paths([long_file])
    qtbot.wait(300)  # the new tab's first layout and paint are not part of the processing
    gaps = TickGaps()
    timer = QTimer()
    timer.timeout.connect(gaps.tick)
    timer.start(10)
    view = next(iter(window.files.values()))
    _wait_files_done(qtbot, window, timeout=180000)
    timer.stop()
    assert view.status == "done" and len(view.series) == count_windows(240 * 32000, 32000, 16000)
    assert len(gaps.cpu) > 5
    print(f"event loop: {gaps.summary()}")
    assert max(gaps.cpu) < 1.0, f"the GUI thread blocked its loop (work on the GUI thread?): {gaps.summary()}"


def test_cancel_stops_a_file_job(qtbot, window: MainWindow, tmp_path: Path) -> None:
    long_file = _tone_file(tmp_path / "long.wav", 60.0)
    window.open_paths([long_file])
    view = next(iter(window.files.values()))
    qtbot.waitUntil(lambda: len(view.series) > 0, timeout=60000)
    window.cancel_jobs()
    _wait_files_done(qtbot, window)
    assert view.status == "cancelled" and len(view.series) < count_windows(60 * 32000, 32000, 16000)


def test_export_every_format_and_parse_back(qtbot, window: MainWindow, tmp_path: Path) -> None:
    clip = _tone_file(tmp_path / "clip.wav", 4.0)
    window.open_paths([clip])
    _wait_files_done(qtbot, window)
    window.tabs.setCurrentIndex(1)
    view = window.current_file()
    assert isinstance(view, FileView)
    # a threshold every file has events for: just under the 3rd-best peak probability
    peaks = np.sort(view.series.probs.max(axis=0))[::-1]
    window.ui.thr_spin.setValue(math.floor(float(peaks[2]) * 100) / 100 - 0.01)
    events, name = actions.current_events(window)
    assert name == "clip" and len(events) >= 3
    for fmt in FORMATS:
        out = actions.export_events(window, tmp_path / f"clip.{fmt}", fmt)
        back = parse_events(out.read_text(encoding="utf-8"), fmt)
        assert [(e.label, round(e.start, 2), round(e.end, 2)) for e in back] == [
            (e.label, round(e.start, 2), round(e.end, 2)) for e in events
        ], fmt
        if fmt != "audacity":  # Audacity labels carry no score
            assert [round(e.score, 2) for e in back] == [round(e.score, 2) for e in events]


def test_settings_persist_on_close(qtbot, tiny_mel_pack: Path) -> None:
    from app.settings import load_settings

    win = MainWindow(Settings(), pack_path=str(tiny_mel_pack))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.pack_info is not None, timeout=30000)
    win.ui.topk_spin.setValue(7)
    win.ui.thr_spin.setValue(0.42)
    win.ui.picker.set_checked([0, 137])
    win.set_theme("dark")
    from PySide6.QtWidgets import QApplication

    from app.gui.theme import apply_theme

    assert win.dark and QApplication.palette().window().color().lightness() < 100
    win.close()
    apply_theme(QApplication.instance(), "light")
    saved = load_settings()
    assert saved.theme == "dark"
    assert saved.top_k == 7 and saved.threshold == pytest.approx(0.42)
    assert saved.selected_tags == (win.labels[0], win.labels[137])
    assert saved.window_state and saved.window_geometry
    win2 = MainWindow(saved, pack_path=str(tiny_mel_pack))
    qtbot.addWidget(win2)
    qtbot.waitUntil(lambda: win2.pack_info is not None, timeout=30000)
    assert win2.ui.picker.checked() == [0, 137] and win2.ui.topk.k == 7
    win2.shutdown()


def test_damaged_saved_layout_is_ignored(qtbot, tiny_mel_pack: Path) -> None:
    # settings written by another Qt version or edited by hand: the window opens with its default docks
    settings = Settings(window_geometry="not base64 !", window_state="AAAA/wAAAAD9")
    win = MainWindow(settings, pack_path=str(tiny_mel_pack))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.pack_info is not None, timeout=30000)
    assert win.isVisible() and win.ui.dock_topk.widget() is win.ui.topk
    assert win.ui.dock_traj.objectName() == "dock_trajectory" and not win.ui.dock_traj.isFloating()
    win.shutdown()


def test_untrusted_labels_are_marked(qtbot, window: MainWindow) -> None:
    n_bad = sum(not t for t in window.trusted)
    assert n_bad > 0  # the tiny mel pack trusts every other label
    texts = [window.ui.picker.source.item(i).text() for i in range(window.ui.picker.source.rowCount())]
    assert len(texts) == 527 and sum(t.endswith(" †") for t in texts) == n_bad
    assert sum(t.endswith(" †") for t in window.curve_labels) == n_bad  # plot legends mark them too
    history = window.live_tab.history
    history.set_tags([0, 1, 2], window.curve_labels)
    history.set_tags([2, 3], window.curve_labels)
    assert sorted(history.curves) == [2, 3] and len(history.legend.items) == 2
    window.ui.picker.search.setText("speech")
    assert 0 < window.ui.picker.proxy.rowCount() < 527


def test_qt_binding_keeps_refcounts(qtbot) -> None:
    """PySide6 6.12.0 leaks a decref of a slot's return value per timer call (crashes after minutes)."""
    import sys

    from PySide6.QtCore import QObject

    class Receiver(QObject):
        def slot(self) -> None:
            return None

    receiver = Receiver()
    timer = QTimer()
    timer.timeout.connect(receiver.slot)
    before = sys.getrefcount(None)
    timer.start(0)
    qtbot.wait(100)
    timer.stop()
    assert sys.getrefcount(None) - before > -20, "this PySide6 corrupts refcounts (pyproject.toml)"


def test_unexpected_error_shows_non_modal_notice(qtbot, window: MainWindow) -> None:
    import sys
    import threading

    from app.gui.errors import install_error_hooks

    hooks = (sys.excepthook, threading.excepthook)
    try:
        install_error_hooks(window.notifier)

        def boom() -> None:
            raise RuntimeError("synthetic failure in a helper thread")

        thread = threading.Thread(target=boom)
        thread.start()
        thread.join()
        notifier = window.notifier
        qtbot.waitUntil(lambda: notifier.box is not None and notifier.box.isVisible(), timeout=5000)
        box = notifier.box
        assert box.windowModality() == Qt.WindowModality.NonModal
        assert "synthetic failure" in box.text() and notifier.log_path() in box.text()
        assert "RuntimeError" in box.detailedText()
        assert window.isEnabled()  # the window keeps working
        box.close()
    finally:
        sys.excepthook, threading.excepthook = hooks
