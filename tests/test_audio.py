"""Decoding, downmix, resampling and file listing (models/audio.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.audio import (
    AudioError,
    StreamResampler,
    iter_audio,
    list_audio_files,
    load_audio,
    probe,
    resample,
    sanitize,
    to_mono,
)


def tone(freq: float, sr: int, seconds: float, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return x if channels == 1 else np.repeat(x[:, None], channels, axis=1)


def peak_freq(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


@pytest.mark.parametrize("sr_in", [8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000])
@pytest.mark.parametrize("sr_out", [24000, 32000])
def test_resample_keeps_frequency_and_length(sr_in: int, sr_out: int) -> None:
    x = tone(1000.0, sr_in, 1.0)
    y = resample(x, sr_in, sr_out)
    assert y.dtype == np.float32
    assert abs(len(y) - sr_out) <= 1
    assert abs(peak_freq(y, sr_out) - 1000.0) < 2.0
    assert 0.45 < np.max(np.abs(y[1000:-1000])) < 0.55  # amplitude kept


@pytest.mark.parametrize("sr_in", [8000, 44100, 192000])
def test_stream_resampler_matches_one_shot(sr_in: int) -> None:
    x = tone(440.0, sr_in, 2.0) + tone(3000.0, sr_in, 2.0, amp=0.2)
    rs = StreamResampler(sr_in, 32000)
    parts = [rs.process(x[i : i + 777]) for i in range(0, len(x), 777)]
    y = np.concatenate([*parts, rs.flush()])
    ref = resample(x, sr_in, 32000)
    assert abs(len(y) - len(ref)) <= 1
    n = min(len(y), len(ref))
    assert np.max(np.abs(y[:n] - ref[:n])) < 1e-3


def test_to_mono_averages_channels() -> None:
    x = np.stack([np.ones(10), -np.ones(10), np.full(10, 4.0)], axis=1).astype(np.float32)
    assert np.allclose(to_mono(x), 4 / 3)
    assert to_mono(x[:, 0]).shape == (10,)
    with pytest.raises(ValueError):
        to_mono(np.zeros((2, 2, 2)))


def test_sanitize_replaces_non_finite_only() -> None:
    x = np.array([0.5, np.nan, -np.inf, np.inf, 2.0], dtype=np.float32)
    y = sanitize(x)
    assert y.tolist() == [0.5, 0.0, 0.0, 0.0, 2.0]


@pytest.mark.parametrize("channels", range(1, 9))
def test_iter_audio_any_channel_count(tmp_path: Path, channels: int) -> None:
    sr = 22050
    x = tone(500.0, sr, 1.5, channels)
    path = tmp_path / f"c{channels}.wav"
    sf.write(path, x, sr, subtype="FLOAT")
    stats: dict[str, int] = {}
    blocks = list(iter_audio(path, 32000, block_s=0.4, stats=stats))
    y = np.concatenate(blocks)
    assert abs(len(y) - 48000) <= 1
    assert abs(peak_freq(y, 32000) - 500.0) < 2.0
    assert stats["frames_in"] == len(x)
    assert stats["peak_block_frames"] == round(0.4 * sr)


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000, 96000, 192000])
def test_load_audio_rates(tmp_path: Path, sr: int) -> None:
    path = tmp_path / f"r{sr}.flac"
    sf.write(path, tone(700.0, sr, 0.5), sr)
    y = load_audio(path, 24000)
    assert abs(len(y) - 12000) <= 1
    assert abs(peak_freq(y, 24000) - 700.0) < 4.0
    info = probe(path)
    assert (info.sample_rate, info.channels, info.frames) == (sr, 1, sr // 2)


def test_nan_inf_samples_become_zero_and_warn_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    x = tone(300.0, 16000, 1.0)
    x[100:110] = np.nan
    x[9000] = np.inf
    x[12000] = -np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    stats: dict[str, int] = {}
    with caplog.at_level(logging.WARNING, logger="models.audio"):
        y = np.concatenate(list(iter_audio(path, 16000, block_s=0.25, stats=stats)))
    assert np.isfinite(y).all()
    assert stats["nonfinite"] == 12
    assert y[100:110].tolist() == [0.0] * 10
    assert sum("non-finite" in r.getMessage() for r in caplog.records) == 1


def test_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(os.urandom(4096))
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0, np.float32), 8000)
    good = tmp_path / "good.flac"
    sf.write(good, tone(440, 16000, 3.0), 16000)
    trunc = tmp_path / "trunc.flac"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases = {
        empty: "empty file",
        junk: "not an audio file or unsupported format",
        zero: "empty file",
        tmp_path / "missing.wav": "no such file",
        tmp_path: "folder",
        trunc: "truncated or corrupt",
    }
    for path, reason in cases.items():
        with pytest.raises(AudioError) as info:
            list(iter_audio(path, 16000, block_s=0.5))
        msg = str(info.value)
        assert "\n" not in msg
        assert msg.startswith(str(path) + ": ")
        assert reason in msg, msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "locked.wav"
    sf.write(path, tone(440, 8000, 0.1), 8000)
    path.chmod(0)
    with pytest.raises(AudioError, match="permission denied"):
        probe(path)


def test_list_audio_files_expands_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.wav", "a/b/y.FLAC", "a/b/notes.txt", "a/z.ogg"):
        (tmp_path / name).write_bytes(b"x")
    explicit = tmp_path / "whatever.bin"
    files = list_audio_files([tmp_path / "a", explicit, tmp_path / "a" / "x.wav"])
    names = [p.relative_to(tmp_path).as_posix() for p in files]
    assert names == ["a/b/y.FLAC", "a/x.wav", "a/z.ogg", "whatever.bin"]
