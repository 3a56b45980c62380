"""``encotag eval``: linear probes, teacher agreement and the mel baseline, side by side.

Rows: every ``--pack`` given, the teacher (EfficientAT mn04_as converted to a mel pack from
``../shared/teachers/efficientat_mn04_as``) and the mel-statistics baseline. Tasks: the shared data sets
(``--data``), the synthesized pitch task and any ``--task DIR`` holding a ``labels.csv``. Embeddings are
cached under the user cache folder (``--cache``); the report goes to ``docs/EVALUATION.md`` of the source
checkout (``--out``), with a JSON copy on request (``--json``). ``--quick`` runs a small subset for CI.
Exit 0, 1 when some clips or probes failed, 2 on bad usage or missing data.
"""

from __future__ import annotations

import argparse
import logging
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.commands.common import ProgressPrinter, thread_count

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
TEACHER_NAME = "teacher (mel mn04)"
QUICK_MAX_CLIPS = 100
QUICK_MAX_CORPUS = 50


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="linear probes + teacher agreement for packs, teacher and mel baseline")
    p.add_argument("--pack", type=Path, action="append", default=[], help="model pack folder (repeatable)")
    p.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data", help="shared data sets")
    p.add_argument(
        "--teacher-dir", type=Path, default=REPO_ROOT.parent / "shared" / "teachers" / "efficientat_mn04_as"
    )
    p.add_argument(
        "--task", type=Path, action="append", default=[], help="extra task: a folder with labels.csv"
    )
    p.add_argument(
        "--task-domain", default="other", help="domain of the --task sets (environment/speech/music)"
    )
    p.add_argument(
        "--corpus", type=Path, default=REPO_ROOT.parent / "corpus", help="corpus (val split: agreement)"
    )
    p.add_argument("--max-corpus", type=int, default=2000, help="at most this many corpus val clips")
    p.add_argument(
        "--drawn-only",
        action="store_true",
        help="corpus val clips only of recordings the stable hash draw holds out (held out in every build:"
        " for packs trained on an earlier build of the corpus)",
    )
    p.add_argument("--cache", type=Path, help="embedding cache folder (default: <user cache>/eval)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached embeddings")
    p.add_argument("--work", type=Path, help="folder for the rendered pitch set and the teacher pack")
    p.add_argument("--no-teacher", action="store_true", help="leave out the teacher row (and agreement)")
    p.add_argument("--no-baseline", action="store_true", help="leave out the mel-statistics baseline row")
    p.add_argument("--no-pitch", action="store_true", help="leave out the synthesized pitch task")
    p.add_argument(
        "--quick", action="store_true", help=f"CI subset: 4 tasks + pitch, <= {QUICK_MAX_CLIPS} clips each"
    )
    p.add_argument("--out", type=Path, help="report path (default: docs/EVALUATION.md; quick mode: none)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=thread_count, default=1, help="torch threads (1: timings comparable, deterministic)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--pad-to-window",
        action="store_true",
        help="zero-pad clips shorter than the pack window (default: whole clip)",
    )
    p.set_defaults(func=run)


def _commit() -> str:
    try:
        res = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return res.stdout.strip() or "unknown"


def _machine(threads: int) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} logical CPUs (shared), torch {threads} thread(s), {platform.system()}"


def run(args: argparse.Namespace) -> int:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("encotag eval: scikit-learn is needed (pip install scikit-learn)", file=sys.stderr)
        return 2
    import torch

    from app.paths import cache_dir
    from models.evaluation.agreement import heldout_clips
    from models.evaluation.cache import EmbeddingCache
    from models.evaluation.embedders import MelStatsEmbedder, PackEmbedder
    from models.evaluation.pitch import pitch_task, pitch_unavailable
    from models.evaluation.report import (
        PROTOCOL,
        ReportMeta,
        merge_report,
        render_markdown,
        results_json,
        write_atomic,
    )
    from models.evaluation.runner import evaluate
    from models.evaluation.tasks import QUICK_TASKS, TaskError, builtin_tasks, load_task, subsample
    from models.packs.pack import PackError
    from models.packs.teacher_pack import build_teacher_pack

    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    progress = ProgressPrinter(enabled=not args.no_progress, elapsed=True)
    work = args.work or cache_dir() / "eval-work"
    notes: list[str] = []

    # ---- tasks
    try:
        tasks = builtin_tasks(args.data, QUICK_TASKS if args.quick else None, seed=args.seed)
        tasks += [load_task(d, domain=args.task_domain, seed=args.seed) for d in args.task]
    except TaskError as exc:
        print(f"encotag eval: {exc}", file=sys.stderr)
        return 2
    if not args.no_pitch:
        reason = pitch_unavailable()
        if reason:
            notes.append(f"pitch task left out: {reason}")
        else:
            try:
                tasks.append(pitch_task(work, quick=args.quick, progress=progress))
            except (RuntimeError, OSError, subprocess.SubprocessError, TaskError) as exc:
                notes.append(f"pitch task left out: {exc}")
    if args.quick:
        tasks = [subsample(t, QUICK_MAX_CLIPS, seed=args.seed) for t in tasks]
    if not tasks:
        print(f"encotag eval: no tasks found (data folder {args.data})", file=sys.stderr)
        return 2
    for note in notes:
        print(f"encotag eval: {note}", file=sys.stderr)

    # ---- embedders
    embedders: list[Any] = []
    teacher_id = None
    try:
        packs = [PackEmbedder(p, pad_to_window=args.pad_to_window) for p in args.pack]
        if not args.no_teacher:
            if (args.teacher_dir / "mn04_as_mAP_432.pt").is_file():
                tdir = work / "teacher-pack"
                if not (tdir / "manifest.json").is_file():
                    build_teacher_pack(args.teacher_dir, tdir)
                teacher = PackEmbedder(tdir, TEACHER_NAME, final_view=True, pad_to_window=args.pad_to_window)
                scene, final = teacher.views
                teacher_id = scene.id
                same = [p for p in packs if p.views[0].id == teacher_id]
                if same:  # the teacher given as --pack: one row
                    scene = replace(scene, name=f"{same[0].views[0].name} = {TEACHER_NAME}")
                teacher.views = (scene, replace(final, reference="teacher"))
                packs = [p for p in packs if p.views[0].id != teacher_id]
                embedders.append(teacher)
            else:
                notes.append(f"teacher rows left out: no teacher weights in {args.teacher_dir}")
        embedders += packs
    except PackError as exc:
        print(f"encotag eval: {exc}", file=sys.stderr)
        return 2
    if not args.no_baseline:
        embedders.append(MelStatsEmbedder())
    if not embedders:
        print("encotag eval: nothing to evaluate (give --pack or keep the teacher/baseline)", file=sys.stderr)
        return 2

    corpus = args.corpus if (args.corpus / "manifest.csv").is_file() else None
    if corpus is None:
        notes.append(f"no corpus at {args.corpus}: teacher agreement uses the shared test splits only")
    max_corpus = min(args.max_corpus, QUICK_MAX_CORPUS) if args.quick else args.max_corpus
    heldout = heldout_clips(tasks, corpus, max_corpus, args.drawn_only) if teacher_id and packs else []
    if args.drawn_only and corpus is not None:
        notes.append(
            "broad held-out set: only the recordings the stable hash draw holds out (--drawn-only), held out"
            " in every build of the corpus; those held out by the cover-every-source rule are left out"
        )

    cache = EmbeddingCache(None if args.no_cache else (args.cache or cache_dir() / "eval"))
    t0, c0 = time.monotonic(), time.process_time()
    rows = evaluate(
        embedders, tasks, cache, teacher_id=teacher_id, heldout=heldout, seed=args.seed, progress=progress
    )
    elapsed, cpu = time.monotonic() - t0, time.process_time() - c0
    failed = sum(n for r in rows for n in r.failed.values()) + sum(len(tasks) - len(r.probes) for r in rows)
    if failed:
        notes.append(f"{failed} clips or probes failed (see the log); figures use the rest")
    notes.append(
        f"run time {elapsed / 60:.1f} min wall, {cpu / 60:.1f} min CPU of this process (cached embeddings "
        "are reused, so re-runs are faster; the pitch set and teacher pack are built once, before this clock)"
    )

    argv = sys.argv[1:]
    command = "encotag " + shlex.join(argv) if "eval" in argv else "encotag eval (called from Python)"
    meta = ReportMeta(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        commit=_commit(),
        command=command,
        machine=_machine(args.threads),
        quick=args.quick,
        notes=tuple(notes),
    )
    text = render_markdown(rows, tasks, meta, PROTOCOL)
    print(text)
    out = args.out
    if out is None and not args.quick and (REPO_ROOT / "docs").is_dir():
        out = REPO_ROOT / "docs" / "EVALUATION.md"
    if out is not None:
        old = out.read_text(encoding="utf-8") if out.is_file() else None
        write_atomic(out, merge_report(old, text))
        print(f"encotag eval: report written to {out}", file=sys.stderr)
    if args.json is not None:
        write_atomic(args.json, results_json(rows, tasks, meta))
    return 1 if failed else 0
