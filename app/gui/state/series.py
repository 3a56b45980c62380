"""Qt-free containers for what the GUI shows: batches of window results and growing result series.

These are plain numpy containers (no Qt, no torch) so that they can cross threads (``ResultBatch`` and
``Overview`` are frozen) and be unit-tested without a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.tagging.results import WindowResult


@dataclass(frozen=True)
class TagLabels:
    """The loaded pack's tag names, which are trusted, and the names drawn in plot legends (a † marks
    untrusted ones)."""

    names: tuple[str, ...] = ()
    trusted: tuple[bool, ...] = ()

    @property
    def curve(self) -> tuple[str, ...]:
        return tuple(n if ok else f"{n} †" for n, ok in zip(self.names, self.trusted, strict=True))

    def __bool__(self) -> bool:
        return bool(self.names)


@dataclass(frozen=True)
class ResultBatch:
    """Consecutive window results stacked: starts/ends (N,) float64 seconds, probs (N, C) float32,
    embeddings (N, D) float32, head_probs (N, K) float32 or None."""

    starts: np.ndarray
    ends: np.ndarray
    probs: np.ndarray
    embeddings: np.ndarray
    head_probs: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    @staticmethod
    def from_results(results: Sequence[WindowResult]) -> ResultBatch:
        """Stack ``results`` (at least one)."""
        heads = [r.head_probs for r in results]
        head_probs = None
        if heads and all(h is not None for h in heads):
            head_probs = np.stack([np.asarray(h, dtype=np.float32) for h in heads])  # type: ignore[arg-type]
        return ResultBatch(
            starts=np.array([r.start for r in results], dtype=np.float64),
            ends=np.array([r.end for r in results], dtype=np.float64),
            probs=np.stack([np.asarray(r.probs, dtype=np.float32) for r in results]),
            embeddings=np.stack([np.asarray(r.embedding, dtype=np.float32) for r in results]),
            head_probs=head_probs,
        )


@dataclass(frozen=True)
class Overview:
    """Waveform overview of a file: per-bin min/max (M,) float32 at ``rate`` bins per second."""

    lo: np.ndarray
    hi: np.ndarray
    rate: float
    duration: float


def envelope(x: np.ndarray, samples_per_bin: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of ``x`` (n,) over consecutive bins of ``samples_per_bin`` (last partial bin kept)."""
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    m = -(-n // samples_per_bin)
    pad = m * samples_per_bin - n
    y = np.pad(x, (0, pad), mode="edge").reshape(m, samples_per_bin)
    return y.min(axis=1).astype(np.float32), y.max(axis=1).astype(np.float32)


class ResultSeries:
    """A growing (optionally bounded) time series of window results.

    Storage is preallocated and doubled when full (amortised O(1) appends); with ``max_len`` set the
    oldest rows are dropped so memory stays bounded (live streams).
    """

    def __init__(self, max_len: int | None = None) -> None:
        self.max_len = max_len
        self._n = 0
        self._starts = np.zeros(0)
        self._ends = np.zeros(0)
        self._probs: np.ndarray | None = None
        self._embs: np.ndarray | None = None
        self.dropped = 0  # rows discarded from the front (bounded series)

    def __len__(self) -> int:
        return self._n

    def clear(self) -> None:
        self.__init__(self.max_len)  # type: ignore[misc]

    def _reserve(self, extra: int, n_classes: int, dim: int) -> None:
        need = self._n + extra
        if self._probs is not None and self._probs.shape[0] >= need and self._embs is not None:
            return
        cap = max(64, need, 2 * (0 if self._probs is None else self._probs.shape[0]))
        if self.max_len is not None:
            cap = max(min(cap, 2 * self.max_len), need)
        probs = np.zeros((cap, n_classes), np.float32)
        embs = np.zeros((cap, dim), np.float32)
        starts, ends = np.zeros(cap), np.zeros(cap)
        if self._probs is not None and self._embs is not None:
            probs[: self._n] = self._probs[: self._n]
            embs[: self._n] = self._embs[: self._n]
            starts[: self._n] = self._starts[: self._n]
            ends[: self._n] = self._ends[: self._n]
        self._probs, self._embs, self._starts, self._ends = probs, embs, starts, ends

    def append(self, batch: ResultBatch) -> None:
        """Add the rows of ``batch`` (same class count and embedding size as before)."""
        k = len(batch)
        if k == 0:
            return
        if self._probs is not None and (
            batch.probs.shape[1] != self._probs.shape[1]
            or self._embs is None
            or batch.embeddings.shape[1] != self._embs.shape[1]
        ):
            raise ValueError("result batch shape differs from the series")
        if self.max_len is not None and self._n + k > self.max_len and self._probs is not None:
            drop = min(self._n, self._n + k - self.max_len)
            if drop:
                keep = slice(drop, self._n)
                assert self._embs is not None
                self._probs[: self._n - drop] = self._probs[keep]
                self._embs[: self._n - drop] = self._embs[keep]
                self._starts[: self._n - drop] = self._starts[keep]
                self._ends[: self._n - drop] = self._ends[keep]
                self._n -= drop
                self.dropped += drop
        self._reserve(k, batch.probs.shape[1], batch.embeddings.shape[1])
        assert self._probs is not None and self._embs is not None
        sl = slice(self._n, self._n + k)
        self._probs[sl] = batch.probs
        self._embs[sl] = batch.embeddings
        self._starts[sl] = batch.starts
        self._ends[sl] = batch.ends
        self._n += k

    @property
    def starts(self) -> np.ndarray:
        return self._starts[: self._n]

    @property
    def ends(self) -> np.ndarray:
        return self._ends[: self._n]

    @property
    def centres(self) -> np.ndarray:
        """(N,) window centres in seconds (where curves are drawn)."""
        return 0.5 * (self.starts + self.ends)

    @property
    def probs(self) -> np.ndarray:
        """(N, C) float32 view (do not keep across appends)."""
        return np.zeros((0, 0), np.float32) if self._probs is None else self._probs[: self._n]

    @property
    def embeddings(self) -> np.ndarray:
        return np.zeros((0, 0), np.float32) if self._embs is None else self._embs[: self._n]

    def index_at(self, t: float) -> int | None:
        """Row whose window centre is nearest to ``t`` seconds, or None when empty."""
        if self._n == 0:
            return None
        c = self.centres
        i = int(np.searchsorted(c, t))
        if i >= self._n:
            return self._n - 1
        if i > 0 and abs(c[i - 1] - t) <= abs(c[i] - t):
            return i - 1
        return i

    def top_classes(self, k: int) -> np.ndarray:
        """Indices of the ``k`` classes with the highest peak probability over the series."""
        if self._n == 0:
            return np.zeros(0, dtype=int)
        peak = self.probs.max(axis=0)
        return np.argsort(-peak, kind="stable")[:k]
