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

Output (``--format``): ``table`` (people), ``csv``, ``json``, ``audacity``, ``srt``, ``vtt`` (events).
With ``--out FILE`` and one input the output goes to FILE; with several inputs ``--out`` is a folder
that gets one ``<name><ext>`` per input. On stdout, several inputs are separated by ``==> PATH <==``
lines. Exit codes: 0 all good, 1 some inputs failed (each named on stderr, the others processed),
2 usage error or unusable pack/head (nothing processed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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

log = logging.getLogger(__name__)

TABLE_FORMATS = ("table", "csv", "json", "audacity", "srt", "vtt")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "tag",
        help="tag audio files: top tags and timed events",
        description="Tag audio files (or every audio file under a folder): clip-level top tags "
        "(mean of window probabilities) and events merged with hysteresis.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    add_engine_args(p)
    p.add_argument("--format", "-f", choices=TABLE_FORMATS, default="table", help="output format")
    p.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="clip-level tags to show")
    p.add_argument(
        "--threshold", type=probability, default=0.3, metavar="T", help="event on-threshold (off = 0.7 T)"
    )
    p.add_argument(
        "--min-duration", type=non_negative_float, default=0.25, metavar="S", help="shortest event kept"
    )
    p.add_argument("--out", "-o", type=Path, help="output file (one input) or folder (several inputs)")
    p.add_argument(
        "--head", metavar="NAME", help="also apply a personal head (a name or a .safetensors file)"
    )
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------------ tagging
@dataclass
class FileTags:
    path: Path
    duration: float
    starts: np.ndarray  # (N,) s
    ends: np.ndarray  # (N,) s
    probs: np.ndarray  # (N, C) float32
    head_probs: np.ndarray | None  # (N, K) float32
    truncated: str = ""  # "" or why only part of the file was tagged


def tag_one(engine: Any, path: Path, window: Any, head: Any) -> FileTags:
    """Run the pipeline over one file, keeping only times and probabilities (not embeddings).
    ``.ecodes`` files are tagged from their codes (:func:`models.tagging.code_tagging.tag_codes`)."""
    from models.tagging.pipeline import TagStats, tag_file

    stats = TagStats()
    starts, ends, probs, head_rows = [], [], [], []
    bar = ProgressPrinter(path.name, piped=False, min_total=8)
    if path.suffix.lower() == ".ecodes":
        from models.codec.codes import CodesError, check_stream, load_codes
        from models.tagging.code_tagging import tag_codes

        if engine.codec is None:
            raise CodesError(f"{path}: a code stream needs the codec pack that made it, not a mel pack")
        stream = load_codes(path, codec_id=engine.codec_id)
        check_stream(stream, engine.codec, int(engine.sample_rate), str(path))
        results = tag_codes(engine, stream, window, head)
    else:
        results = tag_file(engine, path, window=window, head=head, progress=bar, stats=stats)
    try:
        for r in results:
            starts.append(r.start)
            ends.append(r.end)
            probs.append(r.probs)
            if r.head_probs is not None:
                head_rows.append(r.head_probs)
    finally:
        bar.close()
    if not probs:
        from models.audio import AudioError

        raise AudioError(path, "no audio to tag")
    cut = ""
    if stats.truncated:
        cut = "truncated: only the part that decoded was tagged"
        if stats.frames_expected and stats.frames_in:
            cut += f" ({100 * stats.frames_in / stats.frames_expected:.0f} % of what the header claims)"
    return FileTags(
        path=path,
        duration=max(ends) if ends else 0.0,
        starts=np.asarray(starts),
        ends=np.asarray(ends),
        probs=np.stack(probs),
        head_probs=np.stack(head_rows) if head_rows else None,
        truncated=cut,
    )


def file_events(ft: FileTags, labels: tuple[str, ...], head: Any, args: argparse.Namespace) -> list[Any]:
    from models.tagging.events import merge_events

    events = merge_events(
        ft.starts, ft.ends, ft.probs, labels, on=args.threshold, min_duration=args.min_duration
    )
    if head is not None and ft.head_probs is not None:  # each class at its own threshold, no background
        from models.heads.head_events import head_events

        events += head_events(head, ft.starts, ft.ends, ft.head_probs, min_duration=args.min_duration)
        events.sort(key=lambda e: (e.start, e.label))
    return events


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
    targets = output_paths(files, args.out, EXTENSIONS[args.format])
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
