"""Analysis windows: the window/hop arithmetic, one windower for audio and for codec codes, the cancel
type and the engine protocols that tagging is written against.

Window convention (files, code streams, head examples alike): windows of ``win_n`` samples start at 0,
hop, 2·hop, …; a final padded window covers the tail if the full windows do not reach the end; input
shorter than one window gives one padded window (:func:`count_windows` counts them). Audio is padded
with zeros; codes with the codes of silence.

:class:`Windower` cuts a stream of blocks along their last axis with a fixed buffer:

- audio: blocks ``(n,)`` float32 at the engine rate, ``unit=1``: window ``k`` is samples
  ``[k·hop_n, k·hop_n + win_n)``;
- codes: blocks ``(n_q, f)`` int64 of a codec with ``hop`` samples per frame, ``unit=hop``: window ``k``
  is frames ``[round(k·hop_n / hop), … + max(1, round(win_n / hop)))``, emitted once ``lookahead`` more
  frames show that the audio covers the whole window (:data:`CODE_LOOKAHEAD`).

:func:`uses_codes` is the one place that decides whether an engine tags through codes
(:attr:`models.tagging.engine.Engine.is_codec_pack`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from models.config import WindowConfig

CancelFlag = threading.Event | Callable[[], bool] | None
CODE_LOOKAHEAD = 2  # frames up to a window's end + 1 exist and one more after them


class EngineError(RuntimeError):
    """Input an engine cannot process (wrong shape, wrong pack kind); one line. Defined here, without torch,
    for both engines (``models.tagging.engine`` and ``models.tagging.onnx_engine``)."""


class EngineLike(Protocol):
    """What tagging needs of an engine (:class:`models.tagging.engine.Engine` is one)."""

    sample_rate: int
    window: WindowConfig

    def infer(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class CodecEngineLike(EngineLike, Protocol):
    """An engine of a codec pack: it encodes audio and tags windows of codes."""

    codec: object
    codec_id: str

    @property
    def is_codec_pack(self) -> bool: ...

    def encode(self, audio: np.ndarray) -> np.ndarray: ...

    def infer_codes(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def silence_codes(self, n: int) -> np.ndarray: ...


class HeadLike(Protocol):
    def predict(self, emb: np.ndarray) -> np.ndarray: ...


def uses_codes(engine: object) -> bool:
    """True if ``engine`` tags through codec codes (its ``is_codec_pack``; engines without one: audio)."""
    return bool(getattr(engine, "is_codec_pack", False))


def is_cancelled(cancel: CancelFlag) -> bool:
    """True if ``cancel`` (a ``threading.Event`` or a callable returning bool) asks to stop."""
    if cancel is None:
        return False
    is_set = getattr(cancel, "is_set", None)
    return bool(is_set() if is_set is not None else cancel())  # type: ignore[operator]


def cached_silence_codes(
    cache: dict[int, np.ndarray], encode: Callable[[np.ndarray], np.ndarray], n: int
) -> np.ndarray:
    """Codes ``(n_q, ceil(n / hop))`` int64 of ``n`` samples of silence: ``encode`` (audio (1, n) float32
    → codes (1, n_q, T)) runs once per ``n``, the result is kept in ``cache`` read-only (code windows past
    the end of a file are padded with it; copy to modify). Shared by both engines."""
    n = int(n)
    if n not in cache:
        codes = encode(np.zeros((1, n), np.float32))[0]
        codes.setflags(write=False)
        cache[n] = codes
    return cache[n]


def window_samples(window: WindowConfig, sr: int) -> tuple[int, int]:
    """``(window, hop)`` in samples at ``sr``; raises ValueError for non-positive lengths."""
    if not (window.window_s > 0 and window.hop_s > 0):
        raise ValueError(f"window and hop must be > 0 s (got {window.window_s}, {window.hop_s})")
    return max(1, round(window.window_s * sr)), max(1, round(window.hop_s * sr))


def count_windows(n: int, win_n: int, hop_n: int) -> int:
    """Number of windows of ``n`` samples (1 for any ``n`` ≤ one window)."""
    if n <= win_n:
        return 1
    full = (n - win_n) // hop_n + 1
    last_end = (full - 1) * hop_n + win_n
    return full + (1 if last_end < n and (full * hop_n) < n else 0)


class Windower:
    """Cuts a stream of blocks ``(..., t)`` into windows ``(..., width)`` with a fixed buffer.

    ``win_n``/``hop_n`` are samples; the blocks count ``unit`` samples per step along their last axis
    (1 for audio, the codec hop for codes). ``feed(block)`` yields ``(k, window)`` for each window ``k``
    whose steps (and ``lookahead`` more) have arrived; ``finish(n_samples)`` yields the rest up to
    :func:`count_windows` of ``n_samples``, padded with ``silence()`` (its leading steps) or zeros.
    A yielded window may be a view into the buffer: it is valid until the next iteration.
    ``capacity`` (steps) bounds the buffer; it is raised to what one window needs.
    """

    def __init__(
        self,
        win_n: int,
        hop_n: int,
        *,
        unit: int = 1,
        capacity: int = 0,
        lookahead: int = 0,
        silence: Callable[[], np.ndarray] | None = None,
    ) -> None:
        self.win_n, self.hop_n, self.unit = int(win_n), int(hop_n), int(unit)
        self.width = self.win_n if self.unit == 1 else max(1, round(self.win_n / self.unit))
        self.lookahead = int(lookahead)
        self.capacity = max(int(capacity), self.width + self.lookahead + 1)
        self._silence = silence
        self.buf: np.ndarray | None = None
        self.fill = 0
        self.buf_start = 0  # step index of buf[..., 0]
        self.next_k = 0
        self.peak = 0  # most steps held at once
        self.fed = False  # feed() was called at least once

    def start(self, k: int) -> int:
        """First step of window ``k``."""
        return k * self.hop_n if self.unit == 1 else round(k * self.hop_n / self.unit)

    @property
    def total(self) -> int:
        """Steps received so far."""
        return self.buf_start + self.fill

    def _window(self, k: int) -> np.ndarray:
        assert self.buf is not None
        off = self.start(k) - self.buf_start
        part = self.buf[..., off : min(off + self.width, self.fill)]
        missing = self.width - part.shape[-1]
        if missing <= 0:
            return part
        if self._silence is None:
            pad = np.zeros((*part.shape[:-1], missing), part.dtype)
        else:
            pad = self._silence()[: part.shape[0], :missing] if part.ndim > 1 else self._silence()[:missing]
        return np.concatenate([part, pad.astype(part.dtype, copy=False)], axis=-1)

    def feed(self, block: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        x = np.asarray(block)
        self.fed = True
        if self.buf is None:
            self.buf = np.zeros((*x.shape[:-1], self.capacity), x.dtype)
        buf, t, pos = self.buf, x.shape[-1], 0
        while pos < t:
            gap = self.start(self.next_k) - self.buf_start
            if self.fill == 0 and gap > 0:  # hop > window: skip the steps no window uses
                skip = min(gap, t - pos)
                pos += skip
                self.buf_start += skip
                continue
            k = min(t - pos, self.capacity - self.fill)
            buf[..., self.fill : self.fill + k] = x[..., pos : pos + k]
            self.fill += k
            pos += k
            self.peak = max(self.peak, self.fill)
            while self.start(self.next_k) + self.width + self.lookahead <= self.total:
                yield self.next_k, self._window(self.next_k)
                self.next_k += 1
            drop = min(self.start(self.next_k) - self.buf_start, self.fill)
            if drop > 0:
                buf[..., : self.fill - drop] = buf[..., drop : self.fill]
                self.fill -= drop
                self.buf_start += drop

    def finish(self, n_samples: int) -> Iterator[tuple[int, np.ndarray]]:
        """The windows not yet yielded of a stream of ``n_samples`` samples (padded at the end)."""
        if self.buf is None:
            self.buf = np.zeros(self.capacity, np.float32)
        last = count_windows(max(int(n_samples), 1), self.win_n, self.hop_n)
        while self.next_k < last:
            yield self.next_k, self._window(self.next_k)
            self.next_k += 1
