"""``encotag bench``: speed and memory of the tagging pipelines, side by side with the teacher's.

Measures every subject (pack) in its own process — per stage (decode, resample, codec encoder | log-mel,
RVQ, tagger, heads), whole clip, file tagging, tagging from codec codes, an hour-long file, a folder of
short files, the live path (compute per hop, sample → tags latency), peak RSS — and the app's cold start
(to window shown, to first tags; with the GUI's peak RSS). Prints one table; each figure also as a ratio
to the teacher's mel pipeline (mn04 on 32 kHz log-mel). ``--quick`` is a smoke run of a few seconds.

Subjects: the teacher (built from ``--teacher`` or ``../shared/teachers/efficientat_mn04_as`` into the
work folder), the shipped default pack if present, every ``--pack`` and, for timing only, random-weight
codec packs of the given encoder widths (``--random-codec 32`` is the official 24 kHz layout).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OFFICIAL_TEACHER = Path(__file__).resolve().parents[2] / ".." / "shared" / "teachers" / "efficientat_mn04_as"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark speed and memory (ratios to the teacher's mel pipeline)",
        description="Benchmark the tagging pipelines (per stage, end to end, live, memory, cold start).",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: short clip, few repeats, no long file")
    p.add_argument("--pack", type=Path, action="append", default=[], help="a pack to measure (repeatable)")
    p.add_argument(
        "--teacher", type=Path, help="teacher folder (default: ../shared/teachers/efficientat_mn04_as)"
    )
    p.add_argument("--no-teacher", action="store_true", help="do not measure the teacher")
    p.add_argument("--no-default", action="store_true", help="do not measure the shipped default pack")
    p.add_argument(
        "--random-codec",
        type=int,
        action="append",
        metavar="NF",
        help="also a random-weight codec pack with NF encoder filters (default without --quick: 32 16 8)",
    )
    p.add_argument("--no-random-codec", action="store_true", help="no random-weight codec packs")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--clip-s", type=float, help="clip length for the per-stage figures (default 10)")
    p.add_argument("--repeat", type=int, help="timed repeats per figure (best is reported)")
    p.add_argument("--long-s", type=float, help="long-file length in seconds (default 3600; 0 skips)")
    p.add_argument(
        "--long-for", nargs="+", default=[], metavar="NAME", help="subjects that run the long file"
    )
    p.add_argument("--files", type=int, help="short files in the folder workload (default 500; 0 skips)")
    p.add_argument("--live-s", type=float, help="seconds of live stream measured (default 20; 0 skips)")
    p.add_argument("--no-cold-start", action="store_true", help="skip the GUI cold-start measurement")
    p.add_argument("--workdir", type=Path, help="where workloads and temporary packs go")
    p.add_argument("--json", type=Path, help="also write all results as JSON")
    p.add_argument("--markdown", type=Path, help="also write the tables as Markdown")
    p.add_argument("--svg", type=Path, help="also write the scaling plot (SVG)")
    p.add_argument(
        "--batch", action="store_true",
        help="only the batch throughput: single process (today) against the batch path (--workers)",
    )  # fmt: skip
    p.add_argument("--batch-short", nargs=2, type=float, default=[10000, 5.0], metavar=("N", "S"),
                   help="short-clip workload: N files of S seconds (default 10000 × 5 s)")  # fmt: skip
    p.add_argument("--batch-long", nargs=2, type=float, default=[100, 600.0], metavar=("N", "S"),
                   help="long-file workload: N files of S seconds (default 100 × 600 s)")  # fmt: skip
    p.add_argument("--batch-baseline", type=int, default=500, metavar="N",
                   help="short clips the single-process path is timed on (long files: N / 100)")  # fmt: skip
    p.add_argument("--workers", type=int, nargs="+", default=[2], help="batch worker counts to measure")
    p.add_argument("--gui-probe", nargs=2, metavar=("PACK", "FILE"), help=argparse.SUPPRESS)
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------------ subjects
def _subjects(args: argparse.Namespace, workdir: Path) -> list[Any]:
    from models.benchmark.subjects import Subject, random_codec_pack
    from models.packs.pack import load_pack
    from models.packs.teacher_pack import build_teacher_pack
    from models.resources import default_pack_dir

    subjects: list[Subject] = []
    if not args.no_teacher:
        tdir = args.teacher or OFFICIAL_TEACHER
        if (tdir / "mn04_as_mAP_432.pt").is_file():
            pack = workdir / "teacher_pack"
            if not (pack / "manifest.json").is_file():
                build_teacher_pack(tdir, pack)
            subjects.append(Subject("teacher (mel)", pack, "mel"))
        else:
            print(f"encotag bench: no teacher at {tdir}; ratios refer to the first mel pack", file=sys.stderr)
    default = default_pack_dir()
    if not args.no_default and (default / "manifest.json").is_file():
        subjects.append(Subject("default", default, _kind(default)))
    for p in args.pack:
        load_pack(p)  # refuse a broken pack before measuring anything
        subjects.append(Subject(p.name or str(p), p, _kind(p)))
    nfs = args.random_codec if args.random_codec is not None else ([] if args.quick else [32, 16, 8])
    nfs = [] if args.no_random_codec else nfs
    for nf in nfs:
        pack = random_codec_pack(workdir / f"random_nf{nf}", num_filters=nf, lstm_layers=2 if nf >= 16 else 1)
        subjects.append(Subject(f"nf{nf} (random)", pack, "codec"))
    return subjects


def _kind(pack: Path) -> str:
    m = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    return "codec" if m.get("codec") else "mel"


def _config(args: argparse.Namespace) -> Any:
    import dataclasses

    from models.benchmark.runner import BenchConfig

    cfg = BenchConfig.quick(args.threads) if args.quick else BenchConfig(threads=args.threads)
    over = {
        "clip_s": args.clip_s,
        "repeat": args.repeat,
        "long_s": args.long_s,
        "files": args.files,
        "live_s": args.live_s,
    }
    cfg = dataclasses.replace(cfg, **{k: v for k, v in over.items() if v is not None})
    return dataclasses.replace(cfg, long_for=tuple(args.long_for))


# ------------------------------------------------------------------------------------ cold start
def cold_start(pack: Path, audio: Path, timeout_s: float = 180.0) -> dict[str, Any]:
    """Launch the app offscreen on ``audio`` with ``pack``; seconds to window shown and to first tags."""
    with tempfile.TemporaryDirectory(prefix="encotag-bench-home-") as home:
        _copy_onnx_cache(Path(home))  # a later launch, not the first ever (that one exports the encoder)
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ENCOTAG_HOME=home)
        env["ENCOTAG_PROBE_T0"] = repr(time.time())
        cmd = [sys.executable, "-m", "app", "bench", "--gui-probe", str(pack), str(audio)]
        if getattr(sys, "frozen", False):
            cmd = [sys.executable, "bench", "--gui-probe", str(pack), str(audio)]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"error": f"no tags within {timeout_s:g} s"}
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"probe exit {proc.returncode}: {tail}"}


def _copy_onnx_cache(home: Path) -> None:
    """Copy this user's exported ONNX files (encoders, packs) into a fresh ``ENCOTAG_HOME``."""
    import shutil

    from models.codec.ort_encoder import cache_dir

    src = cache_dir()
    if src.is_dir():
        shutil.copytree(src, home / "cache" / "onnx", dirs_exist_ok=True)


def _busy_file(workdir: Path, seconds: float) -> Path:
    """A 44.1 kHz WAV of ``seconds`` of the bench's synthetic signal (made once in ``workdir``)."""
    import soundfile as sf

    from models.benchmark.live import synthetic_signal

    path = workdir / f"gui-{seconds:g}s.wav"
    if not path.exists():
        tmp = path.with_name(path.name + ".tmp.wav")
        sf.write(tmp, synthetic_signal(44100, seconds), 44100, subtype="PCM_16")
        os.replace(tmp, path)
    return path


def gui_probe(pack: str, audio: str, timeout_s: float = 120.0) -> int:
    """In the child: run the real app (``run_gui``) on ``audio`` and print when things happened."""
    t0 = float(os.environ.get("ENCOTAG_PROBE_T0", time.time()))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.application import GuiOptions, run_gui
    from models.benchmark.timing import peak_rss_mb

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    marks: dict[str, float] = {"imports_s": time.time() - t0}

    def first_tags(*_a: Any) -> None:
        if "first_tags_s" not in marks:
            marks["first_tags_s"] = time.time() - t0
            marks["torch_at_first_tags"] = float("torch" in sys.modules)  # 0: the torch-free engine

    def engine_ready(*_a: Any) -> None:
        marks.setdefault("engine_ready_s", time.time() - t0)

    def loop_started() -> None:
        marks["window_s"] = time.time() - t0
        wins = [w for w in app.topLevelWidgets() if hasattr(w, "worker") and hasattr(w, "files")]
        if not wins:
            app.quit()
            return
        win = wins[0]
        win.worker.worker.file_batch.connect(first_tags)
        win.worker.worker.engine_ready.connect(engine_ready)
        timer = QTimer(win)
        last = [time.perf_counter()]

        def check() -> None:
            # the largest gap between turns of this 5 ms timer while the file is processed is the
            # longest the event loop was kept from running (the GUI-responsiveness figure)
            now = time.perf_counter()
            if "first_tags_s" in marks:  # steady state: startup and the first paint are cold start
                gap_ms = (now - last[0]) * 1000
                marks["loop_max_gap_ms"] = max(marks.get("loop_max_gap_ms", 0.0), gap_ms)
            last[0] = now
            done = bool(win.files) and not any(
                v.status.startswith(("queued", "tagging")) for v in win.files.values()
            )
            if ("first_tags_s" in marks and done) or time.time() - t0 > timeout_s:
                timer.stop()
                marks["file_done_s"] = time.time() - t0
                QTimer.singleShot(300, lambda: (win.close(), app.quit()))  # let the last tags paint

        timer.timeout.connect(check)
        timer.start(5)

    QTimer.singleShot(0, loop_started)
    run_gui(GuiOptions(open=(audio,), pack=pack, exit_after=timeout_s + 5))
    marks["peak_rss_mb"] = peak_rss_mb()
    wins = [w for w in app.topLevelWidgets() if hasattr(w, "worker")]
    for key, value in wins[0].worker.worker.load_times.items() if wins else ():
        marks[f"worker_{key}"] = value  # where the time to the engine went
    print(json.dumps(marks), flush=True)
    return 0


# ------------------------------------------------------------------------------------ run
def run_batch_bench(args: argparse.Namespace) -> int:
    """``encotag bench --batch``: the throughput table of :mod:`models.benchmark.throughput`."""
    from models.benchmark.throughput import run_throughput, table

    workdir = args.workdir or Path(tempfile.gettempdir()) / "encotag-bench"
    pack = args.pack[0] if args.pack else None
    say = lambda msg: print(f"encotag bench: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    load = os.getloadavg()
    rows = run_throughput(
        pack, workdir, short=(int(args.batch_short[0]), args.batch_short[1]),
        long=(int(args.batch_long[0]), args.batch_long[1]), workers=args.workers,
        baseline_files=args.batch_baseline, threads=args.threads, say=say,
    )  # fmt: skip
    head = (
        f"batch throughput, pack {pack or 'default'}, {os.cpu_count()} CPUs, load {load[0]:.1f} at the start"
    )
    print(head + "\n\n" + table(rows))
    if args.markdown:
        args.markdown.write_text(head + "\n\n" + table(rows, markdown=True), encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.gui_probe:
        return gui_probe(*args.gui_probe)
    if args.batch:
        return run_batch_bench(args)
    from models.benchmark import report as rep
    from models.benchmark.runner import run_benchmark
    from models.packs.pack import PackError

    workdir = args.workdir or Path(tempfile.gettempdir()) / "encotag-bench"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        subjects = _subjects(args, workdir)
    except (PackError, OSError, ValueError) as exc:
        print(f"encotag bench: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if not subjects:
        print("encotag bench: nothing to measure (no teacher, no default pack, no --pack)", file=sys.stderr)
        return 2
    cfg = _config(args)
    worker = [sys.executable, "-m", "models.benchmark.worker"]

    def say(msg: str) -> None:
        print(f"encotag bench: {msg}", file=sys.stderr, flush=True)

    report = run_benchmark(subjects, cfg, workdir, worker_argv=worker, progress=say)
    if not args.quick and not args.no_cold_start:
        from models.resources import resource_path

        example = resource_path("examples", "example.flac")
        for s, r in zip(subjects, report["results"], strict=True):
            say(f"cold start of the app with {s.name}")
            r["cold_start"] = cold_start(s.path, example)
            say(f"GUI event loop while the app tags a 2-minute file with {s.name}")
            r["gui_loop"] = cold_start(s.path, _busy_file(workdir, 120.0))
    from models.benchmark.backends import backend_table

    backends = backend_table(report)
    text = rep.header(report) + "\n\n" + rep.table(report) + "\n" + (f"\n{backends}\n" if backends else "")
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    if args.markdown:
        md = rep.header(report).replace("\n", "  \n") + "\n\n" + rep.table(report, markdown=True) + "\n\n"
        md += f"{backends}\n\n" if backends else ""
        args.markdown.write_text(md + rep.scaling_table(report), encoding="utf-8")
    if args.svg:
        args.svg.write_text(rep.scaling_svg(report), encoding="utf-8")
    return 1 if any("error" in r for r in report["results"]) else 0
