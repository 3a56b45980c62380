"""One windower for audio and codes (models/tagging/windows.py): the same windows as the whole-input
definition that tagging used before (``tag_file``'s streamed windows, ``head_data``'s whole-clip windows
and the code windows of ``code_tagging``), whatever the block sizes; and one codec-pack branch point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.tagging.windows import CODE_LOOKAHEAD, Windower, count_windows, uses_codes, window_samples

REPO_ROOT = Path(__file__).resolve().parent.parent


def _reference_audio(x: np.ndarray, win_n: int, hop_n: int) -> list[tuple[int, np.ndarray]]:
    """Window k = samples [k·hop, k·hop + win) of the whole input, zero-padded, k < count_windows."""
    out = []
    for k in range(count_windows(len(x), win_n, hop_n)):
        w = x[k * hop_n : k * hop_n + win_n]
        out.append((k * hop_n, np.pad(w, (0, win_n - len(w)))))
    return out


def _reference_codes(codes: np.ndarray, n: int, win_n: int, hop_n: int, hop: int, silence: np.ndarray):
    """Window k = frames [round(k·hop_n / hop), … + round(win_n / hop)), padded with silence codes."""
    win_f = max(1, round(win_n / hop))
    out = []
    for k in range(count_windows(max(n, 1), win_n, hop_n)):
        f0 = round(k * hop_n / hop)
        part = codes[:, f0 : f0 + win_f]
        out.append((k, np.concatenate([part, silence[: len(codes), : win_f - part.shape[1]]], axis=1)))
    return out


def _split(x: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    n = x.shape[-1]
    return np.split(x, np.sort(rng.integers(0, n + 1, rng.integers(0, 6))), axis=-1)


def test_audio_windows_match_the_whole_input_definition() -> None:
    rng = np.random.default_rng(0)
    for _ in range(400):
        win_n, hop_n, n = int(rng.integers(1, 60)), int(rng.integers(1, 80)), int(rng.integers(0, 400))
        x = rng.standard_normal(n).astype(np.float32)
        wdw = Windower(win_n, hop_n, capacity=win_n + max(hop_n, int(rng.integers(1, 50))))
        got = []
        for block in _split(x, rng):
            got += [(wdw.start(k), w.copy()) for k, w in wdw.feed(block)]
        got += [(wdw.start(k), w.copy()) for k, w in wdw.finish(wdw.total)]
        want = _reference_audio(x, win_n, hop_n)
        assert [s for s, _ in got] == [s for s, _ in want], (win_n, hop_n, n)
        for (_, a), (_, b) in zip(got, want, strict=True):
            assert np.array_equal(a, b) and a.dtype == np.float32
        assert wdw.total == n and wdw.peak <= wdw.capacity


def test_code_windows_match_the_whole_stream_definition() -> None:
    rng = np.random.default_rng(1)
    silence = np.full((4, 512), -1, np.int64)
    for _ in range(400):
        hop = int(rng.integers(1, 8))
        win_n = int(rng.integers(1, 200))
        hop_n = int(rng.integers(1, win_n + 1))
        n = int(rng.integers(0, 600))
        codes = rng.integers(0, 50, (3, -(-n // hop))).astype(np.int64)
        wdw = Windower(
            win_n,
            hop_n,
            unit=hop,
            lookahead=CODE_LOOKAHEAD,
            capacity=int(rng.integers(0, 40)),
            silence=lambda: silence,
        )
        got = []
        for block in _split(codes, rng):
            for k, w in wdw.feed(block):
                # emitted only once the frames after the window exist (the audio covers it)
                assert wdw.start(k) + wdw.width + CODE_LOOKAHEAD <= wdw.total
                got.append((k, w.copy()))
        got += [(k, w.copy()) for k, w in wdw.finish(n)]
        want = _reference_codes(codes, n, win_n, hop_n, hop, silence)
        assert [k for k, _ in got] == [k for k, _ in want], (hop, win_n, hop_n, n)
        for (_, a), (_, b) in zip(got, want, strict=True):
            assert np.array_equal(a, b) and a.dtype == np.int64


def test_window_arithmetic() -> None:
    from models.config import WindowConfig

    assert window_samples(WindowConfig(window_s=1.0, hop_s=0.25), 32000) == (32000, 8000)
    with pytest.raises(ValueError):
        window_samples(WindowConfig(window_s=1.0, hop_s=0.0), 32000)
    assert count_windows(0, 10, 5) == count_windows(10, 10, 5) == 1
    assert count_windows(11, 10, 5) == 2 and count_windows(20, 10, 5) == 3 and count_windows(21, 10, 5) == 4
    assert Windower(24000, 6000, unit=320).width == 75 and Windower(24000, 6000, unit=320).start(3) == 56


def test_codec_branch_is_is_codec_pack(tiny_codec_pack: Path, tiny_mel_pack: Path) -> None:
    """``uses_codes`` reads ``Engine.is_codec_pack``; nothing else asks an engine for its codec."""
    from models.tagging.engine import Engine

    assert uses_codes(Engine.load(tiny_codec_pack)) and not uses_codes(Engine.load(tiny_mel_pack))

    class AudioOnly:  # an engine-like object without the property tags audio
        sample_rate = 16000

    assert not uses_codes(AudioOnly())
    hits = [
        f"{p.relative_to(REPO_ROOT)}:{i}"
        for p in sorted((REPO_ROOT / "models").rglob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if 'getattr(engine, "codec"' in line or 'hasattr(engine, "infer_codes")' in line
    ]
    assert hits == [], hits
