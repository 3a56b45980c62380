"""The live path of codec packs: the stream encoded once, hop by hop, and the newest window of codes.

:class:`LiveCodes` feeds the engine-rate samples that arrived since the last hop through a
:class:`~models.codec.streaming.StreamingEncoder` (each sample through the encoder once, with the real
past as context) and keeps a ring of the newest window's codes (``round(win_n / hop)`` frames, the same
frames :mod:`models.tagging.code_tagging` cuts from a whole file's codes). ``StreamTagger``
(:mod:`models.tagging.pipeline`) tags that window with ``engine.infer_codes``. Engines whose codec has no
streaming encoder (the official codec through ``transformers``) keep the audio-window path:
:func:`live_codes` returns ``None`` for them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class LiveCodes:
    """Streaming encoder + a ring of the newest ``width`` code frames; times count engine-rate samples."""

    def __init__(self, encoder: Any, win_n: int) -> None:
        self.encoder = encoder
        self.hop = int(encoder.hop)
        self.width = max(1, round(int(win_n) / self.hop))
        self._ring = np.zeros((0, 0), np.int64)
        self._queue: list[np.ndarray] = []
        self.origin = 0
        self.samples = 0
        self.restart(0)

    def restart(self, origin: int) -> None:
        """A new stream whose first sample is sample ``origin`` of the stream clock."""
        self.encoder.reset()
        self._ring = np.zeros((0, 0), np.int64)
        self._queue = []
        self.origin = int(origin)
        self.samples = 0  # samples pushed since the restart

    def push(self, samples: np.ndarray) -> None:
        """Queue new samples (mono float32 at the engine rate); they are encoded when a window is asked
        for, in one piece per hop (many small pieces would cost the encoder's per-call overhead)."""
        if len(samples):
            self._queue.append(np.asarray(samples, np.float32))
            self.samples += len(samples)

    def _encode_queued(self) -> None:
        if not self._queue:
            return
        samples = np.concatenate(self._queue) if len(self._queue) > 1 else self._queue[0]
        self._queue = []
        codes = self.encoder.push(samples)
        if codes.shape[-1] == 0:
            return
        ring = np.concatenate([self._ring, codes], axis=1) if self._ring.size else codes
        self._ring = ring[:, -self.width :]

    @property
    def end(self) -> int:
        """The stream-clock sample just after the newest complete frame (encoded or queued)."""
        return self.origin + (self.samples // self.hop) * self.hop

    @property
    def missing(self) -> int:
        """Samples still to come before a full window of frames has arrived (0 once :attr:`ready`)."""
        return max(0, max(self.width, self.encoder.min_first // self.hop) * self.hop - self.samples)

    @property
    def ready(self) -> bool:
        """A full window of frames has arrived (encoded or queued)."""
        return self.missing == 0

    def window(self) -> np.ndarray | None:
        """Encode what is queued; the newest window's codes ``(n_q, width)`` (a copy), or ``None`` before
        a full window."""
        self._encode_queued()
        if self._ring.shape[-1] < self.width:
            return None
        return self._ring.copy()


def live_codes(engine: Any, win_n: int) -> LiveCodes | None:
    """A :class:`LiveCodes` for ``engine`` if it tags through codes and can stream its encoder."""
    make = getattr(engine, "stream_encoder", None)
    if not getattr(engine, "is_codec_pack", False) or make is None:
        return None
    encoder = make()
    return None if encoder is None else LiveCodes(encoder, win_n)
