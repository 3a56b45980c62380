"""Spectrograms (file and live, off the GUI thread), per-tag thresholds (lines, live detection, exports,
settings), the timeline keys and the level meter's dBFS (issue 29, "Views")."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.gui.state.spectrogram import FLOOR_DB, SpectrogramBuilder, band_edges, file_spectrogram
from app.gui.state.thresholds import events_with_thresholds, open_events, pinned_thresholds
from app.settings import Settings, load_settings, save_settings, settings_from_dict

SR = 16000


def _tone(freq: float, seconds: float, amp: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(db: np.ndarray, edges: np.ndarray) -> float:
    band = int(np.argmax(db.mean(axis=0)))
    return float(np.sqrt(edges[band] * edges[band + 1]))


# --- Qt-free ------------------------------------------------------------------------------------------------
def test_spectrogram_peaks_at_the_tone_in_dbfs() -> None:
    b = SpectrogramBuilder(SR)
    db = b.push(_tone(1000.0, 1.0, amp=0.5))
    assert db.shape[1] == band_edges(SR).size - 1 and db.shape[0] >= 45
    assert 900 < _peak_hz(db, b.edges) < 1120
    assert -9.0 < float(db.mean(axis=0).max()) < -3.0  # amplitude 0.5 is -6 dBFS
    assert float(db.min()) >= FLOOR_DB
    edges = b.edges
    assert np.allclose(np.diff(np.log(edges)), np.log(edges[1] / edges[0]))  # log-frequency bands


def test_spectrogram_blockwise_equals_one_push() -> None:
    x = _tone(300.0, 0.7) + _tone(2500.0, 0.7, amp=0.1)
    whole = SpectrogramBuilder(SR).push(x)
    b = SpectrogramBuilder(SR)
    parts = np.concatenate([b.push(x[i : i + 777]) for i in range(0, x.size, 777)])
    np.testing.assert_allclose(parts, whole, atol=1e-3)


def test_file_spectrogram_and_cancel(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(440.0, 3.0), SR)
    spec = file_spectrogram(path)
    assert abs(spec.duration - 3.0) < 0.1 and 400 < _peak_hz(spec.db, spec.edges) < 480
    cancel = threading.Event()
    cancel.set()
    from app.gui.state.spectrogram import SpectrogramCancelledError

    with pytest.raises(SpectrogramCancelledError):
        file_spectrogram(path, cancel)


def test_per_tag_thresholds_decide_events() -> None:
    starts = np.arange(10) * 0.5
    ends = starts + 1.0
    probs = np.zeros((10, 2), np.float32)
    probs[2:8, 0] = 0.4  # "quiet" reaches 0.4 only
    probs[2:8, 1] = 0.6
    labels = ["quiet", "loud"]
    plain = events_with_thresholds(starts, ends, probs, labels, 0.5, {})
    assert [e.label for e in plain] == ["loud"]
    own = events_with_thresholds(starts, ends, probs, labels, 0.5, {"quiet": 0.35, "loud": 0.7})
    assert [e.label for e in own] == ["quiet"]
    assert own[0].start == 1.0 and own[0].end == 4.5
    assert [e.label for e in open_events(starts, ends, probs, labels, 0.5, {"quiet": 0.0})] == ["quiet"]
    assert pinned_thresholds((("quiet", 0.2), ("gone", 0.9)), ("quiet",)) == {"quiet": 0.2}


def test_settings_keep_tag_thresholds(tmp_path: Path) -> None:
    st = Settings(tag_thresholds=(("Music", 0.15), ("Speech", 0.6)), spectrogram=True, last_export_dir="/x")
    path = save_settings(st, tmp_path / "settings.json")
    assert '"Speech": 0.6' in path.read_text(encoding="utf-8")  # a JSON object, label → threshold
    back = load_settings(path)
    assert back == st and back.threshold_of("Music") == 0.15 and back.threshold_of("Dog") == st.threshold
    bad = settings_from_dict({"tag_thresholds": {"Speech": 1.5}, "spectrogram": "yes"})
    assert bad.tag_thresholds == () and bad.spectrogram is False


# --- the window ---------------------------------------------------------------------------------------------
pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402

from app.gui.main_window import MainWindow  # noqa: E402


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))


def _window(qtbot, pack: Path, settings: Settings, factory=None) -> MainWindow:
    win = MainWindow(settings, pack_path=str(pack), source_factory=factory)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.pack_info is not None, timeout=60000)
    return win


def test_file_spectrogram_toggled_with_the_waveform_off_the_gui_thread(
    qtbot, tiny_mel_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.gui.spectro_jobs as jobs

    threads: list[str] = []
    real = jobs.file_spectrogram

    def recording(*args, **kwargs):  # the real computation, noting the thread it runs on
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "file_spectrogram", recording)
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(440.0, 3.0), SR)
    win = _window(qtbot, tiny_mel_pack, Settings(window_s=1.0, hop_s=0.5))
    try:
        (job,) = win.open_paths([path])
        view = win.files[job]
        qtbot.waitUntil(lambda: job in win.views.spectra, timeout=5000)
        spec = win.views.spectra[job]
        assert not spec.isVisibleTo(view) and view.wave.isVisibleTo(view)  # waveform by default
        win.views.act_spectrogram.trigger()  # View ▸ Spectrogram (Ctrl+G)
        assert spec.isVisibleTo(view) and not view.wave.isVisibleTo(view)
        qtbot.waitUntil(lambda: spec.spectrogram is not None, timeout=30000)
        assert threads == ["encotag-spectrogram"] and threading.current_thread().name != threads[0]
        s = spec.spectrogram
        assert 400 < _peak_hz(s.db, s.edges) < 480 and abs(s.duration - 3.0) < 0.1
        assert spec.colour_bar is not None and spec.getAxis("left").labelText == "frequency"
        assert win.settings.spectrogram is True
        win.views.act_spectrogram.trigger()
        assert view.wave.isVisibleTo(view) and win.settings.spectrogram is False
    finally:
        win.shutdown()
        win.views.window_closing()


def test_live_spectrogram_and_per_tag_threshold_detection(qtbot, tiny_mel_pack: Path) -> None:
    from app.audio_input import SyntheticSource

    signal = _tone(1000.0, 2.0, amp=0.3)
    factory = lambda: SyntheticSource(signal, SR, 512, speed=2.0, loop=True)  # noqa: E731
    win = _window(
        qtbot, tiny_mel_pack, Settings(window_s=1.0, hop_s=0.25, threshold=1.0, spectrogram=True), factory
    )
    try:
        assert win.views.live_spec.isVisibleTo(win.live_tab) and not win.live_tab.scope.isVisibleTo(
            win.live_tab
        )
        win.start_live()
        qtbot.waitUntil(lambda: win.views.live_columns.db.shape[0] > 30, timeout=30000)
        qtbot.waitUntil(lambda: win.views.live_spec.spectrogram is not None, timeout=5000)
        cols = win.views.live_columns
        assert 900 < _peak_hz(cols.db, cols.edges) < 1120
        qtbot.waitUntil(lambda: len(win.live.series) > 3, timeout=30000)
        # threshold 1.0: nothing is heard; pin one tag with its own threshold of 0 → it is heard now
        assert win.views.heard_now() == []
        label = win.labels[3]
        win.ui.picker.set_checked([3])
        qtbot.waitUntil(lambda: win.views.panel.labels == [label], timeout=5000)
        win.views.panel.set_value(label, 0.0)
        assert win.settings.tag_thresholds == ((label, 0.0),)
        assert win.views.heard_now() == [label]
        qtbot.waitUntil(lambda: label in win.views.heard.text(), timeout=5000)
        line = win.live_tab.history.tag_lines.get(3)
        assert line is not None and line.value() == 0.0  # its own line
        win.views.panel.set_value(label, None)  # back to the global threshold
        assert win.settings.tag_thresholds == () and win.views.heard_now() == []
    finally:
        win.stop_live()
        win.shutdown()
        win.views.window_closing()


def test_per_tag_thresholds_in_exports_and_saved(qtbot, tiny_mel_pack: Path, tmp_path: Path) -> None:
    from app.export import parse_events
    from app.gui import actions

    path = tmp_path / "tone.wav"
    sf.write(path, _tone(440.0, 3.0), SR)
    win = _window(qtbot, tiny_mel_pack, Settings(window_s=1.0, hop_s=0.5, threshold=1.0))
    (job,) = win.open_paths([path])
    qtbot.waitUntil(lambda: win.files[job].status == "done", timeout=60000)
    view = win.files[job]
    top = int(np.argmax(view.series.probs.max(axis=0)))
    label = win.labels[top]
    win.ui.picker.set_checked([top])
    qtbot.waitUntil(lambda: win.views.panel.labels == [label], timeout=5000)
    assert parse_events(actions.export_events(win, tmp_path / "a.csv").read_text(), "csv") == []
    win.views.panel.set_value(label, 0.01)
    qtbot.waitUntil(lambda: top in view.tags.tag_lines, timeout=5000)
    events = parse_events(actions.export_events(win, tmp_path / "b.csv").read_text(), "csv")
    assert {e.label for e in events} == {label}
    win.close()
    assert dict(load_settings().tag_thresholds) == {label: 0.01}


def test_timeline_keys_and_zoom_reset(qtbot, tiny_mel_pack: Path, tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(440.0, 4.0), SR)
    win = _window(qtbot, tiny_mel_pack, Settings(window_s=1.0, hop_s=0.5))
    try:
        (job,) = win.open_paths([path])
        view = win.files[job]
        qtbot.waitUntil(lambda: view.status == "done" and job in win.views.keys, timeout=60000)
        qtbot.keyClick(view.tags.viewport(), Qt.Key.Key_Right)
        assert view.cursor_s == pytest.approx(0.5)
        qtbot.keyClick(view.tags.viewport(), Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
        assert view.cursor_s == pytest.approx(4.0)  # ten hops, clamped to the end
        qtbot.keyClick(view.wave.viewport(), Qt.Key.Key_Left)
        assert view.cursor_s == pytest.approx(3.5)
        qtbot.keyClick(view, Qt.Key.Key_Home)
        assert view.cursor_s == 0.0
        qtbot.keyClick(view, Qt.Key.Key_End)
        assert view.cursor_s == pytest.approx(4.0)
        view.wave.setXRange(1.0, 1.5, padding=0)
        qtbot.keyClick(view.tags.viewport(), Qt.Key.Key_0)
        lo, hi = view.tags.getViewBox().viewRange()[0]
        assert lo <= 0.0 and hi >= 4.0
        view.wave.setXRange(1.0, 1.5, padding=0)
        win.views.act_reset_zoom.trigger()
        assert view.tags.getViewBox().viewRange()[0][1] >= 4.0
        played: list[float] = []

        class Player:  # a sound card's player as the view sees it: Space plays, then pauses at 2.25 s
            playing = False

            def play(self, _path, start_s, on_error=None):  # noqa: ANN001, ANN202
                played.append(start_s)
                self.playing = True

            def stop(self) -> None:
                self.playing = False

            def position(self) -> float:
                return 2.25

        view.player = Player()
        qtbot.keyClick(view.play_button, Qt.Key.Key_Space)
        assert played == [pytest.approx(4.0)] and view.player.playing
        qtbot.keyClick(view.tags.viewport(), Qt.Key.Key_Space)
        assert not view.player.playing and view.cursor_s == pytest.approx(2.25)  # paused where it was
        qtbot.keyClick(view.tags.viewport(), Qt.Key.Key_Space)
        assert played[-1] == pytest.approx(2.25)  # and resumes from there
    finally:
        win.shutdown()
        win.views.window_closing()


def test_level_meter_shows_dbfs(qtbot) -> None:
    from app.gui.plots import LevelMeter

    meter = LevelMeter()
    qtbot.addWidget(meter)
    meter.set_block(_tone(1000.0, 0.1, amp=0.1))  # RMS 0.0707 = -23 dBFS, peak 0.1 = -20 dBFS
    assert meter.text() == "-23 dBFS"
    assert "peak -20.0 dBFS" in meter.toolTip()
    meter.set_block(np.zeros(100, np.float32))
    assert meter.text() == "-60 dBFS"


def test_top_tags_bars_use_per_tag_thresholds(qtbot) -> None:
    from app.gui.plots import TopKBars

    bars = TopKBars(3)
    qtbot.addWidget(bars)
    bars.set_threshold(0.5)
    bars.tag_thr = {1: 0.1}
    bars.set_probs(np.array([0.6, 0.2, 0.3], np.float32), ["a", "b", "c"])
    colours = [b.color().getRgb() for b in bars.bars.opts["brushes"]]  # bars in order a, c, b
    assert colours[0] == colours[2] != colours[1]  # a (0.6 ≥ 0.5) and b (0.2 ≥ its own 0.1) are coloured
