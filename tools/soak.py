#!/usr/bin/env python3
"""Soak test of the live pipeline (not part of CI): a synthetic real-time stream for a long time.

A looped synthetic 48 kHz signal is fed block by block in real time into ``StreamTagger`` (the same
ring buffer and worker polling the app uses) for ``--minutes``; every ``--interval`` seconds one row
is recorded: resident memory (RSS), latency from a sample entering the ring buffer to its tags
(p50 / p95 / max), compute per hop and input dropped because the worker fell behind. Rows are appended
to ``--out`` (JSON lines) as they come; the end prints a Markdown table and the growth verdict
(RSS slope after the warm-up, by least squares).

    nice -n 19 python tools/soak.py --minutes 30 --out soak.jsonl
    python tools/soak.py --pack resources/packs/default --minutes 60

Without ``--pack`` it uses the default pack, or (``--random-codec NF``) a random-weight codec pack
with NF encoder filters (timing and memory only; the tags mean nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def slope_per_hour(ts: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``ts`` (seconds), per hour; 0 for fewer than two points."""
    n = len(ts)
    if n < 2:
        return 0.0
    mt, my = sum(ts) / n, sum(ys) / n
    var = sum((t - mt) ** 2 for t in ts)
    return 3600.0 * sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / var if var else 0.0


def markdown(path: Path, every_min: float = 5.0) -> str:
    """A Markdown table of a soak log (``--out`` file): one row per ``every_min`` minutes + the summary."""
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    rows = [r for r in lines if "t_min" in r]
    meta = next((r["meta"] for r in lines if "meta" in r), {})
    summary = next((r["summary"] for r in lines if "summary" in r), None)
    out = [
        f"{meta.get('pack', '?')}, {meta.get('threads', '?')} torch thread(s), "
        f"started {meta.get('start_utc', '?')}",
        "",
        "| minute | RSS MB | latency p50 ms | latency p95 ms | compute/hop p50 ms | compute/hop p95 ms "
        "| results | input dropped s | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    next_t = 0.0
    for i, r in enumerate(rows):
        if r["t_min"] + 1e-9 >= next_t or i == len(rows) - 1:
            out.append(
                f"| {r['t_min']:.1f} | {r['rss_mb']:.1f} | {r['latency_p50_ms']:.1f} "
                f"| {r['latency_p95_ms']:.1f} | {r['compute_p50_ms']:.1f} | {r['compute_p95_ms']:.1f} "
                f"| {r['results']} | {r['skipped_s']:.1f} | {r.get('load1', float('nan')):.1f} |"
            )
            next_t = r["t_min"] + every_min
    if summary:
        out += ["", "summary: " + ", ".join(f"{k} {v}" for k, v in summary.items())]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--interval", type=float, default=30.0, help="seconds per recorded row")
    p.add_argument("--pack", type=Path, help="pack folder (default: the shipped pack)")
    p.add_argument("--random-codec", type=int, metavar="NF", help="use a random codec pack with NF filters")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup-min", type=float, default=2.0, help="minutes excluded from the growth fit")
    p.add_argument("--out", type=Path, default=Path("soak.jsonl"))
    p.add_argument("--markdown", type=Path, metavar="LOG", help="print a Markdown table of LOG and exit")
    args = p.parse_args(argv)
    if args.markdown:
        print(markdown(args.markdown), end="")
        return 0

    import torch

    torch.set_num_threads(args.threads)
    from models.benchmark.live import LiveProbe, synthetic_signal
    from models.benchmark.subjects import random_codec_pack
    from models.benchmark.timing import load_average, rss_mb
    from models.tagging.engine import Engine

    pack = args.pack
    if args.random_codec:
        pack = random_codec_pack(
            Path(tempfile.gettempdir()) / f"encotag_bench_nf{args.random_codec}",
            num_filters=args.random_codec,
            lstm_layers=1 if args.random_codec <= 8 else 2,
        )
    engine = Engine.load(pack)
    probe = LiveProbe(engine, synthetic_signal(48000, 20.0), 48000)
    meta = {
        "pack": engine.info.name,
        "threads": args.threads,
        "window_s": engine.window.window_s,
        "hop_s": engine.window.hop_s,
        "start_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_average": load_average(),
        "rss_start_mb": rss_mb(),
    }
    rows: list[dict[str, float]] = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"meta": meta}) + "\n")
        fh.flush()
        probe.start()
        t0 = time.perf_counter()
        try:
            while time.perf_counter() - t0 < args.minutes * 60:
                stats = probe.measure(args.interval)
                row = {"t_min": round((time.perf_counter() - t0) / 60, 3), **stats.summary()}
                la = load_average()
                row["load1"] = la[0] if la else float("nan")
                rows.append(row)
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                print(
                    f"{row['t_min']:7.2f} min  RSS {row['rss_mb']:7.1f} MB"
                    f"  latency p50 {row['latency_p50_ms']:7.1f} p95 {row['latency_p95_ms']:7.1f} ms"
                    f"  compute p50 {row['compute_p50_ms']:6.1f} ms"
                    f"  results {row['results']:4d}  skipped {row['skipped_s']:5.1f} s",
                    flush=True,
                )
        except KeyboardInterrupt:
            print("interrupted: summarising what was recorded", file=sys.stderr)
        finally:
            probe.stop()
        steady = [r for r in rows if r["t_min"] >= args.warmup_min] or rows
        ts = [60 * r["t_min"] for r in steady]
        summary = {
            "summary": {
                "minutes": rows[-1]["t_min"] if rows else 0.0,
                "rss_first_mb": steady[0]["rss_mb"] if steady else float("nan"),
                "rss_last_mb": steady[-1]["rss_mb"] if steady else float("nan"),
                "rss_max_mb": max((r["rss_mb"] for r in rows), default=float("nan")),
                "rss_slope_mb_per_h": round(slope_per_hour(ts, [r["rss_mb"] for r in steady]), 2),
                "latency_p50_slope_ms_per_h": round(
                    slope_per_hour(ts, [r["latency_p50_ms"] for r in steady]), 2
                ),
                "results": sum(int(r["results"]) for r in rows),
                "skipped_s": round(sum(r["skipped_s"] for r in rows), 2),
            }
        }
        fh.write(json.dumps(summary) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
