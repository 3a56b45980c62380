"""Audio decoding and conditioning: chunked reading (soundfile), downmix, resampling (soxr), sanitising.

Everything here works on float32 numpy arrays. Files are decoded block by block so that memory stays
bounded for hour-long recordings: :func:`iter_audio` holds one input block (``block_s`` seconds at the
file's own rate and channel count) plus the resampler's small internal state, never the whole file.

Every failure to read a file raises :class:`AudioError` whose message is one line naming the file and
the reason (``"<file>: empty file"``, ``"<file>: not an audio file or unsupported format (…)"``, …).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

log = logging.getLogger(__name__)

#: Extensions picked up when a folder is expanded (explicit files are tried whatever their name).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
     ".caf", ".w64", ".rf64", ".wv"}
)  # fmt: skip

RESAMPLE_QUALITY = "HQ"


class AudioError(Exception):
    """A file that cannot be decoded; ``str(err)`` is ``"<path>: <reason>"`` on one line."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = " ".join(str(reason).split())  # one line, whatever libsndfile said
        super().__init__(f"{self.path}: {self.reason}")


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says: rate (Hz), channels, frames (per channel) and duration (s)."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _libsndfile_reason(exc: Exception) -> str:
    text = str(getattr(exc, "error_string", "") or exc).strip()
    if text.lower().startswith("error :"):
        text = text[len("error :") :].strip()
    return text.rstrip(".") or type(exc).__name__


def _soundfile(p: Path) -> sf.SoundFile:
    """``sf.SoundFile(p)``; paths longer than libsndfile's limit (1024 bytes) go through a descriptor."""
    if len(os.fsencode(p)) < 1000:
        return sf.SoundFile(str(p))
    fd = os.open(p, os.O_RDONLY)
    try:
        return sf.SoundFile(fd, closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _open(path: str | os.PathLike[str]) -> sf.SoundFile:
    """Open ``path`` for reading or raise :class:`AudioError` with the reason."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioError(p, "no such file") from None
    except PermissionError:
        raise AudioError(p, "permission denied") from None
    except OSError as exc:
        raise AudioError(p, exc.strerror or str(exc)) from None
    if p.is_dir():
        raise AudioError(p, "is a folder, not an audio file")
    if st.st_size == 0:
        raise AudioError(p, "empty file")
    if not os.access(p, os.R_OK):
        raise AudioError(p, "permission denied")
    try:
        f = _soundfile(p)
    except PermissionError:
        raise AudioError(p, "permission denied") from None
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(p, f"not an audio file or unsupported format ({_libsndfile_reason(exc)})") from None
    if f.samplerate <= 0 or f.channels <= 0:
        f.close()
        raise AudioError(p, f"invalid header ({f.samplerate} Hz, {f.channels} channels)")
    return f


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Header information of an audio file (raises :class:`AudioError`)."""
    with _open(path) as f:
        return AudioInfo(str(path), int(f.samplerate), int(f.channels), int(f.frames), str(f.format))


def to_mono(x: np.ndarray) -> np.ndarray:
    """Downmix ``(n,)`` or ``(n, ch)`` to mono float32 ``(n,)`` by averaging the channels."""
    x = np.asarray(x)
    if x.ndim == 1:
        return x.astype(np.float32, copy=False)
    if x.ndim != 2:
        raise ValueError(f"expected (n,) or (n, channels) audio, got shape {x.shape}")
    if x.shape[1] == 1:
        return x[:, 0].astype(np.float32, copy=False)
    return x.mean(axis=1, dtype=np.float32)


def sanitize(x: np.ndarray) -> np.ndarray:
    """Replace NaN and ±inf samples by 0 (in place when ``x`` is a writable float32 array); returns ``x``.

    Finite values are kept as they are (no clipping): the models tolerate a little overshoot.
    """
    x = np.asarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        if not x.flags.writeable:
            x = x.copy()
        x[bad] = 0.0
    return x


def _sanitize_count(x: np.ndarray) -> int:
    """In-place :func:`sanitize` of a writable float32 array; returns how many samples were replaced."""
    bad = ~np.isfinite(x)
    n = int(np.count_nonzero(bad))
    if n:
        x[bad] = 0.0
    return n


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality (soxr 'HQ') resampling of float32 ``(n,)`` or ``(n, ch)`` audio to ``sr_out``."""
    x = np.asarray(x, dtype=np.float32)
    if sr_in == sr_out or len(x) == 0:
        return x.copy()
    return np.asarray(soxr.resample(x, sr_in, sr_out, quality=RESAMPLE_QUALITY), dtype=np.float32)


class StreamResampler:
    """Incremental mono resampler (soxr ``ResampleStream``) for audio arriving in blocks.

    ``process(block)`` returns the output available so far; ``flush()`` returns the tail at the end.
    The total output length is ``round(n_in * sr_out / sr_in)`` (within a sample) once flushed.
    """

    def __init__(self, sr_in: int, sr_out: int) -> None:
        self.sr_in = int(sr_in)
        self.sr_out = int(sr_out)
        self._stream = (
            None
            if self.sr_in == self.sr_out
            else soxr.ResampleStream(self.sr_in, self.sr_out, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        )

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next mono float32 block ``(n,)`` at ``sr_in``; returns ``(m,)`` at ``sr_out``."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self._stream is None:
            return block
        return np.asarray(self._stream.resample_chunk(block, last=last), dtype=np.float32)

    def flush(self) -> np.ndarray:
        return self.process(np.zeros(0, np.float32), last=True)


def iter_audio(
    path: str | os.PathLike[str],
    sr_out: int,
    block_s: float = 10.0,
    *,
    stats: dict[str, int] | None = None,
) -> Iterator[np.ndarray]:
    """Decode ``path`` block by block as mono float32 ``(m,)`` arrays at ``sr_out`` Hz.

    Memory is bounded by one input block (``block_s`` seconds × the file's channels) plus the output of
    that block. NaN/inf samples become 0 (one warning per file). Raises :class:`AudioError` for files
    that cannot be opened, have no samples, or fail while decoding (truncated or corrupt data).
    ``stats``, if given, receives ``frames_in`` (frames read), ``peak_block_frames`` (largest input block,
    frames) and ``nonfinite`` (samples replaced by 0).
    """
    p = Path(path)
    with _open(p) as f:
        sr_in, channels = int(f.samplerate), int(f.channels)
        if f.frames == 0:
            raise AudioError(p, "empty file (no audio samples)")
        block_frames = max(1, int(round(block_s * sr_in)))
        buf = np.empty((block_frames, channels), dtype=np.float32)  # reused for every block
        rs = StreamResampler(sr_in, sr_out)
        frames_in = nonfinite = peak = 0
        while True:
            try:
                n = len(f.read(block_frames, dtype="float32", always_2d=True, out=buf))
            except (sf.SoundFileError, RuntimeError) as exc:
                raise AudioError(p, f"truncated or corrupt ({_libsndfile_reason(exc)})") from None
            if n <= 0:
                break
            peak = max(peak, n)
            frames_in += n
            mono = to_mono(buf[:n]).copy() if channels == 1 else to_mono(buf[:n])
            bad = _sanitize_count(mono)
            if bad and not nonfinite:
                log.warning("%s: %d non-finite samples (NaN/inf) replaced by silence", p, bad)
            nonfinite += bad
            out = rs.process(mono)
            if len(out):
                yield out
            if n < block_frames:
                break
        if frames_in == 0:
            raise AudioError(p, "truncated or corrupt (no decodable audio samples)")
        tail = rs.flush()
        if len(tail):
            yield tail
        if stats is not None:
            stats.update(frames_in=frames_in, peak_block_frames=peak, nonfinite=nonfinite)


def load_audio(path: str | os.PathLike[str], sr_out: int) -> np.ndarray:
    """The whole file as mono float32 ``(n,)`` at ``sr_out`` (for short clips; see :func:`iter_audio`)."""
    parts = list(iter_audio(path, sr_out))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def list_audio_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand folders (recursively, files with a known audio extension, sorted); keep other paths as given.

    Explicit file paths are returned whatever their extension or existence so that the caller reports
    each problem by name when it tries to read them. Duplicates are dropped, order is kept.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        found: Iterable[Path]
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in AUDIO_EXTENSIONS and q.is_file())
        else:
            found = (p,)
        for q in found:
            key = q.resolve() if q.exists() else q
            if key not in seen:
                seen.add(key)
                out.append(q)
    return out
