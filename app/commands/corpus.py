"""``encotag corpus build --out DIR``: build (or resume) the codec training corpus (docs/CORPUS.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.common import ProgressPrinter


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
    b.add_argument(
        "--snapshots",
        type=Path,
        default=None,
        help="folder of repository snapshots (encotag corpus snapshot)",
    )
    b.add_argument(
        "--stretch", type=int, default=0, help="augmented copies of each real recording, + real mixtures"
    )
    b.add_argument(
        "--domain-weights", default="", help="share of each domain, e.g. environment=2,speech=1,music=1"
    )
    b.add_argument(
        "--source-cap", action="append", default=[], metavar="NAME=HOURS", help="cap one source (repeatable)"
    )
    b.add_argument("--list-sources", action="store_true", help="print the sources and whether they can run")
    b.set_defaults(func=run)
    s = sub.add_parser("snapshot", help="extract the audio and licence files of repository snapshots")
    s.add_argument("git_dirs", nargs="+", type=Path, help="bare git directories (e.g. …/owner+name/repo)")
    s.add_argument("--out", type=Path, required=True, help="snapshot root (one owner+name folder each)")
    s.add_argument("--commit", default="HEAD", help="commit to take (default HEAD)")
    s.set_defaults(func=run_snapshot)
    r = sub.add_parser("resplit", help="hold out a recording of every source (rewrites manifest.csv)")
    r.add_argument("corpus", type=Path, help="corpus folder (manifest.csv)")
    r.add_argument(
        "--held-out-percent",
        type=int,
        default=None,
        metavar="P",
        help="instead: hold out recordings whose stable hash %% 100 < P (nests the draw); needs --out",
    )
    r.add_argument("--keep-sources", default="", help="sources that keep the draw's share (comma list)")
    r.add_argument(
        "--keep-sources-of",
        type=Path,
        action="append",
        default=[],
        metavar="PACK",
        help="also every source the pack's tagger was trained on (repeatable)",
    )
    r.add_argument("--out", type=Path, default=None, help="write the re-split corpus here (links the caches)")
    r.set_defaults(func=run_resplit)
    h = sub.add_parser("subset", help="a linked view with fewer training recordings (a learning curve)")
    h.add_argument("corpus", type=Path, help="corpus folder (manifest.csv)")
    h.add_argument("--halvings", type=int, required=True, metavar="K", help="keep about 1/2**K of them")
    h.add_argument("--out", type=Path, required=True, help="a new or empty folder for the view")
    h.set_defaults(func=run_subset)
    c = sub.add_parser("coverage", help="teacher class coverage of a corpus, on 2-s segments")
    c.add_argument("corpus", type=Path, help="corpus folder (manifest.csv)")
    c.add_argument("--teacher", type=Path, default=None, help="teacher folder (default ../shared/teachers/…)")
    c.add_argument("--cache", type=Path, default=None, help="logit cache (default CORPUS/teacher_segments)")
    c.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    c.add_argument("--sources", default="", help="only these sources (comma list)")
    c.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    c.add_argument(
        "--max-clips",
        type=int,
        default=0,
        help="only N training clips, evenly spaced (the selection of `train tagger --max-clips N`), and "
        "every held-out clip",
    )
    c.set_defaults(func=run_coverage)


def _pairs(text: str | list[str], what: str) -> dict[str, float]:
    items = text.split(",") if isinstance(text, str) else text
    out: dict[str, float] = {}
    for item in (i.strip() for i in items if i.strip()):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{what}: {item!r} is not NAME=NUMBER") from None
        if not sep or not out[name.strip()] > 0:
            raise ValueError(f"{what}: {item!r} needs a positive number")
    return out


def run_snapshot(args: argparse.Namespace) -> int:
    from models.training.snapshot_extract import extract_snapshot

    failed = 0
    for git_dir in args.git_dirs:
        try:
            r = extract_snapshot(git_dir, args.out, args.commit)
        except (OSError, RuntimeError, ValueError) as exc:
            print(f"encotag corpus snapshot: {git_dir}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(
            f"{r.repo} @ {r.commit[:12]}: {r.written} written, {r.kept} kept, {r.missing} absent"
            f" -> {r.folder}"
        )
    return 1 if failed else 0


def _progress(msg: str) -> None:
    print(f"corpus: {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from models.training.corpus import BuildOptions, build, corpus_sources

    shared = args.shared
    if shared is None:
        repo = Path(__file__).resolve().parents[2]
        shared = repo.parent / "shared" / "data"
    try:
        weights = _pairs(args.domain_weights, "--domain-weights")
        caps = _pairs(args.source_cap, "--source-cap")
    except ValueError as exc:
        print(f"encotag corpus: {exc}", file=sys.stderr)
        return 2
    if args.list_sources:
        probe = BuildOptions(
            args.out, shared, mix=True, snapshots=args.snapshots, stretch=max(args.stretch, 1)
        )
        for s in corpus_sources(probe):
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
        source_caps=caps,
        snapshots=args.snapshots,
        stretch=max(0, args.stretch),
        domain_weights=weights,
    )
    try:
        total = build(opts, progress=_progress)
    except ValueError as exc:
        print(f"encotag corpus: {exc}", file=sys.stderr)
        return 2
    if total < args.hours:
        print(
            f"encotag corpus: {total:.2f} h built, short of --hours {args.hours:g} "
            "(the sources ran out under their caps)",
            file=sys.stderr,
        )
        return 1
    return 0


def run_coverage(args: argparse.Namespace) -> int:
    import torch

    from models.nets.tagger import teacher_tagger
    from models.packs.teacher_pack import TEACHER_FILE, TEACHER_LABELS, teacher_labels
    from models.training.coverage import (
        coverage,
        coverage_markdown,
        per_source_classes,
        read_manifest,
        teacher_segment_logits,
    )

    repo = Path(__file__).resolve().parents[2]
    teacher_dir = args.teacher or repo.parent / "shared" / "teachers" / "efficientat_mn04_as"
    if not (args.corpus / "manifest.csv").is_file():
        print(f"encotag corpus coverage: {args.corpus}: no manifest.csv", file=sys.stderr)
        return 2
    if not (teacher_dir / TEACHER_FILE).is_file():
        print(f"encotag corpus coverage: no teacher at {teacher_dir / TEACHER_FILE}", file=sys.stderr)
        return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    rows = read_manifest(args.corpus)
    wanted = {w for w in args.sources.split(",") if w}
    keep = [i for i, r in enumerate(rows) if not wanted or r.source in wanted]
    if args.max_clips > 0:
        from app.commands.train_data import evenly_spaced

        train = evenly_spaced([i for i in keep if rows[i].split == "train"], args.max_clips)
        keep = sorted({*train, *(i for i in keep if rows[i].split != "train")})
    rows = [rows[i] for i in keep]
    teacher = teacher_tagger(teacher_dir / TEACHER_FILE)
    labels = teacher_labels(teacher_dir / TEACHER_LABELS)

    progress = ProgressPrinter("coverage").counter("clips to compute")

    cache = args.cache or args.corpus / "teacher_segments"
    logits = teacher_segment_logits(args.corpus, rows, teacher, cache, progress=progress)[:, :-1]

    cov = coverage(logits, rows)
    report = coverage_markdown(cov, labels, per_source_classes(logits, rows))
    head = (
        f"{cov.covered(0.3)} classes with >= 20 training segments at p >= 0.3, "
        f"{cov.covered(0.5)} at p >= 0.5 ({len(rows)} clips)"
    )
    print(head)
    if args.out:
        args.out.write_text(
            f"# Teacher class coverage of {args.corpus}\n\n{head}.\n\n{report}", encoding="utf-8"
        )
    else:
        print(report)
    return 0


def run_subset(args: argparse.Namespace) -> int:
    from app.commands.corpus_widen import run_subset as run

    return run(args)


def run_resplit(args: argparse.Namespace) -> int:
    """Apply :func:`models.training.corpus_split.cover_every_source` to an existing corpus's manifest; the
    teacher cache of every clip whose split changed is dropped (held-out clips cache whole-clip logits)."""
    import csv
    import io

    from app.commands.corpus_widen import read_manifest
    from models.safeio import atomic_write_bytes
    from models.training.corpus_render import MANIFEST_COLUMNS
    from models.training.corpus_split import cover_every_source

    manifest = args.corpus / "manifest.csv"
    rows = read_manifest("encotag corpus resplit", args.corpus)
    if rows is None:
        return 2
    if args.held_out_percent is not None or args.out is not None:
        from app.commands.corpus_widen import run_widen

        return run_widen(args, rows)
    new, info = cover_every_source(rows)
    before = {r["clip"]: r["split"] for r in rows}
    changed = [r["clip"] for r in new if before[r["clip"]] != r["split"]]
    for clip in changed:
        (args.corpus / "teacher_segments" / (clip + ".npy")).unlink(missing_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) or MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(new)
    atomic_write_bytes(manifest, buf.getvalue().encode("utf-8"))
    print(
        f"{manifest}: {len(info['moved'])} sources got a held-out recording ({len(changed)} clips moved to "
        f"val), {info['mixtures_left_out']} training mixtures left out; {len(new)} of {len(rows)} rows kept"
    )
    return 0
