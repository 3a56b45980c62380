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

from models import audio_header
from models.safeio import InputFileError, check_regular, printable

log = logging.getLogger(__name__)

#: Extensions picked up when a folder is expanded (explicit files are tried whatever their name).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
     ".caf", ".w64", ".rf64", ".wv"}
)  # fmt: skip

RESAMPLE_QUALITY = "HQ"
#: Header rates outside this range are refused: a 1 Hz header would turn a small file into days of
#: audio to resample, a 2 GHz one would ask for a block of tens of GiB.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 256
#: Most samples (frames × channels) held in one decoded block: 4 Mi float32 = 16 MiB.
MAX_BLOCK_SAMPLES = 1 << 22


class AudioError(Exception):
    """A file that cannot be decoded; ``str(err)`` is ``"<path>: <reason>"`` on one line."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = printable(" ".join(str(reason).split()))  # one line, whatever libsndfile said
        super().__init__(f"{printable(self.path)}: {self.reason}")


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
    """``sf.SoundFile(p)``; paths longer than libsndfile's limit (1024 bytes) or not valid UTF-8 (bytes
    kept as surrogate escapes, which soundfile cannot encode) go through a descriptor."""
    try:
        str(p).encode("utf-8")
        plain = len(os.fsencode(p)) < 1000
    except UnicodeEncodeError:
        plain = False
    if plain:
        return sf.SoundFile(str(p))
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return sf.SoundFile(fd, closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _open(path: str | os.PathLike[str]) -> sf.SoundFile:
    """Open ``path`` for reading or raise :class:`AudioError` with the reason."""
    p = Path(path)
    try:
        st = check_regular(p)
    except InputFileError as exc:
        reason = exc.reason.replace("is a folder, not a regular file", "is a folder, not an audio file")
        raise AudioError(p, reason) from None
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
    if not MIN_SAMPLE_RATE <= f.samplerate <= MAX_SAMPLE_RATE or f.channels > MAX_CHANNELS:
        f.close()
        raise AudioError(
            p,
            f"implausible header ({f.samplerate} Hz, {f.channels} channels; Encotag reads "
            f"{MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz, at most {MAX_CHANNELS} channels)",
        )
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


def _expected_frames(p: Path, f: sf.SoundFile) -> int:
    """Frames the header claims (0: unknown): the WAV ``data`` chunk, or libsndfile's count for the
    formats where it comes from the header (MP3's Xing/Info frame count) rather than from the data."""
    fmt = str(f.format)
    if fmt == "WAV":
        subtype_bytes = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4,
                         "DOUBLE": 8, "ULAW": 1, "ALAW": 1}.get(str(f.subtype), 0)  # fmt: skip
        claimed = audio_header.claimed_frames(p, subtype_bytes * int(f.channels))
        return int(claimed or 0)
    if fmt in ("MP3", "MPEG"):
        return int(f.frames)
    return 0


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
    frames), ``nonfinite`` (samples replaced by 0) and ``truncated`` (1 when the file ends before its
    header says it should: a cut WAV/MP3/Ogg; what decoded is still yielded, with a warning logged) with
    ``frames_expected`` (what the header claims; 0 if unknown).
    """
    p = Path(path)
    with _open(p) as f:
        sr_in, channels = int(f.samplerate), int(f.channels)
        if f.frames == 0:
            raise AudioError(p, "empty file (no audio samples)")
        block_frames = max(1, min(int(round(block_s * sr_in)), MAX_BLOCK_SAMPLES // channels))
        expected = _expected_frames(p, f)
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
        slack = 0 if str(f.format) == "WAV" else max(2304, expected // 100)  # MP3 counts are estimates
        truncated = (expected > frames_in + slack) or (
            str(f.format) == "OGG" and audio_header.ogg_cut_short(p)
        )
        if truncated:
            log.info(  # the caller decides how to tell the user (the CLI warns and counts the file)
                "%s: truncated: decoded %.2f s%s", printable(p), frames_in / sr_in,
                f" of the {expected / sr_in:.2f} s its header claims" if expected else "",
            )  # fmt: skip
        tail = rs.flush()
        if len(tail):
            yield tail
        if stats is not None:
            stats.update(
                frames_in=frames_in, peak_block_frames=peak, nonfinite=nonfinite,
                truncated=int(truncated), frames_expected=max(expected, 0),
            )  # fmt: skip


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
            try:
                key = q.resolve() if q.exists() else q
            except (OSError, RuntimeError):  # a symlink loop: reported by name when it is read
                key = q
            if key not in seen:
                seen.add(key)
                out.append(q)
    return out
