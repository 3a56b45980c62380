"""``encotag embed PATH… --out FILE``: window embeddings with timestamps, and one scene embedding per file.

``.npz`` (numpy, always available), row-aligned arrays::

    files        (F,) str    input paths that were processed
    scene        (F, D) f32  per file: mean of its window embeddings
    file_index   (N,) i64    row → index into files
    start, end   (N,) f64    window times in seconds
    embedding    (N, D) f32  window embeddings
    pack_id, pack_name, layout_json (str), sample_rate (int), window_s, hop_s (float)

``.parquet`` (needs pyarrow; without it the output falls back to ``.npz``, saying so): one row per window
(``kind = "window"``) plus one per file (``kind = "scene"``, start 0, end = duration) with columns file,
kind, start, end, embedding (list of float32), and the pack id in the schema metadata. Writes are
atomic. Like ``encotag tag -o FILE``, a run is resumable (journal ``FILE.journal``, files done are
skipped), runs in ``--workers`` processes (or ``--engine ray``) and shows its progress on stderr.
Exit codes as for ``encotag tag``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from app.commands.batch_cli import PARQUET_HINT, add_batch_args, run_combined
from app.commands.common import UsageError, add_engine_args, load_engine, window_config

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "embed",
        help="write window and scene embeddings of audio files (npz or parquet)",
        description="Embeddings of each window (with start/end times) and a scene embedding per file.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("--out", "-o", type=Path, required=True, help="output file: .npz or .parquet")
    add_engine_args(p)
    add_batch_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from models.audio import list_audio_files
    from models.batch.tables import have_pyarrow
    from models.safeio import printable

    out: Path = args.out
    kind = out.suffix.lower()
    if kind not in (".npz", ".parquet"):
        print(f"encotag: {printable(out)}: choose a .npz or .parquet output file", file=sys.stderr)
        return 2
    if kind == ".parquet" and not have_pyarrow():
        out = out.with_suffix(".npz")
        print(f"encotag: {PARQUET_HINT}; writing .npz instead: {printable(out)}", file=sys.stderr)
        kind = ".npz"
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
    code = run_combined("embed", args, files, engine, window, None, out, kind.lstrip("."))
    return code if code != 0 else (1 if failures else 0)
