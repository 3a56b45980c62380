"""``encotag corpus build --out DIR``: build (or resume) the codec training corpus (docs/CORPUS.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("corpus", help="build the training corpus (see docs/CORPUS.md)")
    sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build or resume the corpus into --out")
    b.add_argument("--out", type=Path, required=True, help="output folder (clips/, manifest.csv, summary.md)")
    b.add_argument("--hours", type=float, default=20.0, help="target hours (default 20)")
    b.add_argument("--max-hours-per-source", type=float, default=2.0, help="cap per source (default 2)")
    b.add_argument(
        "--sources", default="", help="comma list of source names or groups shared,debian,synth,mix"
    )
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    b.add_argument("--jobs", type=int, default=2, help="worker processes, 1 or 2 (default 2)")
    b.add_argument("--mix", action="store_true", help="add mixtures: speech over music, events over noise")
    b.add_argument("--augment", action="store_true", help="random gain, EQ and reverb per unit")
    b.add_argument("--shared", type=Path, default=None, help="shared data root (default ../shared/data)")
    b.add_argument("--list-sources", action="store_true", help="print the sources and whether they can run")
    b.set_defaults(func=run)


def _progress(msg: str) -> None:
    print(f"corpus: {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from models.training.corpus import BuildOptions, build
    from models.training.corpus_sources import all_sources

    shared = args.shared
    if shared is None:
        repo = Path(__file__).resolve().parents[2]
        shared = repo.parent / "shared" / "data"
    if args.list_sources:
        for s in all_sources(shared, mix=True):
            print(f"{s.name:24s} {s.domain:12s} {s.origin:32s} {s.missing() or 'ok'}")
        return 0
    if args.hours <= 0 or args.max_hours_per_source <= 0:
        print("encotag corpus: --hours and --max-hours-per-source must be positive", file=sys.stderr)
        return 2
    opts = BuildOptions(
        out_dir=args.out,
        shared_root=shared,
        hours=args.hours,
        max_hours_per_source=args.max_hours_per_source,
        sources=tuple(args.sources.split(",")) if args.sources else (),
        seed=args.seed,
        jobs=max(1, min(args.jobs, 2)),
        mix=args.mix,
        augment=args.augment,
    )
    try:
        total = build(opts, progress=_progress)
    except ValueError as exc:
        print(f"encotag corpus: {exc}", file=sys.stderr)
        return 2
    return 0 if total >= args.hours else 1
