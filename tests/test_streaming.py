"""The streaming encoder (models/codec/streaming.py) against the whole-signal encoding, and the live path
of codec packs (models/tagging/live_codes.py through StreamTagger) on it.

Tolerance: streamed latents within 1e-4 absolute of the whole-signal encoding (the convolutions run over
other lengths, so float sums may be blocked differently; measured differences are about 1e-5 on latents
of order 1 for the default pack); codes equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.codec.streaming import StreamingEncoder
from models.config import WindowConfig
from models.resources import default_pack_dir
from models.tagging.engine import Engine
from models.tagging.pipeline import StreamTagger

LATENT_ATOL = 1e-4


def _signal(n: int, seed: int = 0, sr: int = 24000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * (300 + 200 * np.sin(2 * np.pi * 0.5 * t)) * t)
    x += 0.1 * rng.standard_normal(n) * (np.sin(2 * np.pi * 1.3 * t) > 0.3)
    return x.astype(np.float32)


def _engines(tiny_codec_pack: Path) -> list[tuple[Engine, bool]]:
    """(engine, whether its codes must be equal): the tiny random pack's codebooks hold near-duplicate
    entries (frames of steady tones, 1e-3 apart), whose near-ties float rounding may break either way,
    so only its latents are compared; the shipped pack's codes must be equal."""
    engines = [(Engine.load(tiny_codec_pack), False)]
    if (default_pack_dir() / "manifest.json").is_file():
        engines.append((Engine.load(None), True))
    return engines


def _whole(engine: Engine, x: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    codec = engine.codec
    assert codec is not None
    latent = codec.embed(torch.from_numpy(x)[None])
    return latent[0], codec.quantize_codes(latent)[0].numpy()


def test_streamed_equals_whole_signal_for_random_chunkings(tiny_codec_pack: Path) -> None:
    rng = np.random.default_rng(7)
    for engine, exact_codes in _engines(tiny_codec_pack):
        enc = engine.stream_encoder()
        assert isinstance(enc, StreamingEncoder)
        hop = enc.hop
        n = hop * 160  # a multiple of the hop: the whole-signal encoding has no right padding
        x = _signal(n, seed=1)
        ref_latent, ref_codes = _whole(engine, x)
        assert ref_latent.shape[-1] == n // hop
        chunkings = [np.sort(rng.integers(0, n, size=k)) for k in (3, 20, 200)] + [
            np.arange(0, n, 1),
            np.arange(0, n, 6000),
        ]  # sample by sample, then the live hop
        for cuts in chunkings[:-2] + chunkings[-1:]:
            enc.reset()
            pieces, prev = [], 0
            for cut in [*cuts.tolist(), n]:
                pieces.append(enc.push_latent(x[prev:cut]))
                prev = cut
            latent = torch.cat(pieces, dim=-1)
            assert latent.shape == ref_latent.shape and enc.frames == n // hop
            assert float((latent - ref_latent).abs().max()) <= LATENT_ATOL
            assert enc.samples_encoded == n  # each sample through the encoder once
        enc.reset()  # codes, pushed in uneven pieces (0, 1, 319, 321, … samples)
        sizes = [0, 1, 319, 321, 2000, 5, 4999, 6000, 7777]
        codes, prev, i = [], 0, 0
        while prev < n:
            step = sizes[i % len(sizes)]
            codes.append(enc.push(x[prev : prev + step]))
            prev, i = prev + step, i + 1
        got = np.concatenate(codes, axis=1)
        assert got.shape == ref_codes.shape
        if exact_codes:
            np.testing.assert_array_equal(got, ref_codes)


def test_stream_waits_for_enough_samples_to_reflect_like_the_signal(tiny_codec_pack: Path) -> None:
    engine = Engine.load(tiny_codec_pack)
    enc = engine.stream_encoder()
    assert enc is not None
    hop = enc.hop
    assert enc.min_first == 7 * hop  # the last convolution (kernel 7) needs 7 frames to reflect
    x = _signal(hop * 40, seed=2)
    assert enc.push(x[: enc.min_first - 1]).shape[-1] == 0  # nothing encoded yet
    assert enc.push(x[enc.min_first - 1 : hop * 20 + 5]).shape[-1] == 20  # the 5 extra samples wait
    # a length that is not a multiple of the hop: the complete frames equal the truncated signal's
    _, ref = _whole(engine, x[: hop * 20])
    enc.reset()
    np.testing.assert_array_equal(enc.push(x[: hop * 20 + 5]), ref)


def test_live_path_tags_streamed_codes() -> None:
    """StreamTagger on a codec pack (the shipped one) encodes each sample once and tags the newest window
    of the stream's own codes: the results equal tagging windows of the whole signal's codes."""
    engine = Engine.load(None)
    window = WindowConfig(1.0, 0.25)
    st = StreamTagger(engine, window, input_sr=24000)
    assert st.codes is not None
    sr, hop = engine.sample_rate, st.codes.hop
    x = _signal(sr * 4, seed=3)
    results = []
    for start in range(0, len(x), 1000):  # 1000-sample blocks, the worker keeps up
        st.push(x[start : start + 1000])
        r = st.process_latest()
        if r is not None:
            results.append(r)
    assert len(results) >= 10
    ends = np.array([r.end for r in results])
    steps = np.diff(ends)  # one result per hop, to a block and a frame
    assert np.all(steps > 0.25 - hop / sr) and np.all(steps < 0.25 + (1000 + hop) / sr)
    assert st.codes.encoder.samples_encoded <= len(x)
    assert abs((ends[-1] - ends[0]) / (len(ends) - 1) - 0.25) < 0.02  # one result per hop on average
    # the same input rate as the engine: no resampling, so the stream is the signal itself
    _, codes = _whole(engine, x[: (len(x) // hop) * hop])
    width = st.codes.width
    for r in results:
        end = round(r.end * sr / hop)
        assert round(r.start * sr / hop) == end - width
        probs, emb = engine.infer_codes(codes[None, :, end - width : end])
        np.testing.assert_allclose(r.probs, probs[0], atol=1e-5)
        np.testing.assert_allclose(r.embedding, emb[0], atol=1e-4)
    st.reset()  # a new stream starts from the reflection again
    assert st.process_latest() is None and st.codes.encoder.frames == 0


def test_mel_packs_keep_audio_windows(tiny_mel_pack: Path) -> None:
    engine = Engine.load(tiny_mel_pack)
    assert engine.stream_encoder() is None
    assert StreamTagger(engine, input_sr=16000).codes is None


@pytest.mark.parametrize("threads", [1])
def test_streaming_encoder_is_cheaper_per_hop_than_a_window(tiny_codec_pack: Path, threads: int) -> None:
    """Work, not time: per 0.25 s hop the stream encodes 0.25 s of audio, a window path 1 s."""
    torch.set_num_threads(threads)
    engine = Engine.load(tiny_codec_pack)
    st = StreamTagger(engine, WindowConfig(1.0, 0.25), input_sr=24000)
    x = _signal(24000 * 3, seed=4)
    n_results = 0
    for start in range(0, len(x), 6000):
        st.push(x[start : start + 6000])
        n_results += st.process_latest() is not None
    assert st.codes is not None and n_results == 9  # windows ending at 1.0, 1.25, …, 3.0 s
    assert st.codes.encoder.samples_encoded == len(x)  # not 9 windows × 24000


@pytest.mark.parametrize("pack", ["codec", "mel"])
def test_polls_without_a_result_skip_resampling(pack: str, tiny_mel_pack: Path) -> None:
    """StreamTagger resamples only when the new input can complete the next result; the results equal
    those of resampling at every poll (the streaming resampler's output does not depend on the cuts)."""
    engine = Engine.load(None) if pack == "codec" else Engine.load(tiny_mel_pack)
    window = WindowConfig(1.0, 0.25)
    x = np.repeat(_signal(24000 * 3, seed=4), 2)  # 48 kHz input
    runs = []
    for skip in (True, False):
        st = StreamTagger(engine, window, input_sr=48000)
        if not skip:
            st._need = lambda: 0  # type: ignore[method-assign]  # the old behaviour: resample every poll
        calls = [0]
        process = st._rs.process

        def counted(chunk: np.ndarray, process=process, calls=calls) -> np.ndarray:  # noqa: ANN001
            calls[0] += 1
            return process(chunk)

        st._rs.process = counted  # type: ignore[method-assign]
        results = []
        for start in range(0, len(x), 480):  # 10 ms blocks, a poll after each
            st.push(x[start : start + 480])
            r = st.process_latest()
            if r is not None:
                results.append(r)
        runs.append((results, calls[0]))
    (fast, n_fast), (slow, n_slow) = runs
    assert len(fast) == len(slow) >= 6 and n_fast * 3 < n_slow
    for a, b in zip(fast, slow, strict=True):
        assert (a.start, a.end) == (b.start, b.end)
        np.testing.assert_array_equal(a.probs, b.probs)
