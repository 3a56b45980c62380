"""Linked views of a corpus: ``encotag corpus resplit CORPUS --held-out-percent P --out DIR`` (a re-split
copy) and ``encotag corpus subset CORPUS --halvings K --out DIR`` (the training recordings thinned for a
learning curve, the held-out set unchanged).

The copy shares the audio and the caches of CORPUS through links: ``clips`` and every ``codes-*`` folder are
linked whole; ``teacher_segments`` is a folder of per-clip links that leaves out every clip whose split
changed, since a held-out clip caches the teacher's whole-clip logits where a training clip caches the max of
its segments (they are recomputed on first use); a subset changes no split, so it links the whole folder.
CORPUS itself is not touched.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

MAX_MANIFEST_BYTES = 64 * 1024 * 1024


def read_manifest(name: str, corpus: Path) -> list[dict[str, str]] | None:
    """The rows of ``corpus/manifest.csv``, or None after a one-line error naming ``name``."""
    manifest = corpus / "manifest.csv"
    try:
        with manifest.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        print(f"{name}: {manifest}: {exc}", file=sys.stderr)
        return None
    if not rows or not {"clip", "source", "split"} <= set(rows[0]):
        print(f"{name}: {manifest}: not a corpus manifest", file=sys.stderr)
        return None
    return rows


def trained_sources(pack: Path) -> set[str]:
    """The corpus sources a pack's tagger was distilled on (``provenance.tagger.data["<corpus>/train"]``)."""
    from models.safeio import read_regular

    manifest = json.loads(read_regular(pack / "manifest.json", MAX_MANIFEST_BYTES))
    data = ((manifest.get("provenance") or {}).get("tagger") or {}).get("data") or {}
    out: set[str] = set()
    for key, val in data.items():
        if str(key).endswith("/train") and isinstance(val, dict):
            out |= {str(s) for s in val.get("sources") or ()}
    if not out:
        raise ValueError(f"{pack}: the manifest names no training sources of its tagger")
    return out


def _link_folders(src: Path, dst: Path, names: list[str]) -> None:
    """Link each folder ``src/NAME`` (of ``names`` and every ``codes-*``) whole as ``dst/NAME``."""
    for name in [*names, *sorted(p.name for p in src.glob("codes-*") if p.is_dir())]:
        if (src / name).is_dir() and not (dst / name).exists():
            os.symlink((src / name).resolve(), dst / name)


def _link_caches(src: Path, dst: Path, changed: set[str]) -> int:
    _link_folders(src, dst, ["clips"])
    cache = src / "teacher_segments"
    n = 0
    for root, _dirs, files in os.walk(cache):
        rel = Path(root).relative_to(cache)
        for f in files:
            if not f.endswith(".npy") or (rel / f[: -len(".npy")]).as_posix() in changed:
                continue
            target = dst / "teacher_segments" / rel / f
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.symlink((Path(root) / f).resolve(), target)
                n += 1
    return n


def run_widen(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    from models.training.corpus_split import widen_held_out

    name = "encotag corpus resplit"
    if args.held_out_percent is None or args.out is None:
        print(f"{name}: --held-out-percent and --out go together", file=sys.stderr)
        return 2
    out: Path = args.out
    if not _out_folder(name, args.corpus, out):
        return 2
    keep = {s.strip() for s in args.keep_sources.split(",") if s.strip()}
    try:
        for pack in args.keep_sources_of:
            keep |= trained_sources(pack)
        new, info = widen_held_out(rows, args.held_out_percent, keep)
    except (OSError, ValueError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    before = {r["clip"]: r["split"] for r in rows}
    changed = {r["clip"] for r in new if before[r["clip"]] != r["split"]}
    out.mkdir(parents=True, exist_ok=True)
    linked = _link_caches(args.corpus, out, changed)
    _write_manifest(out, list(rows[0]), new)
    print(
        f"{out}: {info['held_out']} of {info['recordings']} recordings held out "
        f"({info['to_val']} clips to val, {info['to_train']} to train, {info['mixtures_left_out']} training "
        f"mixtures left out; {len(keep)} sources keep the draw's share); {linked} teacher-cache links"
    )
    return 0


def _out_folder(name: str, corpus: Path, out: Path) -> bool:
    if out.resolve() == corpus.resolve() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        print(f"{name}: {out}: give a new or empty folder, not the corpus itself", file=sys.stderr)
        return False
    return True


def _write_manifest(out: Path, fieldnames: list[str], rows: list[dict[str, Any]]) -> None:
    from models.safeio import atomic_write_bytes

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(out / "manifest.csv", buf.getvalue().encode("utf-8"))


def _seconds(value: object) -> float:
    try:
        return max(0.0, float(str(value)))
    except ValueError:
        return 0.0


def run_subset(args: argparse.Namespace) -> int:
    """Write ``--out`` as a view of the corpus with :func:`models.training.corpus_split.halve_training`'s
    rows; ``clips``, ``teacher_segments`` and the ``codes-*`` folders are linked whole."""
    from models.training.corpus_split import halve_training

    name = "encotag corpus subset"
    rows = read_manifest(name, args.corpus)
    if rows is None:
        return 2
    if not _out_folder(name, args.corpus, args.out):
        return 2
    try:
        new, info = halve_training(rows, args.halvings)
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        _link_folders(args.corpus, args.out, ["clips", "teacher_segments"])
        _write_manifest(args.out, list(rows[0]), new)
    except OSError as exc:
        print(f"{name}: {args.out}: {exc}", file=sys.stderr)
        return 2
    hours = sum(_seconds(r.get("duration")) for r in new if r["split"] == "train") / 3600
    print(
        f"{args.out}: {info['kept_recordings']} of {info['recordings']} training recordings kept "
        f"({sum(r['split'] == 'train' for r in new)} training clips, {hours:.2f} h; "
        f"{info['rows_left_out']} rows left out; held-out rows unchanged)"
    )
    return 0
