"""The combined output of a batch, written from the journal's records (atomically) and read back.

``encotag tag -o OUT.EXT`` (EXT: ``.parquet``, ``.csv`` or ``.json``) writes two tables:

- ``OUT.EXT``, the **files** table, one row per file: file, size, mtime_ns, status (ok, warning, failed),
  error, duration (s), windows, top_labels, top_scores, top_trusted (top-k clip tags: mean over windows),
  n_events, pack_id. In CSV the three list columns hold JSON lists.
- ``OUT.events.EXT``, the **events** table, one row per event: file, start, end, label, score, trusted.
  (CSV and JSON events read back with :func:`app.export.parse_events`: the extra columns are ignored.)

``encotag embed -o OUT.npz|OUT.parquet`` writes the embeddings (layout in :mod:`app.commands.embed`).
Parquet needs pyarrow (the ``parquet`` extra); :func:`have_pyarrow` says whether it is there.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic import atomic_write_text
from models.safeio import atomic_write_with

FILE_COLUMNS = (
    "file", "size", "mtime_ns", "status", "error", "duration", "windows",
    "top_labels", "top_scores", "top_trusted", "n_events", "pack_id",
)  # fmt: skip
EVENT_COLUMNS = ("file", "start", "end", "label", "score", "trusted")
LIST_COLUMNS = ("top_labels", "top_scores", "top_trusted")
TABLE_FORMATS = ("parquet", "csv", "json")


def have_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def events_path(out: str | os.PathLike[str]) -> Path:
    """``results.parquet`` → ``results.events.parquet``."""
    p = Path(out)
    return p.with_name(f"{p.stem}.events{p.suffix}")


def file_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    empty: dict[str, Any] = {"top_labels": [], "top_scores": [], "top_trusted": [], "n_events": 0,
                             "pack_id": "", "error": ""}  # fmt: skip
    return [{c: {**empty, **r}.get(c) for c in FILE_COLUMNS} for r in records]


def event_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        dict(zip(EVENT_COLUMNS, (r["file"], *ev), strict=True)) for r in records for ev in r.get("events", ())
    ]


def _atomic_binary(path: Path, write: Callable[[Any], None]) -> None:
    def to_fd(fd: int) -> None:
        with os.fdopen(os.dup(fd), "wb") as fh:
            write(fh)

    atomic_write_with(path, to_fd)


def _csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: json.dumps(v, ensure_ascii=False) if k in LIST_COLUMNS else v for k, v in row.items()})
    return buf.getvalue()


def _arrow_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Any:
    import pyarrow as pa

    types = {
        "file": pa.string(), "size": pa.int64(), "mtime_ns": pa.int64(), "status": pa.string(),
        "error": pa.string(), "duration": pa.float64(), "windows": pa.int64(),
        "top_labels": pa.list_(pa.string()), "top_scores": pa.list_(pa.float32()),
        "top_trusted": pa.list_(pa.bool_()), "n_events": pa.int64(), "pack_id": pa.string(),
        "start": pa.float64(), "end": pa.float64(), "label": pa.string(), "score": pa.float32(),
        "trusted": pa.bool_(),
    }  # fmt: skip
    return pa.table({c: pa.array([r[c] for r in rows], types[c]) for c in columns})


def _write_parquet(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    _atomic_binary(path, lambda fh: pq.write_table(table, fh))


def write_tag_tables(out: Path, fmt: str, records: list[dict[str, Any]]) -> tuple[Path, Path]:
    """Write the files table to ``out`` and the events table beside it; returns both paths."""
    files, events = file_rows(records), event_rows(records)
    ev_out = events_path(out)
    if fmt == "parquet":
        for path, rows, cols in ((out, files, FILE_COLUMNS), (ev_out, events, EVENT_COLUMNS)):
            _write_parquet(path, _arrow_table(rows, cols))
    elif fmt == "csv":
        atomic_write_text(out, _csv_text(files, FILE_COLUMNS))
        atomic_write_text(ev_out, _csv_text(events, EVENT_COLUMNS))
    elif fmt == "json":
        atomic_write_text(out, json.dumps(files, indent=1, ensure_ascii=False) + "\n")
        atomic_write_text(ev_out, json.dumps(events, indent=1, ensure_ascii=False) + "\n")
    else:
        raise ValueError(f"unknown table format {fmt!r} (choose from {', '.join(TABLE_FORMATS)})")
    return out, ev_out


def read_table(path: Path, fmt: str) -> list[dict[str, Any]]:
    """A files or events table read back as a list of row dicts (lists restored in CSV)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_table(path).to_pylist())
    text = path.read_text(encoding="utf-8")
    if fmt == "json":
        return list(json.loads(text))
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        out: dict[str, Any] = {}
        for k, v in row.items():
            if k in LIST_COLUMNS:
                out[k] = json.loads(v)
            elif k in ("size", "mtime_ns", "windows", "n_events"):
                out[k] = int(v)
            elif k in ("duration", "start", "end", "score"):
                out[k] = float(v)
            elif k in ("trusted",):
                out[k] = v == "True"
            else:
                out[k] = v
        rows.append(out)
    return rows


# ------------------------------------------------------------------------------------ embeddings
def _embed_rows(records: list[dict[str, Any]]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    return [(r["file"], r["times"], r["embedding"]) for r in records if r.get("status") in ("ok", "warning")]


def write_npz(path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> int:
    """Row-aligned arrays (see ``encotag embed``); returns the number of windows written."""
    rows = _embed_rows(records)
    d = meta["embedding_size"]
    arrays: dict[str, Any] = {
        "files": np.array([r[0] for r in rows], dtype=np.str_),
        "scene": np.stack([r[2].mean(axis=0) for r in rows]).astype(np.float32) if rows else np.zeros((0, d)),
        "file_index": np.concatenate([np.full(len(r[1]), i, np.int64) for i, r in enumerate(rows)]),
        "start": np.concatenate([r[1][:, 0] for r in rows]),
        "end": np.concatenate([r[1][:, 1] for r in rows]),
        "embedding": np.concatenate([r[2] for r in rows]).astype(np.float32),
        "pack_id": np.array(meta["pack_id"]),
        "pack_name": np.array(meta["pack_name"]),
        "layout_json": np.array(json.dumps(meta["layout"])),
        "sample_rate": np.array(meta["sample_rate"]),
        "window_s": np.array(meta["window_s"]),
        "hop_s": np.array(meta["hop_s"]),
    }
    _atomic_binary(path, lambda fh: np.savez(fh, **arrays))
    return int(sum(len(r[1]) for r in rows))


def write_embed_parquet(path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> int:
    """One row per window (``kind = "window"``) plus one per file (``"scene"``); returns the windows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files, kinds, starts, ends, embs = [], [], [], [], []
    rows = _embed_rows(records)
    for name, times, emb in rows:
        files += [name] * (len(times) + 1)
        kinds += ["window"] * len(times) + ["scene"]
        starts += [*times[:, 0].tolist(), 0.0]
        ends += [*times[:, 1].tolist(), float(times[:, 1].max())]
        embs += [*emb.astype(np.float32), emb.mean(axis=0).astype(np.float32)]
    d = int(meta["embedding_size"])
    flat = np.concatenate(embs).astype(np.float32) if embs else np.zeros(0, np.float32)
    table = pa.table(
        {
            "file": pa.array(files, pa.string()),
            "kind": pa.array(kinds, pa.string()),
            "start": pa.array(starts, pa.float64()),
            "end": pa.array(ends, pa.float64()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(flat), d).cast(pa.list_(pa.float32())),
        }
    ).replace_schema_metadata({k: json.dumps(v) for k, v in meta.items()})
    _atomic_binary(path, lambda fh: pq.write_table(table, fh))
    return int(sum(len(r[1]) for r in rows))
