"""Code-stream files (``.ecodes``): the RVQ codes of one recording, tied to the codec that made them.

Format: a safetensors file holding one tensor ``codes`` of shape (n_q, T), dtype int16 (codebooks of up to
32768 entries), and string metadata (safetensors ``__metadata__``):

- ``format``: ``"encotag-codes"``, ``format_version``: ``"1"``
- ``codec_id``: the pack id of the codec pack (or ``"official-encodec-24khz"``)
- ``bandwidth`` (kbps), ``frame_rate`` (frames/s), ``sample_rate`` (Hz), ``n_samples`` (audio length)

``load_codes`` refuses a file made by another codec (``codec_id`` mismatch), a wrong format and
inconsistent shapes, with a one-line :class:`CodesError` "<path>: <reason>". Writes are atomic.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "encotag-codes"
FORMAT_VERSION = 1
SUFFIX = ".ecodes"


class CodesError(ValueError):
    """A code-stream file that cannot be used; message "<path>: <reason>"."""


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
    from safetensors.torch import save_file

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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        save_file({"codes": torch.from_numpy(codes.astype(np.int16))}, tmp, metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_codes(path: Path | str, codec_id: str | None = None) -> CodeStream:
    """Read a ``.ecodes`` file; with ``codec_id`` given, refuse files made by any other codec."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata() or {}
            keys = set(fh.keys())
            if keys != {"codes"}:
                raise CodesError(f"{path}: expected one tensor 'codes', found {sorted(keys)}")
            codes = fh.get_tensor("codes")
    except CodesError:
        raise
    except Exception as exc:  # noqa: BLE001 - OSError or safetensors' own errors on a corrupt file
        raise CodesError(f"{path}: not a readable code-stream file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CodesError(f"{path}: not an Encotag code-stream file")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise CodesError(f"{path}: unsupported format version {meta.get('format_version')!r}")
    try:
        stream = CodeStream(
            codes=codes.astype(np.int64),
            codec_id=meta["codec_id"],
            bandwidth=float(meta["bandwidth"]),
            frame_rate=float(meta["frame_rate"]),
            sample_rate=int(meta["sample_rate"]),
            n_samples=int(meta["n_samples"]),
        )
    except (KeyError, ValueError) as exc:
        raise CodesError(f"{path}: bad metadata ({exc})") from None
    if codes.ndim != 2 or codes.dtype != np.int16:
        raise CodesError(f"{path}: codes must be int16 (n_q, T), got {codes.dtype} {codes.shape}")
    if codes.size and codes.min() < 0:
        raise CodesError(f"{path}: negative codes")
    expected_t = math.ceil(stream.n_samples * stream.frame_rate / stream.sample_rate - 1e-6)
    if abs(codes.shape[1] - expected_t) > 1:
        raise CodesError(f"{path}: {codes.shape[1]} frames do not match {stream.n_samples} samples")
    if codec_id is not None and stream.codec_id != codec_id:
        raise CodesError(f"{path}: made by codec {stream.codec_id}, not {codec_id}")
    return stream
