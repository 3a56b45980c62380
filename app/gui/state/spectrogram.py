"""Log-frequency spectrograms (Qt-free, numpy only): of a whole file and of the live input, column by column.

A column is the power of one Hann-windowed frame summed into :data:`N_BANDS` bands spaced evenly in
log frequency from :data:`F_MIN` Hz to the Nyquist frequency (at most :data:`F_MAX`), in dB relative to a
full-scale sine (0 dB), floored at :data:`FLOOR_DB`. :class:`SpectrogramBuilder` turns a stream of
samples into columns (carrying the samples between calls), so a file is read block by block and the
live input in whatever blocks arrive. Computed on background threads (``app.gui.spectro_jobs``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_BANDS = 96
F_MIN = 40.0
F_MAX = 16000.0
FLOOR_DB = -100.0
FILE_RATE = 32000  # files are decoded at this rate for their spectrogram (bands up to 16 kHz)
MAX_FILE_COLUMNS = 6000  # a long file gets a coarser hop, never more columns
LIVE_HOP_S = 0.02


@dataclass(frozen=True)
class Spectrogram:
    """``db`` (T, bands) float32; column ``k`` is centred at ``t0 + k * dt`` seconds; ``edges`` (bands + 1)
    are the band edges in Hz (log-spaced)."""

    db: np.ndarray
    t0: float
    dt: float
    edges: np.ndarray

    @property
    def duration(self) -> float:
        return self.db.shape[0] * self.dt


def band_edges(sample_rate: int, n_bands: int = N_BANDS) -> np.ndarray:
    """``n_bands + 1`` log-spaced edges from :data:`F_MIN` to min(Nyquist, :data:`F_MAX`)."""
    top = min(sample_rate / 2.0, F_MAX)
    return np.geomspace(F_MIN, max(top, 2 * F_MIN), n_bands + 1)


def band_matrix(sample_rate: int, n_fft: int, edges: np.ndarray) -> np.ndarray:
    """``(n_fft // 2 + 1, bands)`` weights summing FFT-bin power into bands; a band narrower than one
    bin takes its share of the nearest bin (so low bands are never empty)."""
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    m = np.zeros((freqs.size, edges.size - 1), np.float32)
    bin_hz = sample_rate / n_fft
    for b in range(edges.size - 1):
        lo, hi = edges[b], edges[b + 1]
        inside = np.flatnonzero((freqs >= lo) & (freqs < hi))
        if inside.size:
            m[inside, b] = 1.0
        else:
            m[int(np.argmin(np.abs(freqs - 0.5 * (lo + hi)))), b] = (hi - lo) / bin_hz
    return m


class SpectrogramBuilder:
    """Columns from a stream of mono samples at ``sample_rate`` (frame of ``frame_s``, hop ``hop``)."""

    def __init__(self, sample_rate: int, hop: int | None = None, frame_s: float = 0.032) -> None:
        self.sample_rate = int(sample_rate)
        self.n_fft = 1 << max(6, math.ceil(math.log2(max(frame_s * self.sample_rate, 64))))
        self.hop = int(hop) if hop else max(1, int(round(LIVE_HOP_S * self.sample_rate)))
        self.edges = band_edges(self.sample_rate)
        self._bands = band_matrix(self.sample_rate, self.n_fft, self.edges)
        self._window = np.hanning(self.n_fft).astype(np.float32)
        # a full-scale sine puts (sum(window) / 2)^2 into its bin: that power is 0 dB
        self._ref = float((self._window.sum() / 2.0) ** 2)
        self._carry = np.zeros(self.n_fft // 2, np.float32)  # frames are centred: half a frame of zeros
        self.columns_done = 0

    def column_time(self, k: int) -> float:
        """Centre time (s, from the first sample pushed) of column ``k``."""
        return k * self.hop / self.sample_rate

    def push(self, x: np.ndarray) -> np.ndarray:
        """Columns (k, bands) dB completed by the samples ``x`` (n,) float32 (maybe none)."""
        buf = np.concatenate([self._carry, np.asarray(x, np.float32).reshape(-1)])
        n_cols = 0 if buf.size < self.n_fft else 1 + (buf.size - self.n_fft) // self.hop
        self._carry = buf[n_cols * self.hop :]
        if n_cols == 0:
            return np.zeros((0, self._bands.shape[1]), np.float32)
        idx = np.arange(n_cols)[:, None] * self.hop + np.arange(self.n_fft)[None, :]
        spec = np.fft.rfft(buf[idx] * self._window, axis=1)
        power = (spec.real**2 + spec.imag**2).astype(np.float32) @ self._bands
        self.columns_done += n_cols
        db = 10.0 * np.log10(np.maximum(power / self._ref, 1e-12))
        return np.maximum(db, FLOOR_DB).astype(np.float32)


class SpectrogramCancelledError(Exception):
    """The file spectrogram was cancelled."""


def file_spectrogram(
    path: str | Path,
    cancel: threading.Event | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> Spectrogram:
    """The spectrogram of a whole file, decoded block by block at :data:`FILE_RATE` (at most
    :data:`MAX_FILE_COLUMNS` columns). ``progress(done_s, total_s)``; raises ``AudioError`` for a file
    that cannot be read and :class:`SpectrogramCancelledError` once ``cancel`` is set."""
    from models.audio import iter_audio, probe

    total_s = max(probe(path).duration, 1e-3)
    hop = max(int(round(LIVE_HOP_S * FILE_RATE)), math.ceil(total_s * FILE_RATE / MAX_FILE_COLUMNS))
    builder = SpectrogramBuilder(FILE_RATE, hop=hop)
    chunks: list[np.ndarray] = []
    done = 0
    for block in iter_audio(path, FILE_RATE, block_s=5.0):
        if cancel is not None and cancel.is_set():
            raise SpectrogramCancelledError
        chunks.append(builder.push(block))
        done += block.size
        if progress is not None:
            progress(done / FILE_RATE, total_s)
    chunks.append(builder.push(np.zeros(builder.n_fft // 2, np.float32)))  # the last frames, centred
    db = np.concatenate(chunks) if chunks else np.zeros((0, N_BANDS), np.float32)
    db = db[: max(1, math.ceil(done / hop))]
    return Spectrogram(db, 0.0, hop / FILE_RATE, builder.edges)


class LiveColumns:
    """A bounded history of live spectrogram columns (the newest ``seconds``), filled on the GUI thread
    from the columns the live job yields."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds
        self.db = np.zeros((0, N_BANDS), np.float32)
        self.dt = LIVE_HOP_S
        self.edges = band_edges(48000)
        self.changed = False

    def add(self, cols: np.ndarray, dt: float, edges: np.ndarray) -> None:
        if cols.size == 0:
            return
        if dt != self.dt or edges.size != self.edges.size or not np.allclose(edges, self.edges):
            self.db = np.zeros((0, cols.shape[1]), np.float32)  # another device or rate: start afresh
            self.dt, self.edges = dt, edges
        keep = max(1, int(self.seconds / dt))
        self.db = np.concatenate([self.db, cols])[-keep:]
        self.changed = True

    def clear(self) -> None:
        self.db = np.zeros((0, self.edges.size - 1), np.float32)
        self.changed = True

    def snapshot(self) -> Spectrogram:
        """The history as a spectrogram whose time axis is "seconds ago" (the newest column at 0)."""
        n = self.db.shape[0]
        return Spectrogram(self.db, -(n - 1) * self.dt, self.dt, self.edges)
