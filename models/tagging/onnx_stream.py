"""The live path's streaming encoder without torch: the step graph of :mod:`models.codec.stream_graph`
(encoder and RVQ) run by ONNX Runtime, its state kept here as numpy arrays.

:class:`OnnxStreamingEncoder` has the interface :class:`~models.tagging.live_codes.LiveCodes` uses of
:class:`~models.codec.streaming.StreamingEncoder` (``hop``, ``min_first``, ``frames``, ``reset``,
``push``) and gives the same codes: each sample goes through the encoder once, with the real past as
context, and the first piece of a stream is reflect-padded like the start of a whole signal. Not
thread-safe (the inference worker owns it).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class OnnxStreamingEncoder:
    """``push(audio)`` → codes ``(n_q, f)`` int64 of the ``f`` frames completed by ``audio`` (float32
    ``(n,)`` at the codec's rate); samples short of a frame wait for the next call."""

    def __init__(
        self,
        session: Any,
        states: list[tuple[str, tuple[int, ...]]],
        n_q: int,
        dim: int,
        hop: int,
        min_first: int,
    ) -> None:
        """``session``: the step graph (latent and codes, version 2 of
        :mod:`models.codec.stream_graph`); ``states``: its state inputs and their shapes."""
        self.session = session
        self.states = [(str(n), tuple(int(d) for d in s)) for n, s in states]
        self.n_q, self.dim = int(n_q), int(dim)
        self.hop, self.min_first = int(hop), int(min_first)
        self.reset()

    def reset(self) -> None:
        """Start a new stream (its first piece is reflect-padded like the start of a signal)."""
        self._pending = np.zeros(0, np.float32)
        self._state = {n: np.zeros(s, np.float32) for n, s in self.states}
        self.frames = 0
        self.samples_encoded = 0

    def push_latent(self, audio: np.ndarray) -> np.ndarray:
        """Continuous latent ``(D, f)`` float32 of the frames completed by ``audio``."""
        return self._push(audio)[0]

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Codes ``(n_q, f)`` int64 of the frames completed by ``audio`` (f may be 0)."""
        return self._push(audio)[1]

    def _push(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        self._pending = np.concatenate([self._pending, x]) if self._pending.size else x.copy()
        ready = (len(self._pending) // self.hop) * self.hop
        if ready == 0 or (self.frames == 0 and ready < self.min_first):
            return np.zeros((self.dim, 0), np.float32), np.zeros((self.n_q, 0), np.int64)
        chunk, self._pending = self._pending[:ready], self._pending[ready:]
        feeds = {
            "audio": np.ascontiguousarray(chunk).reshape(1, 1, -1),
            "first": np.array([1.0 if self.frames == 0 else 0.0], np.float32),
            **self._state,
        }
        latent, codes, *new = self.session.run(None, feeds)
        self._state = {n: np.asarray(v, np.float32) for (n, _), v in zip(self.states, new, strict=True)}
        self.frames += latent.shape[-1]
        self.samples_encoded += ready
        return np.asarray(latent[0], np.float32), np.asarray(codes[0], np.int64)


__all__ = ["OnnxStreamingEncoder"]
