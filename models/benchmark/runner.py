"""Run the benchmark: prepare workloads, measure every subject in its own process, collect results.

Each subject (pack) is measured in a fresh worker process (``python -m models.benchmark.worker``, or
the command the caller passes) so that its load time and **peak RSS** (``getrusage`` of that process)
are its own. The worker writes one JSON file; :func:`run_benchmark` returns the list of them plus the
machine description. Workloads (a 10 s clip, an hour-long file, a folder of short files) are written
once into ``workdir`` and reused by later runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.benchmark.subjects import Subject, short_files, write_audio
from models.benchmark.timing import load_average

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    """What to measure. ``long_s`` 0 skips the long file; ``long_for`` names the subjects that run it
    (empty: all); ``files`` 0 skips the folder; ``live_s`` 0 skips the live path."""

    threads: int = 2
    clip_s: float = 10.0
    repeat: int = 15  # the best of many: on a shared machine the quiet moments give the code's own cost
    budget_s: float = 12.0
    lengths_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    batches: tuple[int, ...] = (1, 2, 4, 8, 16)
    long_s: float = 3600.0
    long_for: tuple[str, ...] = ()
    files: int = 500
    live_s: float = 20.0
    timeout_s: float = 3600.0

    @classmethod
    def quick(cls, threads: int = 2) -> BenchConfig:
        """A smoke run of a few seconds per subject (tests, a first look)."""
        return cls(
            threads=threads,
            clip_s=2.0,
            repeat=1,
            budget_s=2.0,
            lengths_s=(1.0, 2.0),
            batches=(1, 2),
            long_s=0.0,
            files=3,
            live_s=1.0,
        )


def prepare_workloads(cfg: BenchConfig, workdir: Path) -> dict[str, Any]:
    """Write (or reuse) the clip, the long file and the folder of short files; returns their paths."""
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"clip": str(write_audio(workdir / f"clip_{cfg.clip_s:g}s.wav", 44100, cfg.clip_s))}
    if cfg.long_s > 0:
        out["long"] = str(write_audio(workdir / f"long_{cfg.long_s:g}s.wav", 16000, cfg.long_s))
    if cfg.files > 0:
        out["files"] = [str(p) for p in short_files(workdir / f"folder_{cfg.files}", cfg.files)]
    return out


def machine_info(threads: int) -> dict[str, Any]:
    """CPU, core count, load average, versions and the UTC date of the run."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numpy

    try:
        from importlib.metadata import version

        torch_version = version("torch")
    except Exception:  # noqa: BLE001 - metadata missing in a bundle
        torch_version = "?"
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "load_average": load_average(),
        "python": platform.python_version(),
        "torch": torch_version,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def default_worker_argv() -> list[str]:
    return [sys.executable, "-m", "models.benchmark.worker"]


def run_subject(
    subject: Subject,
    cfg: BenchConfig,
    workloads: dict[str, Any],
    workdir: Path,
    worker_argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Measure one subject in a fresh process; returns its JSON result (``error`` set on failure)."""
    spec = {
        "subject": {"name": subject.name, "path": str(subject.path), "kind": subject.kind},
        "config": dataclasses.asdict(cfg),
        "workloads": workloads,
        "long": cfg.long_s > 0 and (not cfg.long_for or subject.name in cfg.long_for),
    }
    spec_path = workdir / f"spec_{subject.name}.json"
    out_path = workdir / f"result_{subject.name}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    out_path.unlink(missing_ok=True)
    argv = [*(worker_argv or default_worker_argv()), str(spec_path), str(out_path)]
    env = dict(os.environ, OMP_NUM_THREADS=str(cfg.threads), MKL_NUM_THREADS=str(cfg.threads))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=cfg.timeout_s)
    except subprocess.TimeoutExpired:
        return {"subject": spec["subject"], "error": f"timed out after {cfg.timeout_s:g} s"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out_path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"subject": spec["subject"], "error": f"worker exit {proc.returncode}: {tail[0]}"}
    result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
    result["worker_wall_s"] = wall
    return result


def run_benchmark(
    subjects: Sequence[Subject],
    cfg: BenchConfig,
    workdir: Path,
    *,
    worker_argv: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure every subject; returns ``{"machine": …, "config": …, "results": [...]}``."""
    say = progress or (lambda _msg: None)
    say("preparing workloads")
    workloads = prepare_workloads(cfg, workdir)
    machine = machine_info(cfg.threads)
    results = []
    for s in subjects:
        say(f"measuring {s.name} ({s.path})")
        results.append(run_subject(s, cfg, workloads, workdir, worker_argv))
    machine["load_average_end"] = load_average()
    return {"machine": machine, "config": dataclasses.asdict(cfg), "results": results}
