"""The streaming encoder as one ONNX graph: a step with its state as explicit inputs and outputs.

:class:`~models.codec.streaming.StreamingEncoder` keeps each convolution's left context and the LSTM's
``(h, c)`` in Python between pieces. :class:`StreamStep` is the same computation with that state passed
in and returned, so a graph exported from it (:func:`export_stream_step`) can stream without torch
(:mod:`models.tagging.onnx_stream`).

Graph inputs: ``audio`` ``(1, 1, n)`` float32 at the codec rate, ``n`` a multiple of the hop (and, on a
stream's first piece, at least ``StreamingEncoder.min_first``); ``first`` ``(1,)`` float32, 1 on a
stream's first piece (every convolution reflect-pads its input, as the whole-signal encoding does; the
context inputs are ignored) and 0 afterwards; ``ctx0 … ctxK`` the left context of each convolution
that has one, ``(1, C_in, left)`` float32 (:func:`state_shapes`); ``h``, ``c`` ``(layers, 1, D)``
float32, the LSTM state (zeros on the first piece). Outputs: ``latent`` ``(1, D, n / hop)``, ``codes``
``(1, n_q, n / hop)`` int64 and the next state, in the order of the inputs (``ctx0_out`` …, ``h_out``,
``c_out``).

The RVQ is in the graph (version 2, ``STREAM_VERSION`` of :mod:`models.tagging.onnx_files`): with
numpy's, each hop's few frames went through a multi-threaded BLAS call per codebook, whose thread
wake-ups cost more than the arithmetic (7.6 against 1.2 ms per hop with one BLAS thread, 2026-12-02).
It is the arithmetic of :func:`models.tagging.onnx_engine.rvq_codes` (``-2 r·e + |r|² + |e|²`` added in
that order, the squared norms of the codewords given as computed by numpy, the first of equal
distances), so the codes equal the torch stream's wherever the dot products round alike; the export
checks that on a signal.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from models.codec.tagging_codec import TaggingCodec, _Conv, _Lstm, _ResBlock

OPSET = 17


def _context_convs(codec: TaggingCodec) -> list[_Conv]:
    """The encoder's convolutions with a left context (a state of the step), in the order they run."""
    first, *stages, _lstm, last = codec.layers_in_order()
    run = [first, *(st.conv("1") if isinstance(st, _ResBlock) else st for st in stages), last]
    return [c for c in run if isinstance(c, _Conv) and c.k - c.stride > 0]


class StreamStep(nn.Module):
    """One streaming step of a codec's encoder with explicit state, and the RVQ of ``codebooks``
    ``(n_q, size, D)`` with their squared ``norms`` ``(n_q, size)`` float32 as numpy computes them (see
    the module docstring)."""

    def __init__(self, codec: TaggingCodec, codebooks: np.ndarray, norms: np.ndarray) -> None:
        super().__init__()
        self.books = torch.from_numpy(np.ascontiguousarray(codebooks))
        self.norms = torch.from_numpy(np.ascontiguousarray(norms))
        first, *stages, lstm, last = codec.layers_in_order()
        assert isinstance(lstm, _Lstm) and isinstance(first, _Conv) and isinstance(last, _Conv)
        self._first, self._last, self._lstm = first, last, lstm.lstm
        self._stages = nn.ModuleList(stages)  # registered: their weights are the graph's parameters

    def _conv(self, conv: _Conv, x: Tensor, first: Tensor, ctx: list[Tensor], new: list[Tensor]) -> Tensor:
        left = conv.k - conv.stride
        if left == 0:
            return conv.conv(x)
        past = ctx[len(new)]
        # the graph computes both branches: the reflection of a later piece, which may be shorter than
        # the padding, must not fail, so it reflects x with zeros appended (the same left reflection
        # whenever x is long enough, as a first piece is) and drops them
        zx = torch.cat([x, x.new_zeros(x.shape[0], x.shape[1], left)], dim=-1)
        reflected = F.pad(zx, (left, 0), "reflect")
        reflected = reflected[..., : reflected.shape[-1] - left]
        padded = torch.where(first > 0.5, reflected, torch.cat([past, x], dim=-1))
        new.append(padded[..., padded.shape[-1] - left :])
        return conv.conv(padded)

    def forward(self, audio: Tensor, first: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        ctx, (h0, c0) = list(state[:-2]), state[-2:]
        new: list[Tensor] = []
        h = self._conv(self._first, audio, first, ctx, new)
        for stage in self._stages:
            if isinstance(stage, _ResBlock):  # as StreamingEncoder._encode, without in-place ops
                s = stage.shortcut.conv(h)
                h = F.elu(h)
                h = F.elu(self._conv(stage.conv("1"), h, first, ctx, new))
                h = s + stage.conv("3").conv(h)
            else:
                assert isinstance(stage, _Conv)
                h = self._conv(stage, F.elu(h), first, ctx, new)
        hp = h.permute(2, 0, 1)
        out, (h1, c1) = self._lstm(hp, (h0, c0))
        h = (out + hp).permute(1, 2, 0)
        latent = self._conv(self._last, F.elu(h), first, ctx, new)
        return (latent, self._rvq(latent), *new, h1, c1)

    def _rvq(self, latent: Tensor) -> Tensor:
        """Codes ``(1, n_q, f)`` int64 of ``latent`` ``(1, D, f)`` (see the module docstring)."""
        r = latent[0].transpose(0, 1)  # (f, D)
        codes = []
        for q in range(self.books.shape[0]):
            embed = self.books[q]
            dist = (r @ embed.t()) * -2.0 + (r * r).sum(1, keepdim=True) + self.norms[q]
            idx = torch.argmin(dist, dim=1)
            r = r - embed[idx]
            codes.append(idx)
        return torch.stack(codes)[None]


def state_shapes(codec: TaggingCodec) -> list[tuple[str, tuple[int, ...]]]:
    """The graph's state inputs and their shapes: ``ctx<i>`` ``(1, C_in, left)``, then ``h`` and ``c``
    ``(layers, 1, D)``."""
    out: list[tuple[str, tuple[int, ...]]] = [
        (f"ctx{i}", (1, conv.conv.in_channels, conv.k - conv.stride))
        for i, conv in enumerate(_context_convs(codec))
    ]
    stage = codec.layers_in_order()[-2]
    assert isinstance(stage, _Lstm)
    lstm = stage.lstm
    out += [("h", (lstm.num_layers, 1, lstm.hidden_size)), ("c", (lstm.num_layers, 1, lstm.hidden_size))]
    return out


def export_stream_step(
    codec: TaggingCodec, min_first: int, codebooks: np.ndarray, norms: np.ndarray
) -> bytes:
    """:class:`StreamStep` of ``codec`` with the RVQ of ``codebooks`` (``norms``: their squared norms, as
    numpy computes them) as ONNX bytes (the piece length is a dynamic axis)."""
    shapes = state_shapes(codec)
    names = [n for n, _ in shapes]
    audio = torch.zeros(1, 1, max(min_first, 8 * int(codec.hop_length)))
    state = tuple(torch.zeros(s) for _, s in shapes)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            StreamStep(codec, codebooks, norms).eval(),
            (audio, torch.ones(1), *state),
            buf,  # type: ignore[arg-type]  # a file object works (TorchScript exporter)
            input_names=["audio", "first", *names],
            output_names=["latent", "codes", *(f"{n}_out" for n in names)],
            dynamic_axes={"audio": {2: "samples"}, "latent": {2: "frames"}, "codes": {2: "frames"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buf.getvalue()


__all__ = ["StreamStep", "export_stream_step", "state_shapes"]
