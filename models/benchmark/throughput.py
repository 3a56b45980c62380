"""Batch throughput (``encotag bench --batch``): files/s and audio-hours per hour on a folder of many
short clips and on a few long files, for today's single-process path and for the combined batch path
(:mod:`models.batch`: worker processes, journal, tables), side by side.

- ``single``: one process, one engine (``threads`` torch threads), files one after another through
  :func:`models.batch.work.tag_record` — what ``encotag tag FILES…`` did before the batch path; timed on
  the first ``baseline_files`` files of the workload (its rate does not depend on how many there are).
- ``batch ×N``: ``encotag tag FOLDER -o X.parquet --workers N`` (pool start-up, journal and table
  writing included), on the whole workload.

Workloads are synthetic (:func:`models.benchmark.live.synthetic_signal`, 16 kHz WAV) and made once in the
work folder. The load average is recorded with each figure: on a shared machine it changes everything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SR = 16000


def workload(folder: Path, n: int, seconds: float) -> list[Path]:
    """``n`` WAV files of ``seconds`` each (varied offsets of one synthetic signal), made once."""
    import soundfile as sf

    from models.benchmark.live import synthetic_signal

    folder.mkdir(parents=True, exist_ok=True)
    base = synthetic_signal(SR, max(seconds, 1.0) + 20.0)
    paths = []
    for i in range(n):
        p = folder / f"f{i:06d}.wav"
        if not p.exists():
            start = (i * 7919) % (len(base) - int(seconds * SR))
            sf.write(p, base[start : start + int(seconds * SR)], SR, subtype="PCM_16")
        paths.append(p)
    return paths


def _row(name: str, files: int, audio_s: float, wall_s: float) -> dict[str, Any]:
    return {
        "path": name,
        "files": files,
        "audio_h": audio_s / 3600,
        "wall_s": wall_s,
        "files_per_s": files / wall_s,
        "audio_h_per_h": audio_s / wall_s,
        "load": os.getloadavg()[0],
    }


def single_process(pack: Path | None, files: list[Path], threads: int | None) -> dict[str, Any]:
    from models.batch.work import TagOptions, tag_record
    from models.tagging.engine import Engine

    engine = Engine.load(pack, threads=threads)
    t0 = time.perf_counter()
    audio = 0.0
    for f in files:
        audio += tag_record(engine, f, engine.window, None, TagOptions())["duration"]
    name = f"single process (today), {threads or 'default'} thread(s)"
    return _row(name, len(files), audio, time.perf_counter() - t0)


def batch(pack: Path | None, files: list[Path], workers: int, out: Path) -> dict[str, Any]:
    from models.batch import tables
    from models.batch.journal import Journal
    from models.batch.runner import BatchSpec, run_batch
    from models.tagging.engine import Engine

    engine = Engine.load(pack, threads=1)
    spec = BatchSpec("tag", str(pack) if pack else None, engine.window.window_s, engine.window.hop_s)
    t0 = time.perf_counter()
    with Journal(out, "tag", {"bench": True}, restart=True) as journal:
        counts = run_batch(spec, files, journal, workers=workers, engine=engine)
        fmt = "parquet" if tables.have_pyarrow() else "csv"
        tables.write_tag_tables(out.with_suffix(f".{fmt}"), fmt, list(journal.records.values()))
    return _row(f"batch, {workers} worker(s)", counts.ok + counts.warnings, counts.audio_s,
                time.perf_counter() - t0)  # fmt: skip


def run_throughput(
    pack: Path | None,
    workdir: Path,
    *,
    short: tuple[int, float],
    long: tuple[int, float],
    workers: list[int],
    baseline_files: int,
    threads: int | None,
    say: Callable[[str], None] = lambda _m: None,
) -> list[dict[str, Any]]:
    """Rows for the short-clip and the long-file workloads (see the module docstring)."""
    rows = []
    for label, (n, seconds) in (("short clips", short), ("long files", long)):
        if n <= 0:
            continue
        files = workload(workdir / f"batch-{n}x{seconds:g}s", n, seconds)
        base_n = max(1, min(n, baseline_files if label == "short clips" else max(1, baseline_files // 100)))
        say(f"batch throughput: {label}, single process on {base_n} of {n} files")
        r = single_process(pack, files[:base_n], threads)
        rows.append({"workload": f"{n} × {seconds:g} s", **r})
        for w in workers:
            say(f"batch throughput: {label}, {w} worker(s) on {n} files")
            r = batch(pack, files, w, workdir / f"batch-out-{n}-{w}.parquet")
            rows.append({"workload": f"{n} × {seconds:g} s", **r})
    return rows


def table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    head = [
        "workload",
        "path",
        "files timed",
        "audio (h)",
        "wall (s)",
        "files/s",
        "audio-h/h",
        "load (1 min)",
    ]
    body = [
        [r["workload"], r["path"], str(r["files"]), f"{r['audio_h']:.2f}", f"{r['wall_s']:.0f}",
         f"{r['files_per_s']:.2f}", f"{r['audio_h_per_h']:.1f}", f"{r['load']:.1f}"]
        for r in rows
    ]  # fmt: skip
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body]) + "\n"
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    return (
        "\n".join("  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)) for x in [head, *body]) + "\n"
    )


__all__ = ["run_throughput", "table", "workload"]
