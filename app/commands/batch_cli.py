"""Combined, resumable output of ``encotag tag`` and ``encotag embed`` (the CLI side of
:mod:`models.batch`): what ``-o`` means, the overall progress line on stderr and the final summary.

``-o`` semantics (``encotag tag``):

- no ``-o``: text on stdout (``--format``, a table by default), file by file;
- ``-o DIR/`` (an existing folder, or a path ending in ``/``): one output per input in ``--format``;
- ``-o FILE``: one **combined** dataset: FILE is the files table, ``FILE-stem.events.EXT`` the events
  table (:mod:`models.batch.tables`); the format is ``--format`` (parquet, csv, json) or FILE's
  extension; a FILE without one gets ``.parquet`` (``.csv`` when pyarrow is missing). With one input,
  the per-file formats (audacity, srt, vtt, raven, table) still write that one file.

A combined run keeps a journal (``FILE.journal``) and skips files already done when re-run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from app.commands.common import UsageError

PARQUET_HINT = "Parquet needs pyarrow (pip install 'encotag[parquet]'; not in the desktop bundle)"


def add_batch_args(p: argparse.ArgumentParser) -> None:
    from app.commands.common import positive_int

    p.add_argument(
        "--workers", type=positive_int, metavar="N",
        help="worker processes for a combined output (default: CPU cores, at most 8; 1 = this process)",
    )  # fmt: skip
    p.add_argument("--restart", action="store_true", help="ignore what an earlier run already wrote")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    p.add_argument(
        "--engine", choices=("local", "ray"), default="local",
        help="local worker processes, or Ray Data (RAY_ADDRESS joins a cluster; needs encotag[cluster])",
    )  # fmt: skip


def is_folder_target(out: str | os.PathLike[str]) -> bool:
    """``-o DIR/`` (a trailing slash) or an existing folder: one output per input."""
    return Path(out).is_dir() or os.fspath(out).endswith(("/", os.sep))


def combined_target(out: Path, fmt: str | None) -> tuple[Path, str]:
    """The combined output's path and table format (parquet falls back to CSV, saying so)."""
    from models.batch.tables import have_pyarrow

    ext = out.suffix.lower().lstrip(".")
    if fmt not in (None, "parquet", "csv", "json"):
        raise UsageError(
            f"--format {fmt} writes one file per input: give a folder (-o DIR/), or csv/json/parquet "
            "for one combined file"
        )
    if fmt is None and out.suffix and ext not in ("parquet", "csv", "json"):
        raise UsageError(
            f"-o {out.name}: a combined output is .parquet, .csv or .json (or give --format); "
            "for one output per input give a folder (-o DIR/)"
        )
    chosen = fmt or (ext if ext in ("parquet", "csv", "json") else "parquet")
    if not out.suffix:
        out = out.with_name(f"{out.name}.{chosen}")
    if chosen == "parquet" and not have_pyarrow():
        out = out.with_suffix(".csv") if out.suffix.lower() == ".parquet" else out
        print(f"encotag: {PARQUET_HINT}; writing CSV instead: {out}", file=sys.stderr)
        chosen = "csv"
    return out, chosen


class BatchProgress:
    """Overall progress on stderr: files done of N, audio hours, rate, ETA. Redrawn in place on a
    terminal; elsewhere one line every ``every_s`` seconds. Failures are printed as they come."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.quiet, self.every_s = quiet, every_s
        self._last = 0.0

    def line(self, c: Any) -> str:
        rate = (c.ok + c.warnings + c.failed) / max(c.elapsed, 1e-9)
        left = c.total - c.done
        eta = f", ETA {_duration(left / rate)}" if rate > 0 and left else ""
        speed = c.audio_s / max(c.elapsed, 1e-9)  # audio seconds per second = audio hours per hour
        return (
            f"encotag: {c.done}/{c.total} files ({c.skipped} already done), {c.audio_s / 3600:.2f} h audio, "
            f"{rate:.1f} files/s, {speed:.0f} audio-h/h{eta}"
        )

    def __call__(self, rec: dict[str, Any], counts: Any) -> None:
        from models.safeio import printable

        if rec.get("status") != "ok":
            self._clear()
            kind = "" if rec.get("status") == "failed" else "warning: "
            msg = rec.get("error") or "failed"
            if kind:
                msg = f"{rec['file']}: {kind}{msg}"
            print(f"encotag: {printable(msg)}", file=self.stream)
        now = time.monotonic()
        wait = 0.2 if self.tty else self.every_s
        if self.quiet or (now - self._last < wait and counts.done < counts.total):
            return
        self._last = now
        text = self.line(counts)
        self.stream.write(("\r\x1b[K" + text[:160]) if self.tty else text + "\n")
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\r\x1b[K")

    def summary(self, c: Any, wrote: str) -> None:
        self._clear()
        if self.tty and not self.quiet:
            self.stream.write("\n")
        print(
            f"encotag: {c.ok} ok, {c.failed} failed, {c.warnings} warnings, {c.skipped} already done "
            f"(of {c.total}) in {_duration(c.elapsed)}; {wrote}",
            file=self.stream,
        )


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _settings(kind: str, engine: Any, window: Any, args: argparse.Namespace, head: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"pack_id": engine.info.pack_id, "window_s": window.window_s, "hop_s": window.hop_s}
    if kind == "tag":
        s.update(top_k=args.top_k, threshold=args.threshold, min_duration=args.min_duration)
        s["head"] = None if head is None else head.card.to_json()
    return s


def run_combined(
    kind: str, args: argparse.Namespace, files: list[Path], engine: Any, window: Any, head: Any,
    out: Path, fmt: str,
) -> int:  # fmt: skip
    """Tag or embed ``files`` into the combined output ``out`` (``fmt``: parquet/csv/json, or npz for
    embeddings), resuming from its journal. Returns the exit code."""
    from models.batch import tables
    from models.batch.journal import Journal, JournalError
    from models.batch.runner import BatchSpec, default_workers, run_batch
    from models.batch.work import TagOptions
    from models.safeio import printable

    opts = TagOptions(
        top_k=getattr(args, "top_k", 5),
        threshold=getattr(args, "threshold", 0.3),
        min_duration=getattr(args, "min_duration", 0.25),
    )
    spec = BatchSpec(kind, str(args.pack) if args.pack else None, window.window_s, window.hop_s, opts, head,
                     threads=args.threads or 1)  # fmt: skip
    special = out.exists() and not out.is_file()  # a pipe or a device: no journal beside it
    try:
        journal = Journal(
            None if special else out, kind, _settings(kind, engine, window, args, head), restart=args.restart
        )
    except (JournalError, OSError) as exc:
        print(f"encotag: {printable(exc)}", file=sys.stderr)
        return 2
    progress = BatchProgress(args.quiet or len(files) < 2)
    if journal.resumed and not args.quiet:
        print(f"encotag: resuming: {journal.path} has {journal.resumed} file(s) done", file=sys.stderr)
    workers = args.workers or min(
        default_workers(), max(1, len(files) // 8)
    )  # a worker takes seconds to start
    with journal:
        try:
            if args.engine == "ray":
                from models.batch.ray_engine import RayUnavailableError, run_ray

                try:
                    counts = run_ray(spec, files, journal, workers=workers, on_record=progress)
                except RayUnavailableError as exc:
                    print(f"encotag: {exc}", file=sys.stderr)
                    return 2
            else:
                counts = run_batch(spec, files, journal, workers=workers, engine=engine, on_record=progress)
        except KeyboardInterrupt:
            print(f"\nencotag: interrupted; finished files are kept in {journal.path}: run the same "
                  "command again to do the rest", file=sys.stderr)  # fmt: skip
            return 130
    keys = [os.path.abspath(f) for f in files]
    records = [journal.records[k] for k in dict.fromkeys(keys) if k in journal.records]
    try:
        if kind == "tag":
            _, ev = tables.write_tag_tables(out, fmt, records)
            wrote = f"wrote {out} (files) and {ev} (events)"
        else:
            meta = {
                "pack_id": engine.info.pack_id,
                "pack_name": engine.info.name,
                "layout": [list(p) for p in engine.info.embedding_layout],
                "embedding_size": int(engine.embedding_size),
                "sample_rate": int(engine.sample_rate),
                "window_s": float(window.window_s),
                "hop_s": float(window.hop_s),
            }
            write = tables.write_npz if fmt == "npz" else tables.write_embed_parquet
            n = write(out, meta, records)
            wrote = f"wrote {out} ({n} windows, {meta['embedding_size']}-dim embeddings)"
    except OSError as exc:
        print(f"encotag: {printable(out)}: cannot write ({exc.strerror or exc})", file=sys.stderr)
        return 1
    if len(files) > 1:
        progress.summary(counts, wrote)
    return 1 if counts.failed or counts.warnings else 0
