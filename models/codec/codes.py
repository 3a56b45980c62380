"""Code-stream files (``.ecodes``): the RVQ codes of one recording, tied to the codec that made them.

Format: a safetensors file holding one tensor ``codes`` of shape (n_q, T), dtype int16 (codebooks of up to
32768 entries), and string metadata (safetensors ``__metadata__``):

- ``format``: ``"encotag-codes"``, ``format_version``: ``"2"``
- ``codec_id``: the pack id of the codec pack (or ``"official-encodec-24khz"``)
- ``bandwidth`` (kbps), ``frame_rate`` (frames/s), ``sample_rate`` (Hz), ``n_samples`` (audio length)
- ``checksum``: sha256 over the codes (dtype, shape, bytes) and every other metadata field, so one
  flipped byte anywhere is refused (version 1 files had none and are refused: re-encode them)

``load_codes`` reads only regular files of at most :data:`MAX_FILE_BYTES` (a FIFO or device is refused
without blocking), checks every size and number before using it (sample rate, frame rate, frame count,
codebook count) and refuses a file made by another codec (``codec_id`` mismatch), a wrong format and
inconsistent shapes, with a one-line :class:`CodesError` "<path>: <reason>". Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "encotag-codes"
FORMAT_VERSION = 2
SUFFIX = ".ecodes"
MAX_FILE_BYTES = 256 << 20  # 256 MiB: about 60 hours of 6 kbps codes
MAX_CODEBOOKS = 64
MAX_SAMPLE_RATE = 768_000


class CodesError(ValueError):
    """A code-stream file that cannot be used; message "<path>: <reason>" (one printable line)."""

    def __init__(self, message: str) -> None:
        from models.safeio import printable

        super().__init__(printable(message))


def _digest(codes: np.ndarray, meta: dict[str, str]) -> str:
    h = hashlib.sha256()
    c = np.ascontiguousarray(codes)
    h.update(f"codes:{c.dtype.str}:{c.shape}".encode())
    h.update(c.tobytes())
    h.update(json.dumps({k: v for k, v in meta.items() if k != "checksum"}, sort_keys=True).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class CodeStream:
    """Codes (n_q, T) int64 of one recording plus what is needed to interpret them."""

    codes: np.ndarray
    codec_id: str
    bandwidth: float
    frame_rate: float
    sample_rate: int
    n_samples: int

    @property
    def duration(self) -> float:
        """Seconds of audio the codes stand for."""
        return self.n_samples / self.sample_rate


def save_codes(path: Path | str, stream: CodeStream) -> Path:
    """Write ``stream`` to ``path`` atomically (temp file + ``os.replace``); returns the path."""
    import torch

    from models.atomic import atomic_write_bytes

    path = Path(path)
    codes = np.asarray(stream.codes)
    if codes.ndim != 2:
        raise CodesError(f"{path}: codes must be (n_q, T), got shape {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() > np.iinfo(np.int16).max):
        raise CodesError(f"{path}: codes outside [0, 32767] cannot be stored as int16")
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "codec_id": str(stream.codec_id),
        "bandwidth": repr(float(stream.bandwidth)),
        "frame_rate": repr(float(stream.frame_rate)),
        "sample_rate": str(int(stream.sample_rate)),
        "n_samples": str(int(stream.n_samples)),
    }
    meta["checksum"] = _digest(codes.astype(np.int16), meta)
    from safetensors.torch import save

    atomic_write_bytes(path, save({"codes": torch.from_numpy(codes.astype(np.int16))}, metadata=meta))
    return path


def _header(blob: bytes) -> dict:
    if len(blob) < 8:
        raise ValueError("file too short")
    n = int.from_bytes(blob[:8], "little")
    if n > min(len(blob) - 8, 1 << 20):
        raise ValueError(f"header size {n} exceeds the file")
    header = json.loads(blob[8 : 8 + n])
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return header


def load_codes(path: Path | str, codec_id: str | None = None) -> CodeStream:
    """Read a ``.ecodes`` file; with ``codec_id`` given, refuse files made by any other codec."""
    from safetensors.numpy import load

    from models.safeio import InputFileError, read_regular

    path = Path(path)
    try:
        blob = read_regular(path, MAX_FILE_BYTES)
    except InputFileError as exc:
        raise CodesError(str(exc)) from None
    try:
        meta = _header(blob).get("__metadata__") or {}
        if not isinstance(meta, dict):
            raise ValueError("metadata is not an object")
        tensors = load(blob)
    except Exception as exc:  # noqa: BLE001 - json, safetensors and numpy raise several types on corrupt input
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CodesError(f"{path}: not a readable code-stream file ({reason})") from None
    if set(tensors) != {"codes"}:
        raise CodesError(f"{path}: expected one tensor 'codes', found {sorted(tensors)[:5]}")
    codes = tensors["codes"]
    if meta.get("format") != FORMAT:
        raise CodesError(f"{path}: not an Encotag code-stream file")
    version = meta.get("format_version")
    if version != str(FORMAT_VERSION):
        hint = " (no checksum: re-encode the audio with this Encotag)" if version == "1" else ""
        raise CodesError(f"{path}: unsupported format version {version!r}{hint}")
    if meta.get("checksum") != _digest(codes, meta):
        raise CodesError(f"{path}: codes do not match their checksum (file damaged or edited)")
    try:
        stream = CodeStream(
            codes=codes.astype(np.int64),
            codec_id=str(meta["codec_id"]),
            bandwidth=float(meta["bandwidth"]),
            frame_rate=float(meta["frame_rate"]),
            sample_rate=int(meta["sample_rate"]),
            n_samples=int(meta["n_samples"]),
        )
    except (KeyError, ValueError, TypeError, OverflowError) as exc:
        raise CodesError(f"{path}: bad metadata ({exc})") from None
    if codes.ndim != 2 or codes.dtype != np.int16:
        raise CodesError(f"{path}: codes must be int16 (n_q, T), got {codes.dtype} {codes.shape}")
    if not 1 <= codes.shape[0] <= MAX_CODEBOOKS:
        raise CodesError(f"{path}: {codes.shape[0]} codebooks (expected 1 to {MAX_CODEBOOKS})")
    if codes.shape[1] == 0 or stream.n_samples <= 0:
        raise CodesError(f"{path}: empty code stream (0 frames)")
    if codes.min() < 0:
        raise CodesError(f"{path}: negative codes")
    if not 1000 <= stream.sample_rate <= MAX_SAMPLE_RATE:
        raise CodesError(f"{path}: implausible sample rate {stream.sample_rate} Hz")
    if not (math.isfinite(stream.frame_rate) and 1.0 <= stream.frame_rate <= stream.sample_rate):
        raise CodesError(f"{path}: implausible frame rate {stream.frame_rate!r}")
    if not (math.isfinite(stream.bandwidth) and 0 < stream.bandwidth <= 1000):
        raise CodesError(f"{path}: implausible bandwidth {stream.bandwidth!r}")
    expected_t = math.ceil(stream.n_samples * stream.frame_rate / stream.sample_rate - 1e-6)
    if abs(codes.shape[1] - expected_t) > 1:
        raise CodesError(f"{path}: {codes.shape[1]} frames do not match {stream.n_samples} samples")
    if codec_id is not None and stream.codec_id != codec_id:
        raise CodesError(f"{path}: made by codec {stream.codec_id}, not {codec_id}")
    return stream


def check_stream(stream: CodeStream, codec: Any, sample_rate: int, where: str) -> None:
    """Refuse a stream whose codebook count, code range, rates differ from ``codec`` (a pack codec)."""
    n_q = int(codec.n_q)
    size = int(codec.cfg.codebook_size)
    frame_rate = float(codec.frame_rate)
    if stream.codes.shape[0] != n_q:
        raise CodesError(f"{where}: {stream.codes.shape[0]} codebooks, but this codec uses {n_q}")
    if stream.codes.size and int(stream.codes.max()) >= size:
        raise CodesError(f"{where}: codes outside this codec's {size}-entry codebooks")
    if stream.sample_rate != int(sample_rate) or abs(stream.frame_rate - frame_rate) > 1e-3:
        raise CodesError(
            f"{where}: {stream.sample_rate} Hz / {stream.frame_rate:g} frames/s differ from the codec's "
            f"{int(sample_rate)} Hz / {frame_rate:g} frames/s"
        )
