"""The ONNX files of a pack in the user cache, read back without torch (written by :mod:`onnx_export`).

One folder per pack and graph version, ``<user cache>/onnx/pack-<pack id>-g<GRAPH>/``:

- ``tagger.onnx``: the BN-folded tagger. Codec packs: quantized latent ``(B, 128, T)`` float32; mel
  packs: log-mel image ``(B, 1, n_mels, T)`` float32 → ``probs (B, n_labels)`` (sigmoid applied) and
  ``embedding (B, D)`` float32.
- ``encoder.onnx`` (codec packs): audio ``(B, 1, N)`` float32 at the codec rate (N a multiple of the
  hop) and ``lengths`` ``(B,)`` int64 → latent ``(B, 128, N / hop)``, of which item ``b``'s first
  ``ceil(lengths[b] / hop)`` frames are its whole-signal encoding (:mod:`models.codec.ort_encoder`'s
  graph, :func:`models.codec.padded.encode_padded`).
- ``arrays.npz`` (no pickles): ``codebooks`` ``(n_q, size, 128)`` float32 (codec packs) or ``mel_basis``
  ``(n_mels, n_fft // 2 + 1)`` and ``window`` ``(win_length,)`` float32 (mel packs).
- ``onnx.json``, written last: the pack id, every file's sha256 and the numbers the engine needs. Until
  it is there (or while any hash differs from it) the folder is not used: :func:`read_folder` returns
  ``None`` and the torch engine exports it again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: The encoder graph's version, for both caches (this folder's name and record, and the file name of
#: :mod:`models.codec.ort_encoder`): 3 = audio + lengths (models/codec/padded.py). Files of the two
#: earlier "2" graphs (audio only, padding any length; audio + lengths, unversioned) are never read.
GRAPH = 3
#: The streaming step graph's version (``stream.onnx``, :mod:`models.codec.stream_graph`): 1 = latent only
#: (RVQ in numpy), 2 = latent and codes. A record of another version is exported again.
STREAM_VERSION = 2
RECORD = "onnx.json"
FORMAT = 1
MAX_FILE_BYTES = 1 << 30
MAX_RECORD_BYTES = 1 << 20


def onnx_cache_dir() -> Path:
    """``<user cache>/onnx`` (``$ENCOTAG_HOME/cache/onnx`` when set; the rule of ``app.paths.cache_dir``)."""
    home = os.environ.get("ENCOTAG_HOME", "").strip()
    if home:
        return Path(home).expanduser() / "cache" / "onnx"
    import platformdirs

    return Path(platformdirs.user_cache_dir("encotag", appauthor=False)) / "onnx"


def pack_folder(pack_id: str, root: Path | None = None) -> Path:
    """The cache folder of the pack whose id is ``pack_id`` (a sha256 hex string)."""
    key = "".join(ch for ch in pack_id if ch.isalnum())[:32] or "unnamed"
    return (root or onnx_cache_dir()) / f"pack-{key}-g{GRAPH}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class OnnxFiles:
    """A verified folder: the record and the bytes of every file (hash-checked, read once)."""

    folder: Path
    record: dict[str, Any]
    data: dict[str, bytes] = field(repr=False)

    def arrays(self) -> dict[str, np.ndarray]:
        """``arrays.npz`` as float32 arrays (``allow_pickle=False``)."""
        with np.load(io.BytesIO(self.data["arrays.npz"]), allow_pickle=False) as z:
            return {k: np.asarray(z[k], np.float32) for k in z.files}


def read_folder(folder: Path, pack_id: str) -> OnnxFiles | None:
    """The folder's files if its record names ``pack_id`` and every sha256 matches; else ``None`` and one
    log line (a missing folder is not worth one: the first launch has none)."""
    from models.safeio import InputFileError, read_regular

    rp = folder / RECORD
    if not rp.is_file():
        return None
    try:
        record = json.loads(read_regular(rp, MAX_RECORD_BYTES).decode("utf-8"))
        if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("graph") != GRAPH:
            raise ValueError("unknown record format")
        if record.get("pack_id") != pack_id:
            raise ValueError("made for another pack")
        files = record.get("files")
        if not isinstance(files, dict) or "tagger.onnx" not in files or "arrays.npz" not in files:
            raise ValueError("no file list")
        data: dict[str, bytes] = {}
        for name, want in files.items():
            if not isinstance(name, str) or "/" in name or name.startswith("."):
                raise ValueError(f"bad file name {name!r}")
            data[name] = read_regular(folder / name, MAX_FILE_BYTES)
            if sha256_bytes(data[name]) != want:
                raise ValueError(f"{name} changed since it was written")
    except (OSError, InputFileError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        log.warning("%s: not used (%s); the torch engine exports it again", folder, str(exc).splitlines()[0])
        return None
    return OnnxFiles(folder, record, data)


def write_folder(folder: Path, record: dict[str, Any], data: dict[str, bytes]) -> None:
    """Write ``data`` (name → bytes) atomically, then the record with their sha256 (last: the commit)."""
    from models.safeio import atomic_write_bytes

    folder.mkdir(parents=True, exist_ok=True)
    try:
        (folder / RECORD).unlink()  # a folder being rewritten is never read half old, half new
    except FileNotFoundError:
        pass
    for name, blob in data.items():
        atomic_write_bytes(folder / name, blob)
    full = dict(record, format=FORMAT, graph=GRAPH, files={n: sha256_bytes(b) for n, b in data.items()})
    atomic_write_bytes(folder / RECORD, json.dumps(full, indent=1).encode("utf-8"))


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """Arrays as the bytes of an uncompressed ``.npz`` (float32)."""
    buf = io.BytesIO()
    named: dict[str, Any] = {k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()}
    np.savez(buf, **named)
    return buf.getvalue()
