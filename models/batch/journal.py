"""The journal that makes a batch resumable: ``<output>.journal`` beside the combined output.

JSON lines: a header ``{"encotag_journal": 1, "kind": "tag"|"embed", "settings": {…}}`` and then one
record per finished file (:mod:`models.batch.work`; embedding arrays as base64 float32/float64 with their
shape). A record is appended and flushed as soon as its file is done (``os.fsync`` at most every
``sync_s`` seconds), so a killed run loses at most the files in flight; a line cut short by the kill is
dropped (and cut off the file) when the journal is opened again. Files whose key (path, size, mtime) has
an ``ok`` or ``warning`` record are skipped by the next run; failed ones are retried. The latest record per
path wins, so nothing is ever duplicated. Lines are read with a size bound (:data:`MAX_LINE`).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

VERSION = 1
MAX_LINE = 1 << 30  # one file's record (embeddings of a 40-hour file at a 0.5 s hop fit)
DONE = ("ok", "warning")


class JournalError(ValueError):
    """A journal that does not belong to this run (other settings) or cannot be read."""


def journal_path(out: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(out)}.journal")


def _encode(rec: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in rec.items():
        if isinstance(v, np.ndarray):
            out[k] = {"b64": base64.b64encode(np.ascontiguousarray(v).tobytes()).decode("ascii"),
                      "dtype": v.dtype.str, "shape": list(v.shape)}  # fmt: skip
        else:
            out[k] = v
    return out


def _decode(rec: dict[str, Any]) -> dict[str, Any]:
    for k, v in list(rec.items()):
        if isinstance(v, dict) and "b64" in v:
            dtype = np.dtype(v["dtype"])
            if dtype.kind not in "fiu" or dtype.itemsize > 8:
                raise JournalError(f"unexpected array type {v['dtype']!r}")
            shape = tuple(int(n) for n in v["shape"])
            data = base64.b64decode(v["b64"])
            if len(data) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
                raise JournalError("array size does not match its shape")
            rec[k] = np.frombuffer(data, dtype=dtype).reshape(shape)
    return rec


class Journal:
    """Open (or start) the journal of ``out`` for ``kind`` and ``settings`` (a JSON-able dict).

    ``records``: the latest record per path read from an earlier run; ``done(key)`` says whether a file
    with that key is finished. ``restart=True`` discards an earlier journal. ``out=None`` keeps the
    records in memory only (an output that is a pipe or a device cannot have a journal beside it)."""

    def __init__(
        self,
        out: str | os.PathLike[str] | None,
        kind: str,
        settings: dict[str, Any],
        *,
        restart: bool = False,
        sync_s: float = 2.0,
    ) -> None:
        self.kind, self.settings, self.sync_s = kind, settings, sync_s
        self.records: dict[str, dict[str, Any]] = {}
        self.resumed = 0
        self._synced = time.monotonic()
        self._fh: Any = None
        self.path = None if out is None else journal_path(out)
        if self.path is None:
            return
        header = {"encotag_journal": VERSION, "kind": kind, "settings": settings}
        if restart:
            self.path.unlink(missing_ok=True)
        good = self._read() if self.path.exists() else 0
        if good == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "wb")  # noqa: SIM115 - kept open for appends until close()
            self._fh.write(json.dumps(header).encode() + b"\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        else:
            self._fh = open(self.path, "r+b")  # noqa: SIM115
            self._fh.truncate(good)  # a line cut short by a kill
            self._fh.seek(good)

    def _read(self) -> int:
        """Read an earlier journal; returns the byte length of its good lines (0: start afresh)."""
        assert self.path is not None
        good = 0
        with open(self.path, "rb") as fh:
            first = fh.readline(MAX_LINE + 1)
            if not first.endswith(b"\n"):
                return 0
            try:
                head = json.loads(first)
            except ValueError:
                raise JournalError(f"{self.path}: not an encotag journal (use --restart)") from None
            if not isinstance(head, dict) or head.get("encotag_journal") != VERSION:
                raise JournalError(f"{self.path}: not an encotag journal (use --restart)")
            if head.get("kind") != self.kind or head.get("settings") != self.settings:
                raise JournalError(
                    f"{self.path}: written by another run ({head.get('kind')}, {head.get('settings')}); "
                    "use the same options, another --out, or --restart to start over"
                )
            good = len(first)
            while line := fh.readline(MAX_LINE + 1):
                if not line.endswith(b"\n"):
                    log.warning("%s: dropped a record cut short (a killed run)", self.path)
                    break
                try:
                    rec = _decode(json.loads(line))
                    key = str(rec["key"])
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("%s: dropped an unreadable record (%s)", self.path, exc)
                    break
                self.records[key] = rec
                good += len(line)
        self.resumed = sum(1 for r in self.records.values() if r.get("status") in DONE)
        return good

    def done(self, key: tuple[str, int, int]) -> bool:
        rec = self.records.get(key[0])
        return (
            rec is not None
            and rec.get("status") in DONE
            and (rec.get("size"), rec.get("mtime_ns")) == (key[1], key[2])
        )

    def add(self, rec: dict[str, Any]) -> None:
        """Append one finished file's record (flushed now, synced every ``sync_s`` seconds)."""
        self.records[str(rec["key"])] = rec
        if self._fh is None:
            return
        self._fh.write(json.dumps(_encode(rec), ensure_ascii=False).encode() + b"\n")
        self._fh.flush()
        if time.monotonic() - self._synced > self.sync_s:
            os.fsync(self._fh.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
