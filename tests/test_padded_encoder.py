"""Several signals of different lengths encoded in one right-padded batch (models/codec/padded.py), each
equal to its own whole-signal encoding: latents within ``CHECK_ATOL`` (1e-4) and codes equal, for torch
and for the ONNX Runtime graph, including the last, partial frame of lengths that are not a multiple of
the hop (which plain zero padding changes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from models.codec.ort_encoder import CHECK_ATOL
from models.codec.padded import (
    MAX_PAD_FRACTION,
    encode_padded,
    groups,
    latents,
    min_samples,
    reflect_tail,
    torch_batched,
)
from models.tagging.engine import Engine

HOP = 320
#: shorter than the graph (one hop), its minimum, one window hop (0.25 s), under and over one 1 s window,
#: exact multiples of the hop and not
LENGTHS = [HOP, 2240, 2241, 6000, 7000, 23999, 24000, 24001, 31234, 50000]


def _signals(lengths: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        t = np.arange(n) / 24000
        f = rng.uniform(200, 3000)
        out.append((0.4 * np.sin(2 * np.pi * f * t) + 0.1 * rng.standard_normal(n)).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def codec():  # the shipped pack's codec with the torch encoder (the reference)
    engine = Engine.load(None, threads=1)
    c = engine.codec
    c.encoder_backend = None  # type: ignore[union-attr]
    return c


def _alone(codec, x: np.ndarray) -> torch.Tensor:  # type: ignore[no-untyped-def]
    with torch.inference_mode():
        return codec._encode_layers(torch.from_numpy(x).view(1, 1, -1))[0]


def _assert_same(codec, got: torch.Tensor, ref: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    assert got.shape == ref.shape
    assert float((got - ref).abs().max()) <= CHECK_ATOL
    with torch.inference_mode():
        assert torch.equal(codec.quantize_codes(got[None]), codec.quantize_codes(ref[None]))


def test_reflect_tail_is_the_right_reflection_of_each_length() -> None:
    rng = np.random.default_rng(1)
    for stride in (2, 4, 5, 8):
        lengths = [stride + 1, 3 * stride, 3 * stride + 1, 4 * stride - 1]
        t = 4 * stride
        h = torch.from_numpy(rng.standard_normal((len(lengths), 3, t)).astype(np.float32))
        got = reflect_tail(h, torch.tensor(lengths), stride)
        for b, n in enumerate(lengths):
            r = -n % stride
            want = F.pad(h[b : b + 1, :, :n], (0, r), "reflect")[0]
            torch.testing.assert_close(got[b, :, : n + r], want, rtol=0, atol=0)
            torch.testing.assert_close(got[b, :, n + r :], h[b, :, n + r :], rtol=0, atol=0)


def test_batched_latents_equal_each_signal_alone(codec) -> None:  # type: ignore[no-untyped-def]
    xs = _signals(LENGTHS)
    got = latents(codec, xs, torch_batched(codec), max_samples=10**9)  # everything it can in one call
    for x, g in zip(xs, got, strict=True):
        _assert_same(codec, g, _alone(codec, x))
        assert g.shape[-1] == -(-len(x) // HOP)


def test_plain_zero_padding_would_change_the_partial_frame(codec) -> None:  # type: ignore[no-untyped-def]
    x = _signals([24000 + 100])[0]
    n = len(x)
    padded = np.zeros((1, 1, -(-n // HOP) * HOP), np.float32)
    padded[0, 0, :n] = x
    with torch.inference_mode():
        zero = codec._encode_layers(torch.from_numpy(padded))[0]
        fixed = encode_padded(codec, torch.from_numpy(padded), torch.tensor([n]))[0]
    ref = _alone(codec, x)
    assert float((zero[:, :-1] - ref[:, :-1]).abs().max()) <= CHECK_ATOL  # causal: whole frames agree
    assert float((zero[:, -1] - ref[:, -1]).abs().max()) > 100 * CHECK_ATOL  # the partial one does not
    _assert_same(codec, fixed, ref)


def test_groups_cover_every_signal_once_with_bounded_padding() -> None:
    rng = np.random.default_rng(2)
    lengths = [int(v) for v in rng.integers(2240, 240000, 200)]
    out = groups(lengths, HOP, max_samples=48000 * 4)
    assert sorted(i for g in out for i in g) == list(range(len(lengths)))
    for g in out:
        n_max = -(-max(lengths[i] for i in g) // HOP) * HOP
        assert n_max <= min(lengths[i] for i in g) * (1 + MAX_PAD_FRACTION) + HOP
        assert len(g) == 1 or n_max * len(g) <= 48000 * 4


def test_too_short_signals_are_encoded_alone(codec) -> None:  # type: ignore[no-untyped-def]
    assert min_samples(codec) == 7 * HOP
    calls: list[int] = []
    run = torch_batched(codec)

    def counted(a: np.ndarray, n: np.ndarray) -> torch.Tensor:
        calls.append(len(n))
        return run(a, n)

    xs = _signals([HOP, 1000, 2240, 2400])
    got = latents(codec, xs, counted)
    assert calls == [2]  # the two of at least 7 frames together; the others through the whole-signal path
    for x, g in zip(xs, got, strict=True):
        _assert_same(codec, g, _alone(codec, x))


def test_onnxruntime_graph_batches_any_lengths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path))
    monkeypatch.setenv("ENCOTAG_ENCODER", "auto")
    engine = Engine.load(None, threads=1)
    assert engine.encoder_backend == "onnxruntime"
    backend = engine.codec.encoder_backend  # type: ignore[union-attr]
    ref = Engine.load(None, threads=1)
    ref.codec.encoder_backend = None  # type: ignore[union-attr]
    xs = _signals(LENGTHS, seed=3)
    before = backend.calls["onnxruntime"]
    got = latents(engine.codec, xs, max_samples=10**9)  # type: ignore[arg-type]
    assert backend.calls["onnxruntime"] == before + len(groups(LENGTHS[1:], HOP, 10**9))
    for x, g in zip(xs, got, strict=True):
        _assert_same(ref.codec, g, _alone(ref.codec, x))
    many = engine.encode_many(xs)  # the engine's grouping, codes as Engine.encode gives each alone
    for x, c in zip(xs, many, strict=True):
        np.testing.assert_array_equal(c, ref.encode(x[None])[0])
