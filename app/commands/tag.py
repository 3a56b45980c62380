"""``encotag tag PATH…``: top tags and timed events of audio files (files or folders).

Each file is cut into the pack's windows (or ``--window``/``--hop``). Clip-level tags are the **mean**
of the window probabilities (robust to a single loud moment; the ranking matches a whole-clip run on
the teacher's sample clips). Events come from :func:`models.tagging.events.merge_events`: a label opens at
``--threshold``, stays open down to 0.7 × threshold, gaps ≤ 0.25 s are bridged and events shorter than
``--min-duration`` are dropped. A personal head's events (``--head``) are those of
:func:`models.heads.head_events.head_events`, as the window exports them: each class at its own
calibrated threshold, background left out, labelled ``"<class> (head)"``.

A ``.ecodes`` code-stream file (``encotag encode``; format in ``models/codec/codes.py``) is tagged from its
codec codes directly, without audio decoding or the codec encoder; it needs the codec pack that made it.

Output (``-o`` semantics in :mod:`app.commands.batch_cli`):

- no ``--out``: ``--format`` ``table`` (people, the default), ``csv``, ``json``, ``audacity``, ``srt``,
  ``vtt`` or ``raven`` on stdout; several inputs are separated by ``==> PATH <==`` lines;
- ``--out DIR/`` (an existing folder or a path ending in ``/``): one ``<name><ext>`` per input;
- ``--out FILE``: one combined, resumable dataset (Parquet, CSV or JSON): FILE is the files table (one
  row per file: duration, top-k tags with scores and trusted flags, pack id, status) and
  ``FILE-stem.events.EXT`` the events table (file, start, end, label, score, trusted). Re-running the
  command skips the files already done (journal ``FILE.journal``). With one input, a per-file format
  (``audacity``, ``srt``, ``vtt``, ``raven``, ``table``; implied by FILE's extension) writes FILE in that
  format instead, and so does one input to a pipe or device (``-o /dev/stdout -f csv``: its events).

Exit codes: 0 all good, 1 some inputs failed (each named on stderr, the others processed),
2 usage error or unusable pack/head (nothing processed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from app.commands.batch_cli import add_batch_args, combined_target, is_folder_target, run_combined
from app.commands.common import (
    ProgressPrinter,
    UsageError,
    add_engine_args,
    load_engine,
    load_head_arg,
    non_negative_float,
    output_paths,
    positive_int,
    probability,
    report_failure,
    window_config,
)
from models.batch.work import FileTags

log = logging.getLogger(__name__)

PER_FILE_FORMATS = ("table", "audacity", "srt", "vtt", "raven")

TABLE_FORMATS = ("table", "csv", "json", "parquet", "audacity", "srt", "vtt", "raven")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "tag",
        help="tag audio files: top tags and timed events",
        description="Tag audio files (or every audio file under a folder): clip-level top tags "
        "(mean of window probabilities) and events merged with hysteresis.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    add_engine_args(p)
    p.add_argument(
        "--format", "-f", choices=TABLE_FORMATS,
        help="output format (default: a table on stdout; with -o FILE its extension, else parquet)",
    )  # fmt: skip
    p.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="clip-level tags to show")
    p.add_argument(
        "--threshold", type=probability, default=0.3, metavar="T", help="event on-threshold (off = 0.7 T)"
    )
    p.add_argument(
        "--min-duration", type=non_negative_float, default=0.25, metavar="S", help="shortest event kept"
    )
    p.add_argument(
        "--out", "-o",
        help="FILE: one combined, resumable dataset (files table + FILE-stem.events table); "
        "DIR/: one output per input",
    )  # fmt: skip
    p.add_argument(
        "--head", metavar="NAME", help="also apply a personal head (a name or a .safetensors file)"
    )
    add_batch_args(p)
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------------ tagging
def tag_one(engine: Any, path: Path, window: Any, head: Any) -> FileTags:
    """:func:`models.batch.work.tag_one` with a per-file progress bar on a terminal."""
    from models.batch.work import tag_one as run_one

    bar = ProgressPrinter(path.name, piped=False, min_total=8)
    try:
        return run_one(engine, path, window, head, progress=bar)
    finally:
        bar.close()


def file_events(ft: FileTags, labels: tuple[str, ...], head: Any, args: argparse.Namespace) -> list[Any]:
    from models.batch.work import TagOptions
    from models.batch.work import file_events as events_of

    opts = TagOptions(args.top_k, args.threshold, args.min_duration)
    return events_of(ft, labels, head, opts)


def format_table(ft: FileTags, events: list[Any], engine: Any, head: Any, args: argparse.Namespace) -> str:
    from app.export import format_events

    labels, trusted = engine.labels, engine.info.trusted
    clip = ft.probs.mean(axis=0)
    top = np.argsort(-clip, kind="stable")[: args.top_k]
    from models.safeio import printable

    lines = [f"{printable(ft.path)}  ({ft.duration:.2f} s, {len(ft.starts)} windows)"]
    lines.append(f"  top {len(top)} tags (mean over windows):")
    any_untrusted = False
    for i in top:
        mark = "" if trusted[i] else "  *"
        any_untrusted |= not trusted[i]
        lines.append(f"    {clip[i]:.3f}  {printable(labels[i])}{mark}")
    if any_untrusted:
        lines.append("    (* a label this pack was not trained on: treat with care)")
    if head is not None and ft.head_probs is not None:
        hp = ft.head_probs.mean(axis=0)
        lines.append("  personal head (mean over windows):")
        lines += [f"    {hp[i]:.3f}  {printable(head.classes[i])}" for i in np.argsort(-hp)]
    lines.append(f"  events (on {args.threshold:.2f}, min {args.min_duration:g} s):")
    lines += ["    " + line for line in format_events(events, "table").splitlines()]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from app.export import EXTENSIONS, format_events
    from models.atomic import atomic_write_text
    from models.audio import AUDIO_EXTENSIONS, list_audio_files
    from models.safeio import printable

    failures = 0
    files: list[Path] = []
    for raw in args.paths:
        found = list_audio_files([raw])
        if Path(raw).is_dir() and not found:
            print(
                f"encotag: {printable(raw)}: no audio files found ({', '.join(sorted(AUDIO_EXTENSIONS))})",
                file=sys.stderr,
            )
            failures += 1
        files += [f for f in found if f not in files]
    if not files:
        return 1
    try:
        engine = load_engine(args)
        window = window_config(args, engine)
        head = load_head_arg(args.head, engine) if args.head else None
    except UsageError as exc:
        print(f"encotag: {exc}", file=sys.stderr)
        return 2
    folder = args.out is not None and is_folder_target(args.out)
    out_path = Path(args.out) if args.out is not None else None
    combined = out_path is not None and not folder
    if combined and out_path is not None and len(files) == 1 and args.format is None:
        from app.export import format_from_path

        implied = format_from_path(out_path)  # e.g. -o x.srt: that file, as a subtitle file
        implied = "table" if implied == "audacity" else implied  # -o x.txt: the table, as ever
        args.format = implied if implied in PER_FILE_FORMATS else None
    if combined and len(files) == 1 and out_path is not None and out_path.exists() and not out_path.is_file():
        combined = False  # one input to a pipe or a device (-o /dev/stdout): its events, streamed
    if combined and len(files) == 1 and args.format in PER_FILE_FORMATS:
        combined = False  # one input, a per-file format: that one file, as asked
    if combined and out_path is not None:
        try:
            out, fmt = combined_target(out_path, args.format)
        except UsageError as exc:
            print(f"encotag: {exc}", file=sys.stderr)
            return 2
        code = run_combined("tag", args, files, engine, window, head, out, fmt)
        return code if code != 0 else (1 if failures else 0)
    args.format = args.format or ("csv" if args.out is not None else "table")
    if args.format == "parquet":
        print("encotag: parquet is a combined output: give -o FILE.parquet", file=sys.stderr)
        return 2
    if args.engine != "local":
        print("encotag: --engine ray writes a combined output: give -o FILE.parquet", file=sys.stderr)
        return 2
    if folder and out_path is not None:
        try:
            out_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"encotag: {printable(out_path)}: cannot make the folder ({exc.strerror or exc})",
                  file=sys.stderr)  # fmt: skip
            return 2
    targets = output_paths(files, out_path, EXTENSIONS[args.format])
    for path, target in zip(files, targets, strict=True):
        try:
            ft = tag_one(engine, path, window, head)
            events = file_events(ft, engine.labels, head, args)
            if args.format == "table":
                text = format_table(ft, events, engine, head, args)
            else:
                text = format_events(events, args.format)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            report_failure(path, exc)
            failures += 1
            continue
        if ft.truncated:  # tagged, but counted: the exit code says not everything was there
            print(f"encotag: {printable(path)}: warning: {ft.truncated}", file=sys.stderr)
            failures += 1
        if target is None:
            if len(files) > 1 and args.format != "table":
                print(f"==> {printable(path)} <==")
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            try:
                atomic_write_text(target, text)
            except OSError as exc:
                print(f"encotag: {printable(target)}: cannot write ({exc.strerror or exc})", file=sys.stderr)
                failures += 1
                continue
            log.info("%s → %s", path, target)
    return 1 if failures else 0
