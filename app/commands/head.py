"""``encotag head``: train, list, inspect, rename, delete, import, export and score personal heads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from app.commands.common import ProgressPrinter, UsageError, add_engine_args, load_engine
from app.commands.head_ops import add_calibration_args, calibration_of, report_lines
from app.commands.head_ops import register as register_edits


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("head", help="personal heads: teach Encotag your own sounds")
    hs = p.add_subparsers(dest="head_command", metavar="ACTION", required=True)

    t = hs.add_parser("train", help="train a head from labelled audio files or folders")
    t.add_argument(
        "--class",
        dest="classes",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="examples for class NAME (a file or folder; repeat)",
    )
    t.add_argument("--labels-csv", metavar="DIR", help="a data-set folder with labels.csv instead of --class")
    t.add_argument("--split", default="train", help="split of labels.csv to train on (default: train)")
    t.add_argument("--label-column", default="label", help="labels.csv column holding the class")
    t.add_argument("--out", required=True, metavar="NAME", help="name to save the head under")
    t.add_argument("--kind", choices=("logreg", "mlp"), default="logreg")
    add_calibration_args(t)
    t.add_argument(
        "--keep-examples",
        action="store_true",
        help="store the example embeddings beside the head (for retraining)",
    )
    _common(t)

    ev = hs.add_parser("eval", help="accuracy of a head on labelled files (file-level)")
    ev.add_argument("name")
    ev.add_argument("--class", dest="classes", action="append", default=[], metavar="NAME=PATH")
    ev.add_argument("--labels-csv", metavar="DIR")
    ev.add_argument("--split", default="test")
    ev.add_argument("--label-column", default="label")
    _common(ev)

    b = hs.add_parser(
        "bench",
        help="head accuracy on a data set's train/test split next to the reference probe of 'encotag eval'",
    )
    b.add_argument("data", nargs="+", metavar="DATA_DIR", help="folders with labels.csv (train/test split)")
    b.add_argument("--label-column", default="label")
    b.add_argument("--kind", choices=("logreg", "mlp"), default="logreg")
    b.add_argument("--no-probe", action="store_true", help="skip the whole-clip probe comparison")
    b.add_argument("--cache", type=Path, help="'encotag eval' embedding cache (default: <user cache>/eval)")
    b.add_argument("--no-cache", action="store_true", help="do not read or write cached clip embeddings")
    b.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    _common(b)

    register_edits(hs, add_engine_args)
    hs.add_parser("list", help="list saved heads")
    info = hs.add_parser("info", help="show a head's card")
    info.add_argument("name")
    rm = hs.add_parser("delete", help="delete a head")
    rm.add_argument("name")
    mv = hs.add_parser("rename", help="rename a head")
    mv.add_argument("old")
    mv.add_argument("new")
    ex = hs.add_parser("export", help="write a head to a file, or with --onnx as a portable ONNX detector")
    ex.add_argument("name")
    ex.add_argument("file", nargs="?", help="the .safetensors file to write (not with --onnx)")
    ex.add_argument(
        "--onnx",
        type=Path,
        metavar="OUT.onnx",
        help="one ONNX graph: audio at the pack's rate → head and AudioSet probabilities (+ OUT.json card)",
    )
    ex.add_argument(
        "--check",
        type=Path,
        metavar="AUDIO",
        help="with --onnx: compare onnxruntime with Encotag's outputs on this file's windows; time both",
    )
    _common(ex)
    im = hs.add_parser("import", help="verify and add a head file")
    im.add_argument("file")
    im.add_argument("--name")
    im.add_argument(
        "--force", action="store_true", help="replace a head of the same name (drops its examples)"
    )
    p.set_defaults(func=run)


def _common(p: argparse.ArgumentParser) -> None:
    add_engine_args(p, window=False)


def _store():
    from app.paths import heads_dir
    from models.heads.head_store import HeadStore

    return HeadStore(heads_dir())


def _labelled(args: argparse.Namespace):
    from models.heads.head_data import from_class_args, from_labels_csv

    if args.labels_csv:
        return from_labels_csv(args.labels_csv, args.split, args.label_column)
    if not args.classes:
        raise ValueError("give --class NAME=PATH (repeat) or --labels-csv DIR")
    return from_class_args(args.classes)


def _progress(label: str) -> ProgressPrinter:
    return ProgressPrinter(label, piped=False)


def _train(args: argparse.Namespace) -> int:
    from models.heads.head_data import embed_files, stack_examples
    from models.heads.head_store import ExampleSet, PackStamp, check_name
    from models.heads.heads import train_head

    name = check_name(args.out)
    data = _labelled(args)
    engine = load_engine(args)
    per_file, errors = embed_files(engine, data.files, progress=_progress("embedding"))
    for err in errors:
        print(f"encotag: {err}", file=sys.stderr)
    if len(errors) == len(data.files):
        print("encotag: none of the example files could be read", file=sys.stderr)
        return 1
    x, y = stack_examples(per_file, data.label_ids())
    groups = np.concatenate([np.full(len(e), i, np.int64) for i, e in enumerate(per_file) if len(e)])
    head, report = train_head(
        x,
        y,
        data.classes,
        name=name,
        kind=args.kind,
        pack_id=engine.info.pack_id,
        layout=engine.info.embedding_layout,
        groups=groups,
        calibration=calibration_of(args, engine.window.hop_s),
        progress=_progress("training"),
    )
    store = _store()
    examples = None  # without --keep-examples an older example set must not survive beside the new head
    if args.keep_examples:
        sources = tuple(str(f) for f, e in zip(data.files, per_file, strict=False) for _ in range(len(e)))
        examples = ExampleSet(data.classes, x, y, sources, PackStamp.of(engine.info))
    path = store.save(head, name, examples=examples)  # head and examples: one file, one atomic write
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"head '{name}' saved to {path}")
    print(f"examples: {len(y)} windows from {len(data.files) - len(errors)} files")
    print("\n".join(report_lines(report)))
    return 1 if errors else 0


def _eval(args: argparse.Namespace) -> int:
    from models.heads.head_data import embed_files, file_accuracy

    data = _labelled(args)
    engine = load_engine(args)
    head = _store().load(args.name, pack_id=engine.info.pack_id, layout=engine.info.embedding_layout)
    unknown = sorted(set(data.classes) - set(head.classes))
    if unknown:
        raise ValueError(f"classes not in head '{args.name}': {', '.join(unknown)}")
    per_file, errors = embed_files(engine, data.files, progress=_progress("embedding"))
    for err in errors:
        print(f"encotag: {err}", file=sys.stderr)
    acc = file_accuracy(head, per_file, data.labels)
    print(f"file-level accuracy of '{args.name}': {acc:.3f} on {len(data.files) - len(errors)} files")
    return 1 if errors else 0


def _bench_lines(r, kind: str) -> list[str]:
    """The figures of one ``models.heads.head_bench.BenchResult`` as report lines."""
    n = r.n_train + r.n_test
    lines = [
        f"{r.data}: {r.n_classes} classes, {r.n_train} train / {r.n_test} test files; "
        f"pack {r.pack_name} ({r.pack_id[:12]})",
        f"  window embeddings: {n} files in {r.embed_wall_s:.1f} s wall, {r.embed_cpu_s:.1f} s CPU "
        f"({1000 * r.embed_cpu_s / max(1, n):.0f} ms CPU per file)",
        f"  head ({kind}, {r.n_train_windows} windows): file-level test accuracy {r.head_accuracy:.3f} "
        f"(CV by file {r.head_cv_accuracy:.3f}, C={r.head_c:g}, trained in {r.train_s:.1f} s)",
    ]
    if r.head_window_cv_accuracy is not None:
        lines.append(
            f"  CV over windows (files split across folds, optimistic): {r.head_window_cv_accuracy:.3f}"
        )
    if r.head_vs_probe is not None:
        verdict = "yes" if r.head_vs_probe >= -0.01 else "NO"
        lines += [
            f"  reference probe (encotag eval, whole-clip embeddings): {r.probe_accuracy:.3f} "
            f"(C={r.probe_c:g})",
            f"  head trained on the same whole-clip embeddings: {r.head_on_clip_accuracy:.3f} "
            f"({r.head_vs_probe:+.3f}; within 1 point or above: {verdict})",
        ]
    return lines


def _bench(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from app.paths import cache_dir
    from models.atomic import atomic_write_bytes
    from models.heads.head_bench import run_benchmark

    cache = None if args.no_cache else (args.cache or cache_dir() / "eval")
    out = []
    for data in args.data:
        r = run_benchmark(
            args.pack,
            data,
            label_column=args.label_column,
            kind=args.kind,
            probe=not args.no_probe,
            cache_root=cache,
            threads=args.threads,
            progress=lambda stage, p: _progress(stage)(p),
        )
        print("\n".join(_bench_lines(r, args.kind)))
        if r.failed:
            print(f"  {r.failed} unreadable file(s) skipped", file=sys.stderr)
        out.append({**dataclasses.asdict(r), "head_vs_probe": r.head_vs_probe})
    if args.json:
        atomic_write_bytes(args.json, (json.dumps(out, indent=2) + "\n").encode())
    return 0


def _list() -> int:
    from models.safeio import printable

    heads = _store().list()
    if not heads:
        print("no heads yet: train one with 'encotag head train --class NAME=PATH … --out NAME'")
    for h in heads:
        if h.card is None:
            print(f"{printable(h.name)}\tUNREADABLE: {printable(h.error)}")
        else:
            c = h.card
            by = "by recording" if c.cv_grouping == "recording" else "over windows"
            fields = (h.name, c.kind, f"{len(c.classes)} classes ({', '.join(c.classes)})",
                      f"cv acc {c.cv_accuracy:.3f} ({by})", f"pack {c.pack_id[:12]}", c.created)  # fmt: skip
            print("\t".join(printable(f) for f in fields))
    return 0


def run(args: argparse.Namespace) -> int:
    from models.audio import AudioError
    from models.evaluation.tasks import TaskError
    from models.heads.head_onnx import OnnxExportError
    from models.heads.heads import HeadError
    from models.packs.pack import PackError
    from models.safeio import printable

    store = _store()
    try:
        cmd = args.head_command
        if cmd == "train":
            return _train(args)
        if cmd == "eval":
            return _eval(args)
        if cmd == "bench":
            return _bench(args)
        if cmd == "list":
            return _list()
        if cmd in ("correct", "merge", "examples"):
            from app.commands import head_ops

            return {"correct": head_ops.correct, "merge": head_ops.merge, "examples": head_ops.examples}[cmd](
                args, store
            )
        if cmd == "info":
            card = store.load(args.name).card
            for key, value in sorted(card.__dict__.items()):
                print(printable(f"{key}: {value}"))
        elif cmd == "delete":
            store.delete(args.name)
            print(f"deleted head '{args.name}'")
        elif cmd == "rename":
            store.rename(args.old, args.new)
            print(f"renamed '{args.old}' to '{args.new}'")
        elif cmd == "export" and args.onnx is not None:
            from app.commands.head_ops import export_onnx

            return export_onnx(args, store)
        elif cmd == "export":
            if not args.file:
                raise ValueError("give the file to write (or --onnx OUT.onnx)")
            print(printable(f"wrote {store.export(args.name, Path(args.file))}"))
        elif cmd == "import":
            print(printable(f"imported to {store.import_file(args.file, args.name, force=args.force)}"))
        return 0
    except UsageError as exc:  # an unusable pack: nothing was done
        print(printable(f"encotag: {exc}"), file=sys.stderr)
        return 2
    except (HeadError, PackError, AudioError, TaskError, OnnxExportError) as exc:
        print(printable(f"encotag: {exc}"), file=sys.stderr)
        return 1
    except ValueError as exc:
        print(printable(f"encotag: {exc}"), file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, an unwritable target: one line, naming the file
        where = f"{exc.filename}: " if exc.filename else ""
        print(printable(f"encotag: {where}cannot write ({exc.strerror or exc})"), file=sys.stderr)
        return 1
