"""On-disk cache of whole-clip embeddings, keyed by embedder id and file content.

Layout: ``<root>/<embedder key>/<file sha256[:2]>/<file sha256>.npz`` where the embedder key is a short
hash of the embedder id (a pack's ``pack_id`` plus the embedding recipe). Each npz holds
``embedding`` (D,) float32, ``probs`` (527,) float32 or (0,) for embedders without tags, ``seconds``
(compute time of this clip, for the speed column) and ``duration`` (clip length in seconds).
Writes are atomic (temp file + ``os.replace``); an unreadable entry counts as a miss and is rewritten.
npz files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One cached clip: embedding (D,) float32, probs (527,) float32 or None, seconds, duration."""

    embedding: np.ndarray
    probs: np.ndarray | None
    seconds: float
    duration: float


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (memoised per process on path, size and mtime)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    digest = _SHA_MEMO.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
        _SHA_MEMO[key] = digest
    return digest


def embedder_key(embedder_id: str) -> str:
    """Folder name for an embedder id (first 16 hex digits of its sha256)."""
    return hashlib.sha256(embedder_id.encode("utf-8")).hexdigest()[:16]


class EmbeddingCache:
    """Get/put whole-clip embeddings under ``root``; ``root=None`` disables caching (every get misses)."""

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None

    def _path(self, embedder_id: str, digest: str) -> Path:
        assert self.root is not None
        return self.root / embedder_key(embedder_id) / digest[:2] / f"{digest}.npz"

    def get(self, embedder_id: str, audio_path: Path) -> Entry | None:
        """The cached entry for this embedder and file content, or None."""
        if self.root is None:
            return None
        path = self._path(embedder_id, file_sha256(audio_path))
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                probs = z["probs"].astype(np.float32)
                return Entry(
                    embedding=z["embedding"].astype(np.float32),
                    probs=probs if probs.size else None,
                    seconds=float(z["seconds"]),
                    duration=float(z["duration"]),
                )
        except (OSError, KeyError, ValueError) as exc:
            log.warning("%s: unreadable cache entry (%s); recomputing", path, exc)
            return None

    def put(self, embedder_id: str, audio_path: Path, entry: Entry) -> None:
        """Store ``entry`` atomically (no-op when caching is disabled)."""
        if self.root is None:
            return
        path = self._path(embedder_id, file_sha256(audio_path))
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        probs = entry.probs if entry.probs is not None else np.zeros(0, np.float32)
        np.savez(
            buf,
            embedding=np.asarray(entry.embedding, np.float32),
            probs=np.asarray(probs, np.float32),
            seconds=np.float64(entry.seconds),
            duration=np.float64(entry.duration),
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(buf.getvalue())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
