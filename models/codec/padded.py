"""Encoding several signals of different lengths in one batch, each exactly as if it were encoded alone.

EnCodec's encoder is causal: frame ``t`` of every layer depends only on that layer's input up to the end
of the frame, and the LSTM runs forward. Padding a signal on the right with anything therefore leaves
every frame that lies wholly inside the signal unchanged. The one frame it can change is the **last,
partial** frame of a signal whose length ``n`` is not a multiple of the hop: the whole-signal encoding
(:meth:`TaggingCodec._encode_layers`) completes it by reflect-padding the input of each downsampling
convolution on the right (``r = -L mod stride`` samples, ``x[L-2], x[L-3], …``), not with what comes
after the signal.

:func:`encode_padded` reproduces that: the batch is right-padded to a common length ``N`` (a multiple of
the hop), and before each downsampling convolution every item's ``r`` samples after its own level length
``L`` are overwritten with that reflection (:func:`reflect_tail`: a gather and a scatter of ``stride - 1``
samples per channel). Item ``i``'s first ``ceil(n_i / hop)`` frames then equal its whole-signal encoding
(up to float rounding of convolutions over other lengths; ``tests/test_padded_encoder.py``); frames
after them are garbage to cut off. Every item must be at least :func:`min_samples` long (the left
reflections of every layer must come from the item's own samples, as in the whole-signal encoding).

The same function is what :mod:`models.codec.ort_encoder` exports to ONNX (inputs ``audio`` (B, 1, N)
float32 and ``lengths`` (B,) int64), so ONNX Runtime encodes any length, batched or not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812

from models.codec.tagging_codec import TaggingCodec, _Conv, _Lstm, _ResBlock

#: How many padded samples a group may add per real sample (grouping by similar length).
MAX_PAD_FRACTION = 0.25
#: Samples (B × N) of one encoder call: 2 s at 24 kHz. Larger batches were slower here (the encoder is
#: memory bound: 30 clips of 0.5–5 s took 10–14 s in groups of up to 2 s and 23–32 s in groups of up to
#: 80 s, ONNX Runtime, 1 thread, 2026-12-02), so only files under a second share a call.
MAX_BATCH_SAMPLES = 48_000


def min_samples(codec: TaggingCodec) -> int:
    """The shortest signal :func:`encode_padded` encodes exactly (the streaming encoder's first piece,
    a multiple of the hop: 7 frames, 93 ms, for the 24 kHz layouts)."""
    from models.codec.streaming import StreamingEncoder

    return int(StreamingEncoder(codec).min_first)


def reflect_tail(h: Tensor, lengths: Tensor, stride: int) -> Tensor:
    """``h`` (B, C, T) with item ``b``'s positions ``L_b + j`` (``j < -L_b mod stride``) set to
    ``h[b, :, L_b - 2 - j]``: the right reflection a downsampling convolution of ``stride`` gives a signal
    of length ``L_b`` (``lengths`` (B,) int64, each ``> stride`` and ``≤ T``; T a multiple of ``stride``)."""
    if stride <= 1:
        return h
    j = torch.arange(stride - 1, dtype=torch.int64)[None, :]  # (1, s-1)
    ln = lengths.to(torch.int64)[:, None]  # (B, 1)
    use = j < torch.remainder(-ln, stride)
    last = ln - 1
    src = torch.where(use, ln - 2 - j, last)  # unused slots copy the last sample onto itself
    dst = torch.where(use, ln + j, last)
    b, c, _ = h.shape
    src_i = src[:, None, :].expand(b, c, stride - 1)
    dst_i = dst[:, None, :].expand(b, c, stride - 1)
    return h.scatter(2, dst_i, torch.gather(h, 2, src_i))


def encode_padded(codec: TaggingCodec, x: Tensor, lengths: Tensor) -> Tensor:
    """Latent (B, D, N / hop) of audio ``x`` (B, 1, N) float32, N a multiple of the hop, whose item ``b``
    is a signal of ``lengths[b]`` samples followed by padding: frames ``< ceil(lengths[b] / hop)`` equal
    that signal's whole-signal encoding (module docstring). The operations of
    :meth:`TaggingCodec._encode_layers`, in the same order, plus :func:`reflect_tail`."""
    first, *stages, lstm, last = codec.layers_in_order()
    assert isinstance(lstm, _Lstm) and isinstance(first, _Conv) and isinstance(last, _Conv)
    ln = lengths.to(torch.int64)
    h = first(x)
    for stage in stages:
        if isinstance(stage, _ResBlock):
            s = stage.shortcut(h)
            h = F.elu(h, inplace=True)
            h = F.elu(stage.conv("1")(h), inplace=True)
            h = s.add_(stage.conv("3")(h))
        else:
            assert isinstance(stage, _Conv)
            h = reflect_tail(F.elu(h, inplace=True), ln, stage.stride)
            h = stage(h)
            ln = torch.div(ln + (stage.stride - 1), stage.stride, rounding_mode="floor")
    hp = h.permute(2, 0, 1)
    h = (lstm.lstm(hp)[0] + hp).permute(1, 2, 0)
    return last(F.elu(h))


def groups(lengths: Sequence[int], hop: int, max_samples: int = MAX_BATCH_SAMPLES) -> list[list[int]]:
    """Indices of ``lengths`` in groups of similar length (sorted; a group's padded length, a multiple of
    ``hop``, adds at most :data:`MAX_PAD_FRACTION` of padding per item and holds at most ``max_samples``
    samples in all). Every index is in exactly one group."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    for i in order:
        n = -(-max(1, lengths[i]) // hop) * hop
        if out:
            g = out[-1]
            lo = max(1, lengths[g[0]])
            if n <= lo * (1 + MAX_PAD_FRACTION) + hop and n * (len(g) + 1) <= max_samples:
                g.append(i)
                continue
        out.append([i])
    return out


Batched = Callable[[np.ndarray, np.ndarray], Tensor]  # (audio (B, 1, N), lengths (B,)) → latent


def torch_batched(codec: TaggingCodec) -> Batched:
    """:func:`encode_padded` on numpy inputs (the torch backend of :func:`latents`)."""

    def run(audio: np.ndarray, lengths: np.ndarray) -> Tensor:
        with torch.inference_mode():
            return encode_padded(codec, torch.from_numpy(audio), torch.from_numpy(lengths))

    return run


def latents(
    codec: TaggingCodec,
    audios: Sequence[np.ndarray],
    batched: Batched | None = None,
    max_samples: int = MAX_BATCH_SAMPLES,
) -> list[Tensor]:
    """Whole-signal latents (D, ceil(n_i / hop)) of mono float32 signals ``audios`` (each (n_i,) at the
    codec's rate), encoded in groups of similar length (:func:`groups`) by ``batched`` (default: the
    codec's ONNX Runtime backend if it has one, else :func:`torch_batched`). Signals shorter than
    :func:`min_samples` are encoded alone by the codec (its whole-signal path)."""
    hop, short = int(codec.hop_length), min_samples(codec)
    if batched is None:
        batched = getattr(codec.encoder_backend, "batched", None) or torch_batched(codec)
    out: list[Tensor | None] = [None] * len(audios)
    sizes = [int(np.asarray(a).shape[-1]) for a in audios]
    tiny = [i for i, n in enumerate(sizes) if n < short]
    for i in tiny:
        with torch.inference_mode():
            out[i] = codec.embed(torch.from_numpy(np.asarray(audios[i], np.float32)).view(1, -1))[0]
    rest = [i for i, n in enumerate(sizes) if n >= short]
    for g in groups([sizes[i] for i in rest], hop, max_samples):
        idx = [rest[k] for k in g]
        n_max = -(-max(sizes[i] for i in idx) // hop) * hop
        x = np.zeros((len(idx), 1, n_max), np.float32)
        for row, i in enumerate(idx):
            x[row, 0, : sizes[i]] = audios[i]
        lat = batched(x, np.asarray([sizes[i] for i in idx], np.int64))
        for row, i in enumerate(idx):
            out[i] = lat[row, :, : -(-sizes[i] // hop)]
    return [t for t in out if t is not None]
