"""``encotag embed PATH… --out FILE``: window embeddings with timestamps, and one scene embedding per file.

``.npz`` (numpy, always available), row-aligned arrays::

    files        (F,) str    input paths that were processed
    scene        (F, D) f32  per file: mean of its window embeddings
    file_index   (N,) i64    row → index into files
    start, end   (N,) f64    window times in seconds
    embedding    (N, D) f32  window embeddings
    pack_id, pack_name, layout_json (str), sample_rate (int), window_s, hop_s (float)

``.parquet`` (needs pyarrow): one row per window (``kind = "window"``) plus one per file
(``kind = "scene"``, start 0, end = duration) with columns file, kind, start, end, embedding (list of
float32), and the pack id in the schema metadata. Writes are atomic. Exit codes as for ``encotag tag``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from app.commands.common import (
    ProgressPrinter,
    UsageError,
    add_engine_args,
    load_engine,
    report_failure,
    window_config,
)

log = logging.getLogger(__name__)

Rows = list[tuple[str, np.ndarray, np.ndarray]]  # (path, times (N, 2) s, embeddings (N, D) float32)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "embed",
        help="write window and scene embeddings of audio files (npz or parquet)",
        description="Embeddings of each window (with start/end times) and a scene embedding per file.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("--out", "-o", type=Path, required=True, help="output file: .npz or .parquet")
    add_engine_args(p)
    p.set_defaults(func=run)


def _atomic(path: Path, write: Any) -> None:
    """Call ``write(binary_file)`` on a temp file then move it onto ``path`` (``models.safeio``)."""
    from models.safeio import atomic_write_with

    def to_fd(fd: int) -> None:
        with os.fdopen(os.dup(fd), "wb") as fh:
            write(fh)

    atomic_write_with(path, to_fd)


def _write_npz(path: Path, meta: dict[str, Any], rows: Rows) -> None:
    d = meta["embedding_size"]
    arrays = {
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

    _atomic(path, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]


def _write_parquet(path: Path, meta: dict[str, Any], rows: Rows) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files, kinds, starts, ends, embs = [], [], [], [], []
    for name, times, emb in rows:
        files += [name] * (len(times) + 1)
        kinds += ["window"] * len(times) + ["scene"]
        starts += [*times[:, 0].tolist(), 0.0]
        ends += [*times[:, 1].tolist(), float(times[:, 1].max())]
        embs += [*emb.astype(np.float32), emb.mean(axis=0).astype(np.float32)]
    table = pa.table(
        {
            "file": pa.array(files, pa.string()),
            "kind": pa.array(kinds, pa.string()),
            "start": pa.array(starts, pa.float64()),
            "end": pa.array(ends, pa.float64()),
            "embedding": pa.array([e.tolist() for e in embs], pa.list_(pa.float32())),
        }
    ).replace_schema_metadata({k: json.dumps(v) for k, v in meta.items()})
    _atomic(path, lambda fh: pq.write_table(table, fh))


def run(args: argparse.Namespace) -> int:
    from models.audio import list_audio_files
    from models.safeio import printable
    from models.tagging.pipeline import TagStats, tag_file

    out: Path = args.out
    kind = out.suffix.lower()
    if kind not in (".npz", ".parquet"):
        print(f"encotag: {printable(out)}: choose a .npz or .parquet output file", file=sys.stderr)
        return 2
    if kind == ".parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            print(
                "encotag: parquet output needs pyarrow (pip install pyarrow); or write .npz", file=sys.stderr
            )
            return 2
    failures = 0
    files: list[Path] = []
    for raw in args.paths:
        found = list_audio_files([raw])
        if Path(raw).is_dir() and not found:
            print(f"encotag: {printable(raw)}: no audio files found", file=sys.stderr)
            failures += 1
        files += [f for f in found if f not in files]
    if not files:
        return 1
    try:
        engine = load_engine(args)
        window = window_config(args, engine)
    except UsageError as exc:
        print(f"encotag: {exc}", file=sys.stderr)
        return 2
    rows: Rows = []
    for path in files:
        bar = ProgressPrinter(path.name, piped=False, min_total=8)
        try:
            times, embs = [], []
            stats = TagStats()
            for r in tag_file(engine, path, window=window, progress=bar, stats=stats):
                times.append((r.start, r.end))
                embs.append(r.embedding)
            rows.append((str(path), np.asarray(times, np.float64), np.stack(embs)))
            if stats.truncated:  # embedded, but counted: the exit code says not everything was there
                print(f"encotag: {printable(path)}: warning: truncated: only the part that decoded was "
                      "embedded", file=sys.stderr)  # fmt: skip
                failures += 1
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            report_failure(path, exc)
            failures += 1
        finally:
            bar.close()
    if not rows:
        print("encotag: no embeddings to write", file=sys.stderr)
        return 1
    meta = {
        "pack_id": engine.info.pack_id,
        "pack_name": engine.info.name,
        "layout": [list(p) for p in engine.info.embedding_layout],
        "embedding_size": int(engine.embedding_size),
        "sample_rate": int(engine.sample_rate),
        "window_s": float(window.window_s),
        "hop_s": float(window.hop_s),
    }
    try:
        (_write_npz if kind == ".npz" else _write_parquet)(out, meta, rows)
    except OSError as exc:
        print(f"encotag: {printable(out)}: cannot write ({exc.strerror or exc})", file=sys.stderr)
        return 1
    n = sum(len(r[1]) for r in rows)
    print(f"{out}: {len(rows)} file(s), {n} windows, {meta['embedding_size']}-dim embeddings")
    return 1 if failures else 0
