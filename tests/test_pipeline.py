"""Ring buffer, live stream tagging and file tagging (models/tagging/pipeline.py, app/audio_input.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.audio_input import SyntheticSource
from models.config import WindowConfig
from models.tagging.pipeline import RingBuffer, StreamTagger, TagStats, tag_file
from models.tagging.results import Progress
from models.tagging.windows import count_windows


class EnergyEngine:
    """A deterministic stand-in for the Engine: probs = [RMS, peak-to-mean], embedding = [mean, std, RMS].

    It lets the tests check which samples reached which window without any model weights.
    """

    def __init__(self, sample_rate: int = 16000, window: WindowConfig | None = None) -> None:
        self.sample_rate = sample_rate
        self.window = window or WindowConfig(1.0, 0.25)
        self.calls: list[int] = []

    def infer(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert audio.dtype == np.float32 and audio.ndim == 2
        self.calls.append(audio.shape[0])
        rms = np.sqrt((audio.astype(np.float64) ** 2).mean(axis=1))
        probs = np.stack([rms, np.abs(audio).max(axis=1)], axis=1).astype(np.float32)
        emb = np.stack([audio.mean(axis=1), audio.std(axis=1), rms], axis=1).astype(np.float32)
        return probs, emb


class TwoClassHead:
    def predict(self, emb: np.ndarray) -> np.ndarray:
        loud = (emb[:, 2] > 0.1).astype(np.float32)
        return np.stack([loud, 1 - loud], axis=1)


def burst(sr: int, seconds: float, on: tuple[float, float], channels: int = 1) -> np.ndarray:
    """Silence with a 0.5-amplitude 440 Hz tone between on[0] and on[1] seconds."""
    t = np.arange(int(sr * seconds)) / sr
    x = np.where((t >= on[0]) & (t < on[1]), 0.5 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    return x if channels == 1 else np.repeat(x[:, None], channels, axis=1)


# ---------------------------------------------------------------- ring buffer


def test_ring_buffer_wraparound() -> None:
    rb = RingBuffer(10)
    rb.write(np.arange(7, dtype=np.float32))
    rb.write(np.arange(7, 14, dtype=np.float32))
    assert rb.total == 14
    x, end = rb.read_latest(10)
    assert end == 14 and x.tolist() == list(range(4, 14))
    x, _ = rb.read_latest(3)
    assert x.tolist() == [11, 12, 13]
    x, first = rb.read_range(2)  # 2..3 were overwritten
    assert first == 4 and x.tolist() == list(range(4, 14))
    x, first = rb.read_range(12, 13)
    assert first == 12 and x.tolist() == [12]
    rb.write(np.arange(100, 125, dtype=np.float32))  # bigger than the ring
    x, end = rb.read_latest(20)
    assert end == 39 and x.tolist() == list(range(115, 125))


def test_ring_buffer_multichannel_and_shape_check() -> None:
    rb = RingBuffer(6, channels=2)
    block = np.arange(8, dtype=np.float32).reshape(4, 2)
    rb.write(block)
    rb.write(block + 100)
    x, end = rb.read_latest(6)
    assert x.shape == (6, 2) and end == 8
    assert x[:, 0].tolist() == [4, 6, 100, 102, 104, 106]
    with pytest.raises(ValueError):
        rb.write(np.zeros((3, 3), np.float32))


def test_ring_buffer_concurrent_writer_reader_see_consistent_data() -> None:
    rb = RingBuffer(4096)
    stop = threading.Event()

    def writer() -> None:
        v = 0
        while not stop.is_set() and v < 2_000_000:
            rb.write(np.arange(v, v + 256, dtype=np.float32))
            v += 256

    t = threading.Thread(target=writer)
    t.start()
    bad = 0
    for _ in range(500):
        x, end = rb.read_latest(1000)
        if len(x) and not (np.all(np.diff(x) == 1) and x[-1] == end - 1):
            bad += 1
    stop.set()
    t.join()
    assert bad == 0


# ---------------------------------------------------------------- live stream


def test_stream_tagger_newest_window_wins() -> None:
    eng = EnergyEngine(16000, WindowConfig(1.0, 0.25))
    st = StreamTagger(eng, input_sr=48000)
    assert st.process_latest() is None
    st.push(burst(48000, 0.5, (0, 0)))
    assert st.process_latest() is None  # less than a window
    st.push(burst(48000, 4.5, (4.0, 4.5)))  # now 5 s in total, tone from 4.5 s to 5.0 s
    r = st.process_latest()
    assert r is not None
    assert 4.9 < r.end <= 5.0 and abs((r.end - r.start) - 1.0) < 1e-9  # the resampler lags a few ms
    overlap = r.end - 4.5  # seconds of tone inside the window
    assert r.probs[0] == pytest.approx(0.3536 * np.sqrt(overlap), rel=0.05)
    assert st.skipped_s > 3.0  # the backlog before the newest window was dropped
    assert st.process_latest() is None  # no new hop yet
    st.push(burst(48000, 0.1, (0, 0)))
    assert st.process_latest() is None
    st.push(burst(48000, 0.2, (0, 0)))
    r2 = st.process_latest()
    assert r2 is not None and 5.2 < r2.end <= 5.3 and r2.end - r.end >= 0.25


@pytest.mark.parametrize(("sr_in", "channels"), [(8000, 1), (44100, 2), (96000, 6), (192000, 8)])
def test_stream_tagger_timing_any_rate_and_channels(sr_in: int, channels: int) -> None:
    eng = EnergyEngine(16000, WindowConfig(0.5, 0.25))
    st = StreamTagger(eng, input_sr=sr_in, channels=channels, head=TwoClassHead())
    sig = burst(sr_in, 4.0, (2.0, 2.5), channels)
    src = SyntheticSource(sig, sr_in, block_size=sr_in // 50, speed=0)
    results = []

    def consume(block: np.ndarray) -> None:  # worker keeps up: process after every block
        st.push(block)
        r = st.process_latest()
        if r is not None:
            results.append(r)

    src.start(consume)
    assert src.wait(30)
    ends = np.array([r.end for r in results])
    steps = np.diff(ends)
    assert len(results) >= 10 and np.all(steps >= 0.25) and np.all(steps < 0.35)  # one result per hop
    for r in results:  # the reported times match the content: RMS follows the tone's share of the window
        overlap = max(0.0, min(r.end, 2.5) - max(r.start, 2.0)) / 0.5
        assert r.probs[0] == pytest.approx(0.3536 * np.sqrt(overlap), abs=0.02)
    loudest = max(results, key=lambda r: r.probs[0])
    assert loudest.head_probs is not None and loudest.head_probs.tolist() == [1.0, 0.0]


def test_synthetic_source_reports_device_loss() -> None:
    errors: list[str] = []
    got: list[int] = []
    src = SyntheticSource(np.zeros(48000, np.float32), 16000, block_size=1000, speed=0, fail_after_s=1.5)
    src.start(lambda b: got.append(len(b)), errors.append)
    assert src.wait(10)
    assert sum(got) == 24000
    assert errors == ["synthetic: device lost (simulated)"]


def test_synthetic_source_real_time_pace_and_stop() -> None:
    got: list[np.ndarray] = []
    src = SyntheticSource(np.ones((8000, 2), np.float32), 8000, block_size=400, speed=1.0, loop=True)
    src.start(got.append)
    assert not src.wait(0.3)  # real-time pace: 0.3 s of wall time is far from endless
    src.stop()
    assert src.done.is_set()
    n = sum(len(b) for b in got)
    assert 800 <= n <= 8000 and got[0].shape == (400, 2)


def test_sounddevice_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from app.audio_input import AudioInputError, SoundDeviceSource

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as if it were not installed
    with pytest.raises(AudioInputError, match="sounddevice"):
        SoundDeviceSource()


def test_list_input_devices_shape() -> None:
    from app.audio_input import AudioInputError, list_input_devices

    try:
        devices = list_input_devices()
    except AudioInputError as exc:  # no PortAudio on this machine: the message says how to get it
        assert "PortAudio" in str(exc)
        return
    assert all(d.channels > 0 and d.default_sample_rate > 0 and d.name for d in devices)


# ---------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.3, 1), (1.0, 1), (1.1, 2), (2.0, 5), (2.1, 6), (3.0, 9)],
)
def test_file_window_count_and_times(tmp_path: Path, seconds: float, expected: int) -> None:
    path = tmp_path / "f.wav"
    sf.write(path, burst(22050, seconds, (0, seconds)), 22050)
    eng = EnergyEngine(16000, WindowConfig(1.0, 0.25))
    results = list(tag_file(eng, path))
    n = round(seconds * 16000)
    assert len(results) == expected == count_windows(n, 16000, 4000)
    assert [r.start for r in results] == [0.25 * i for i in range(expected)]
    assert results[-1].end == pytest.approx(min(seconds, results[-1].start + 1.0), abs=1e-3)
    assert all(r.probs.shape == (2,) and r.embedding.shape == (3,) for r in results)
    if seconds < 1.0:  # padded: the tone fills 0.3 of the window
        assert results[0].probs[0] == pytest.approx(0.354 * np.sqrt(0.3), rel=0.05)


def test_file_burst_lands_in_the_right_windows(tmp_path: Path) -> None:
    path = tmp_path / "b.flac"
    sf.write(path, burst(44100, 6.0, (3.0, 4.0), channels=2), 44100)
    eng = EnergyEngine(32000, WindowConfig(1.0, 0.5))
    results = list(tag_file(eng, path, block_s=0.3, batch_size=3))
    loud = [r.start for r in results if r.probs[0] > 0.3]
    assert loud == [3.0]
    assert [r.start for r in results if r.probs[0] > 0.01] == [2.5, 3.0, 3.5]
    assert max(eng.calls) == 3


def test_hop_longer_than_window(tmp_path: Path) -> None:
    path = tmp_path / "h.wav"
    sf.write(path, burst(16000, 10.0, (5.0, 6.0)), 16000)
    eng = EnergyEngine(16000, WindowConfig(1.0, 2.5))
    results = list(tag_file(eng, path, block_s=0.7))
    assert [r.start for r in results] == [0.0, 2.5, 5.0, 7.5]
    assert [r.probs[0] > 0.3 for r in results] == [False, False, True, False]


def test_long_file_memory_is_bounded(tmp_path: Path) -> None:
    sr = 8000
    path = tmp_path / "long.wav"
    minutes = 20
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as f:
        chunk = burst(sr, 60.0, (10.0, 20.0))
        for _ in range(minutes):
            f.write(chunk)
    eng = EnergyEngine(16000, WindowConfig(2.0, 1.0))
    stats = TagStats()
    progress: list[Progress] = []
    n_windows = 0
    for r in tag_file(eng, path, progress=progress.append, batch_size=16, block_s=5.0, stats=stats):
        n_windows += 1
        assert r.probs.shape == (2,)
    total = minutes * 60 * 16000
    assert n_windows == count_windows(total, 32000, 16000) == minutes * 60 - 1
    assert stats.frames_in == minutes * 60 * sr
    assert stats.peak_block_frames == 5 * sr  # the decoder never held more than one block
    assert stats.peak_buffer_samples <= stats.buffer_capacity <= 32000 + 5 * 16000 + 1024
    assert stats.buffer_capacity < total / 100  # well under 1 % of the file at the engine rate
    assert max(eng.calls) == 16
    assert progress[-1].done == progress[-1].total == n_windows


def test_cancel_and_head(tmp_path: Path) -> None:
    path = tmp_path / "c.wav"
    sf.write(path, burst(16000, 30.0, (0, 30.0)), 16000)
    eng = EnergyEngine(16000, WindowConfig(1.0, 0.5))
    cancel = threading.Event()
    got = []
    for r in tag_file(eng, path, head=TwoClassHead(), cancel=cancel, batch_size=4):
        got.append(r)
        if len(got) == 5:
            cancel.set()
    assert len(got) == 8  # the batch in flight finishes, then it stops
    assert all(r.head_probs is not None and r.head_probs.tolist() == [1.0, 0.0] for r in got)
    assert len(list(tag_file(eng, path, cancel=lambda: True, batch_size=4))) == 4


# ---------------------------------------------------------------- with a real (tiny, random) engine


def test_real_engine_file_and_stream_agree(tiny_mel_pack: Path, tmp_path: Path) -> None:
    from models.audio import load_audio
    from models.tagging.engine import Engine

    eng = Engine.load(tiny_mel_pack)
    rng = np.random.default_rng(3)
    sig = (0.2 * rng.standard_normal((int(44100 * 3.3), 2))).astype(np.float32)
    path = tmp_path / "n.wav"
    sf.write(path, sig, 44100, subtype="FLOAT")
    one = list(tag_file(eng, path, batch_size=1))
    many = list(tag_file(eng, path, batch_size=8))
    assert (
        len(one)
        == len(many)
        == count_windows(round(3.3 * eng.sample_rate), eng.sample_rate, eng.sample_rate // 2)
    )
    assert one[0].probs.shape == (527,) and one[0].embedding.shape == (eng.embedding_size,)
    for a, b in zip(one, many, strict=True):
        assert a.start == b.start and np.allclose(a.probs, b.probs, atol=1e-5)
    # the windows hold exactly the decoded audio at the engine's rate
    x = load_audio(path, eng.sample_rate)
    w = eng.sample_rate
    ref_probs, ref_emb = eng.infer(np.stack([x[:w], x[w // 2 : w // 2 + w]]))
    assert np.allclose(one[0].probs, ref_probs[0], atol=1e-5) and np.allclose(
        one[1].embedding, ref_emb[1], atol=1e-4
    )
    # the live path over the same audio gives the same window (streaming vs one-shot resampling)
    st = StreamTagger(eng, input_sr=44100, channels=2)
    st.push(sig[: int(44100 * 2.2)])
    live = st.process_latest()
    assert live is not None
    end = round(live.end * w)
    live_ref, _ = eng.infer(x[None, end - w : end])
    assert np.allclose(live.probs, live_ref[0], atol=2e-3)
