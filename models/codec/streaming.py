"""Streaming encoder: a live stream encoded chunk by chunk, each sample through the encoder once.

EnCodec's encoder is causal: every convolution pads on the left only and the LSTM runs forward. So a
stream can be encoded piece by piece if each convolution keeps the last ``(kernel - 1) · dilation + 1 -
stride`` samples of its input (its left context) and the LSTM keeps its ``(h, c)`` state between pieces.
:class:`StreamingEncoder` does that over a :class:`~models.codec.tagging_codec.TaggingCodec`:
:meth:`~StreamingEncoder.push` takes the samples that arrived since the last call and returns the codes
of the frames they complete (one frame per ``hop_length`` samples; the rest waits for the next call).

At the very start of a stream every convolution reflect-pads its input, exactly like the whole-signal
encoding (:meth:`TaggingCodec.embed`) does; afterwards the real past samples are the context. For the
reflection to be the same as the whole signal's, every layer's first piece must be longer than its
padding: the first :attr:`StreamingEncoder.min_first` samples are collected before anything is encoded
(7 frames, 93 ms, for the 24 kHz layouts). A whole-signal encoding of a length that is a multiple of
the hop has no right padding, so its frames are the frames the stream gives: the latents agree within
float rounding (the convolutions run over other lengths, so sums may be blocked differently; the tests
allow 1e-4 absolute on latents of order 1) and the codes are equal (``tests/test_streaming.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812

from models.codec.codec import num_quantizers
from models.codec.tagging_codec import TaggingCodec, _Conv, _Lstm, _ResBlock


class _ConvState:
    """One convolution with its left context (the tail of its input seen so far)."""

    def __init__(self, conv: _Conv) -> None:
        self.conv = conv
        self.left = conv.k - conv.stride
        self.ctx: Tensor | None = None

    def __call__(self, x: Tensor) -> Tensor:
        """The convolution of the new input ``x`` (B, C, L): L a multiple of the stride, and for the first
        piece longer than the padding, so that the reflection equals the whole signal's."""
        if self.left == 0:
            return self.conv.conv(x)
        if self.ctx is None:
            padded = F.pad(x, (self.left, 0), "reflect")
        else:
            padded = torch.cat([self.ctx, x], dim=-1)
        self.ctx = padded[..., padded.shape[-1] - self.left :].clone()
        return self.conv.conv(padded)


class StreamingEncoder:
    """Encodes one mono stream chunk by chunk (see the module docstring); not thread-safe.

    ``push(audio)`` → codes ``(n_q, f)`` int64 of the ``f`` frames completed by ``audio`` (float32
    ``(n,)`` at the codec's rate); :attr:`frames` counts the frames returned since the start (or the last
    :meth:`reset`). :meth:`push_latent` returns the continuous encoder output instead.
    """

    def __init__(self, codec: TaggingCodec, bandwidth: float | None = None) -> None:
        self.codec = codec
        self.bandwidth = bandwidth
        self.hop = int(codec.hop_length)
        first, *stages, lstm, last = codec.layers_in_order()
        assert isinstance(lstm, _Lstm) and isinstance(first, _Conv) and isinstance(last, _Conv)
        self._lstm = lstm.lstm
        self._first, self._last = first, last
        self._stages: list[_ResBlock | _Conv] = []
        for stage in stages:
            assert isinstance(stage, _ResBlock | _Conv)
            self._stages.append(stage)
        # every convolution's first piece must be longer than its padding: n / (stride before it) > left
        need, scale = (first.k - first.stride) + 1, 1
        for stage in self._stages:
            conv = stage.conv("1") if isinstance(stage, _ResBlock) else stage
            need = max(need, ((conv.k - conv.stride) * scale) + 1)
            if isinstance(stage, _Conv):
                scale *= stage.stride
        need = max(need, (last.k - last.stride) * scale + 1)
        self.min_first = -(-need // self.hop) * self.hop
        self.reset()

    def reset(self) -> None:
        """Start a new stream (the next samples are reflect-padded like the start of a signal)."""
        self._pending = np.zeros(0, np.float32)
        self._convs: dict[int, _ConvState] = {}
        self._state: tuple[Tensor, Tensor] | None = None
        self.frames = 0
        self.samples_encoded = 0  # samples run through the encoder (each once)

    def _conv(self, conv: _Conv) -> _ConvState:
        key = id(conv)
        if key not in self._convs:
            self._convs[key] = _ConvState(conv)
        return self._convs[key]

    def _encode(self, x: Tensor) -> Tensor:
        """Latent (1, D, n / hop) of the new samples x (1, 1, n), n a multiple of the hop."""
        h = self._conv(self._first)(x)
        for stage in self._stages:
            if isinstance(stage, _ResBlock):  # the same operations, in the same order, as TaggingCodec
                s = stage.shortcut.conv(h)
                h = F.elu(h, inplace=True)
                h = F.elu(self._conv(stage.conv("1"))(h), inplace=True)
                h = s.add_(stage.conv("3").conv(h))
            else:
                h = self._conv(stage)(F.elu(h, inplace=True))
        hp = h.permute(2, 0, 1)
        out, self._state = self._lstm(hp, self._state)
        h = (out + hp).permute(1, 2, 0)
        return self._conv(self._last)(F.elu(h))

    def push_latent(self, audio: np.ndarray) -> Tensor:
        """Continuous latent (D, f) of the frames completed by ``audio`` (see :meth:`push`)."""
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        self._pending = np.concatenate([self._pending, x]) if self._pending.size else x.copy()
        ready = (len(self._pending) // self.hop) * self.hop
        if ready == 0 or (self.frames == 0 and ready < self.min_first):
            return torch.zeros(self.codec.cfg.hidden_size, 0)
        chunk, self._pending = self._pending[:ready], self._pending[ready:]
        with torch.inference_mode():
            latent = self._encode(torch.from_numpy(np.ascontiguousarray(chunk)).view(1, 1, -1))[0]
        self.frames += latent.shape[-1]
        self.samples_encoded += ready
        return latent

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Codes ``(n_q, f)`` int64 of the frames completed by ``audio`` (f may be 0)."""
        latent = self.push_latent(audio)
        if latent.shape[-1] == 0:
            return np.zeros((num_quantizers(self.codec.cfg, self.bandwidth), 0), np.int64)
        with torch.inference_mode():
            codes = self.codec.quantize_codes(latent[None], self.bandwidth)[0]
        return codes.numpy()
