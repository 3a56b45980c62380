"""The parts of ``encotag head`` that change heads after training: calibration options and the report
lines shared by ``train``, ``merge`` and ``correct``; ``merge`` (two heads of one pack → one head with
the union of classes), ``correct`` (a span of a file becomes examples of background or another class,
the head is retrained) and ``export --onnx`` (a portable model). Registered in
:mod:`app.commands.head`."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from app.commands.common import open_probability, probability

_HOP_S = 0.25  # the hop per-hour rates assume where no pack is loaded (merge, examples): WindowConfig's


def add_calibration_args(p: argparse.ArgumentParser, default_rate: float | None = 0.01) -> None:
    """How the per-class thresholds are chosen (``models.heads.head_cv.Calibration``); with
    ``default_rate`` None, no option given means "as the head was calibrated before"."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--false-alarm-rate",
        type=open_probability,
        default=default_rate,
        help="at most this fraction of 'background' windows fires a class"
        + (f" (default {default_rate:g})" if default_rate else " (default: as the head was calibrated)"),
    )
    g.add_argument(
        "--false-alarms-per-hour",
        type=float,
        metavar="N",
        help="at most N false alarms per hour of 'background' audio (at the pack's hop)",
    )
    g.add_argument(
        "--precision",
        type=probability,
        metavar="P",
        help="per-class thresholds for precision P on held-out (cross-validated) examples",
    )


def calibration_of(args: argparse.Namespace, hop_s: float, head: Any = None) -> Any:
    """The calibration the options ask for; none given and ``head`` given: the head's own."""
    from models.heads.head_cv import Calibration
    from models.heads.head_edit import calibration_of as head_calibration

    per_hour = getattr(args, "false_alarms_per_hour", None)
    given = (getattr(args, "false_alarm_rate", None), per_hour, getattr(args, "precision", None))
    if head is not None and all(v is None for v in given):
        return head_calibration(head)
    if per_hour is not None and per_hour < 0:
        raise ValueError("--false-alarms-per-hour must be >= 0")
    return Calibration(
        false_alarm_rate=getattr(args, "false_alarm_rate", None) or 0.01,
        per_hour=per_hour,
        hop_s=float(hop_s),
        precision=getattr(args, "precision", None),
    )


def report_lines(report: Any) -> list[str]:
    """A ``HeadReport`` as lines: grouped CV accuracy, confusion table, per-class thresholds."""
    by = "by recording" if report.grouping == "recording" else "over windows"
    lines = [
        f"cross-validated accuracy ({by}): {report.cv_accuracy:.3f} (C={report.c:g}, {report.seconds:.2f} s)",
        "confusion (rows true, columns predicted):",
    ]
    width = max(len(c) for c in report.classes)
    for name_i, row in zip(report.classes, report.confusion, strict=True):
        lines.append(f"  {name_i:>{width}}  " + " ".join(f"{int(v):4d}" for v in row))
    if report.per_class:
        lines.append("thresholds (precision / recall cross-validated):")
        for f in report.per_class:
            if f.precision < 0 and f.recall < 0:
                continue
            fah = "" if f.false_alarms_per_hour is None else f", {f.false_alarms_per_hour:.1f} false alarms/h"
            prec = "—" if f.precision < 0 else f"{f.precision:.3f}"
            lines.append(
                f"  {f.name:>{width}}  {f.threshold:.3f}  precision {prec}  recall {f.recall:.3f}{fah}"
            )
    return lines


def print_warnings(report: Any) -> None:
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)


def register(hs: Any, common: Any) -> None:
    """``correct``, ``merge`` and ``examples`` under ``encotag head`` (``common`` adds the engine args)."""
    c = hs.add_parser(
        "correct",
        help="turn a wrong detection into examples and retrain: the windows of FILE in --span go to "
        "'background' (or --as CLASS)",
    )
    c.add_argument("name")
    c.add_argument("file", type=Path)
    c.add_argument("--span", required=True, type=span_arg, metavar="START-END", help="seconds, e.g. 2.5-4")
    c.add_argument(
        "--as",
        dest="target",
        default="background",
        metavar="CLASS",
        help="the class the span really is (default: background, i.e. none of the classes)",
    )
    add_calibration_args(c, default_rate=None)
    common(c, window=True)

    m = hs.add_parser("merge", help="merge heads of one pack into one head with the union of their classes")
    m.add_argument("heads", nargs="+", metavar="NAME", help="two or more heads (trained with their examples)")
    m.add_argument("--out", required=True, metavar="NAME")
    m.add_argument("--kind", choices=("logreg", "mlp"), help="default: the first head's")
    m.add_argument("--force", action="store_true", help="replace an existing head of the --out name")
    add_calibration_args(m, default_rate=None)

    e = hs.add_parser("examples", help="list a head's examples by source; --remove some and retrain")
    e.add_argument("name")
    e.add_argument(
        "--remove",
        action="append",
        default=[],
        metavar="CLASS=SOURCE",
        help="remove the examples of CLASS that came from SOURCE (as listed), then retrain",
    )


def span_arg(text: str) -> tuple[float, float]:
    a, sep, b = text.partition("-")
    try:
        t0, t1 = float(a), float(b)
    except ValueError:
        t0 = t1 = -1.0
    if not sep or not 0 <= t0 < t1 or not math.isfinite(t1):
        raise argparse.ArgumentTypeError(f"expected START-END in seconds (0 <= START < END), got {text!r}")
    return t0, t1


def _examples_of(store: Any, name: str) -> Any:
    ex = store.load_examples(name)
    if not len(ex.label):
        raise ValueError(
            f"head '{name}' has no stored examples (trained with 'encotag head train' without "
            "--keep-examples?): retrain it with --keep-examples first"
        )
    return ex


def correct(args: argparse.Namespace, store: Any) -> int:
    """``encotag head correct NAME FILE --span A-B [--as CLASS]``."""
    import numpy as np

    from app.commands.common import load_engine, window_config
    from models.heads.head_edit import add_rows, retrain, span_rows, span_source
    from models.heads.head_store import PackStamp
    from models.tagging.pipeline import tag_file

    engine = load_engine(args)
    head = store.load(args.name, pack_id=engine.info.pack_id, layout=engine.info.embedding_layout)
    ex = _examples_of(store, args.name)
    rows = list(tag_file(engine, args.file, window=window_config(args, engine)))
    if not rows:
        raise ValueError(f"{args.file}: no audio to tag")
    starts = np.array([r.start for r in rows])
    ends = np.array([r.end for r in rows])
    idx = span_rows(starts, ends, *args.span)
    emb = np.stack([rows[i].embedding for i in idx]).astype(np.float32)
    source = span_source(str(args.file), float(starts[idx[0]]), float(ends[idx[-1]]))
    before = head.detections(head.predict(emb))
    ex = add_rows(ex, args.target, emb, source, PackStamp.of(engine.info))
    new, report, path = retrain(
        store, args.name, ex, kind=head.card.kind, calibration=calibration_of(args, engine.window.hop_s, head)
    )
    after = new.detections(new.predict(emb))
    print_warnings(report)
    print(f"added {len(idx)} window(s) of {source} to '{args.target}'; head '{args.name}' retrained: {path}")
    for j, cls in enumerate(head.classes):
        if cls in (args.target, "background"):
            continue
        k = new.classes.index(cls)
        print(f"  '{cls}' fired on {int(before[:, j].sum())}/{len(idx)} windows of the span before, "
              f"{int(after[:, k].sum())}/{len(idx)} now")  # fmt: skip
    print("\n".join(report_lines(report)))
    return 0


def merge(args: argparse.Namespace, store: Any) -> int:
    """``encotag head merge A B [...] --out C``."""
    from models.heads.head_edit import merge_sets, retrain
    from models.heads.head_store import check_name

    if len(set(args.heads)) < 2:
        raise ValueError("give at least two different heads to merge")
    out = check_name(args.out)
    if not args.force and (store.path(out).exists() or store.examples_path(out).exists()):
        raise ValueError(f"a head named '{out}' already exists (replace it: --force)")
    first = store.load(args.heads[0])
    merged = _examples_of(store, args.heads[0])
    for name in args.heads[1:]:
        store.load(name)  # verified, like the first
        merged = merge_sets(merged, _examples_of(store, name))
    _, report, path = retrain(  # calibration: the options, else the first head's
        store, out, merged, kind=args.kind or first.card.kind, calibration=calibration_of(args, _HOP_S, first)
    )
    print_warnings(report)
    counts = ", ".join(f"{c}: {n}" for c, n in merged.counts().items())
    print(f"merged {', '.join(args.heads)} into '{out}' ({counts}): {path}")
    print("\n".join(report_lines(report)))
    return 0


def examples(args: argparse.Namespace, store: Any) -> int:
    """``encotag head examples NAME [--remove CLASS=SOURCE]``."""
    from models.heads.head_edit import remove_source, retrain, source_rows
    from models.safeio import printable

    ex = _examples_of(store, args.name)
    if not args.remove:
        for cls, src, n in source_rows(ex):
            print(printable(f"{cls}\t{n}\t{src or '(unknown source)'}"))
        return 0
    for item in args.remove:
        cls, sep, src = item.partition("=")
        if not sep:
            raise ValueError(f"expected CLASS=SOURCE, got {item!r}")
        ex = remove_source(ex, cls, src)
    if store.path(args.name).exists():
        head = store.load(args.name)
        _, report, _ = retrain(
            store, args.name, ex, kind=head.card.kind, calibration=calibration_of(args, _HOP_S, head)
        )
        print_warnings(report)
        print("\n".join(report_lines(report)))
    else:
        store.save_examples(args.name, ex)
    print(f"removed; {len(ex.label)} examples left in '{args.name}'")
    return 0


def export_onnx(args: argparse.Namespace, store: Any) -> int:
    """``encotag head export NAME --onnx OUT.onnx [--check AUDIO]``."""
    import numpy as np

    from app.commands.common import load_engine
    from models.audio import load_audio
    from models.heads.head_data import window_batch
    from models.heads.head_onnx import export_onnx as export
    from models.safeio import printable

    engine = load_engine(args)
    head = store.load(args.name, pack_id=engine.info.pack_id, layout=engine.info.embedding_layout)
    check = None
    if args.check is not None:
        check = window_batch(load_audio(args.check, int(engine.sample_rate)), engine)
    r = export(
        engine, head, args.onnx, name=args.name, check_audio=check, time_runs=20 if check is not None else 0
    )
    print(printable(f"wrote {r.path} and {r.card_path}"))
    if check is not None:
        print(
            f"onnxruntime vs Encotag (torch) on {len(check)} windows of {printable(args.check)}: max abs "
            f"difference {r.max_abs_diff_head:.2e} (head), {r.max_abs_diff_audioset:.2e} (AudioSet)"
        )
        assert r.onnx_s_per_window is not None and r.torch_s_per_window is not None
        print(
            f"CPU time per window (batch of one): ONNX {1000 * r.onnx_s_per_window:.1f} ms, "
            f"torch {1000 * r.torch_s_per_window:.1f} ms ({r.torch_s_per_window / r.onnx_s_per_window:.2f}x)"
        )
        if (
            max(r.max_abs_diff_head or 0.0, r.max_abs_diff_audioset or 0.0) > 1e-3
            or not np.isfinite([r.max_abs_diff_head or 0.0, r.max_abs_diff_audioset or 0.0]).all()
        ):
            print(
                "encotag: the exported graph differs from Encotag's outputs by more than 1e-3",
                file=sys.stderr,
            )
            return 1
    return 0
