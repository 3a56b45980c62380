"""Format benchmark results: a plain-text / Markdown table with ratios to the teacher, and an SVG plot.

Real-time factors (RTF) are audio seconds per compute second (higher is faster). Each subject column
shows its figure and, in brackets, the ratio to the **reference** subject (the teacher's mel pipeline):
for RTF and files/s the ratio is subject / reference (> 1: faster), for milliseconds and megabytes it
is subject / reference as well (> 1: more time or memory).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Getter = Callable[[dict[str, Any]], float | None]


def _stage(name: str, key: str = "rtf") -> Getter:
    def get(r: dict[str, Any]) -> float | None:
        for row in r.get("stages", []):
            if row["stage"] == name:
                return float(row[key])
        return None

    return get


def _frontend(r: dict[str, Any]) -> float | None:
    return _stage("encoder")(r) or _stage("log-mel")(r)


def _get(*keys: str) -> Getter:
    def get(r: dict[str, Any]) -> float | None:
        v: Any = r
        for k in keys:
            if not isinstance(v, dict) or k not in v:
                return None
            v = v[k]
        return None if v is None else float(v)

    return get


# (label, getter, unit): unit "x" = RTF (higher better), "ms", "MB", "s", "/s"
ROWS: list[tuple[str, Getter, str]] = [
    ("decode (44.1 kHz WAV)", _stage("decode"), "x"),
    ("resample (soxr HQ)", _stage("resample"), "x"),
    ("front end: codec encoder / log-mel", _frontend, "x"),
    ("RVQ encode + unembed", _stage("rvq"), "x"),
    ("tagger (MobileNetV3)", _stage("tagger"), "x"),
    ("  tagger before BN folding + channels-last", _stage("tagger_unfused"), "x"),
    ("heads (logreg on window embeddings)", _stage("heads"), "x"),
    ("clip: Engine.infer, one window", _stage("clip"), "x"),
    ("file: encotag tag path (1 s / 0.25 s windows)", _stage("file"), "x"),
    ("  file before encode-once (each window encoded)", _stage("file_per_window"), "x"),
    ("from codes: clip (.ecodes → tags)", _stage("codes_clip"), "x"),
    ("from codes: file windows (.ecodes → tags)", _stage("codes_file"), "x"),
    ("long file (streamed)", _get("long_file", "rtf"), "x"),
    ("long file: RSS added by the pass", lambda r: _delta(r), "MB="),
    ("folder of short files", _get("folder", "files_per_s"), "/s"),
    ("folder of short files", _get("folder", "rtf"), "x"),
    ("  folder, file by file (no decode-ahead, no groups)", _get("folder_one_by_one", "files_per_s"), "/s"),
    ("live: compute per hop p50", _get("live", "compute_p50_ms"), "ms"),
    ("live: compute per hop p95", _get("live", "compute_p95_ms"), "ms"),
    ("live: sample → tags latency p50", _get("live", "latency_p50_ms"), "ms"),
    ("live: sample → tags latency p95", _get("live", "latency_p95_ms"), "ms"),
    ("torch-free ONNX engine: clip, one window", _get("onnx_engine", "clip", "rtf"), "x"),
    ("torch-free ONNX engine: file path", _get("onnx_engine", "file", "rtf"), "x"),
    ("torch-free ONNX engine: folder of short files", _get("onnx_engine", "folder", "files_per_s"), "/s"),
    ("torch-free ONNX engine: live compute per hop p50", _get("onnx_engine", "live", "compute_p50_ms"), "ms"),
    ("torch-free ONNX engine: live compute per hop p95", _get("onnx_engine", "live", "compute_p95_ms"), "ms"),
    ("import torch + engine modules", _get("import_s"), "s"),
    ("pack load", _get("load_s"), "s"),
    ("peak RSS, engine process, tagging paths", _get("peak_rss_tagging_mb"), "MB"),
    ("peak RSS, engine process, incl. 60 s clips in one piece", _get("peak_rss_mb"), "MB"),
    ("app cold start → window shown", _get("cold_start", "window_s"), "s"),
    ("app cold start → first tags", _get("cold_start", "first_tags_s"), "s"),
    ("peak RSS with the GUI", _get("cold_start", "peak_rss_mb"), "MB"),
    ("GUI: longest event-loop stall, tagging a 2-min file", _get("gui_loop", "loop_max_gap_ms"), "ms"),
]


def _delta(r: dict[str, Any]) -> float | None:
    lf = r.get("long_file")
    if not lf:
        return None
    return float(lf["rss_after_mb"]) - float(lf["rss_before_mb"])


def fmt_value(v: float | None, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if unit == "x":
        return f"{v:,.0f}×" if v >= 100 else f"{v:.1f}×"
    if unit == "/s":
        return f"{v:.1f} files/s"
    if unit == "ms":
        return f"{v:.1f} ms"
    if unit in ("MB", "MB="):
        return f"{v:.0f} MB"
    return f"{v:.2f} s"


def _ratio(v: float | None, ref: float | None) -> str:
    if v is None or ref is None or ref == 0 or math.isnan(v) or math.isnan(ref):
        return ""
    return f" ({v / ref:.2f})"


def reference_index(results: list[dict[str, Any]]) -> int | None:
    """The teacher / first mel subject: the column ratios refer to."""
    for i, r in enumerate(results):
        if r.get("subject", {}).get("kind") == "mel" and "error" not in r:
            return i
    return None


def table(report: dict[str, Any], markdown: bool = False) -> str:
    """The results as a table (one column per subject, ratios to the reference in brackets)."""
    results: list[dict[str, Any]] = report["results"]
    ref_i = reference_index(results)
    ref = results[ref_i] if ref_i is not None else None
    heads = ["measurement"] + [r["subject"]["name"] for r in results]
    lines: list[list[str]] = []
    for label, get, unit in ROWS:
        vals = [None if "error" in r else get(r) for r in results]
        if all(v is None for v in vals):
            continue
        ref_v = get(ref) if ref is not None else None
        cells = [
            fmt_value(v, unit) + ("" if i == ref_i or unit.endswith("=") else _ratio(v, ref_v))
            for i, v in enumerate(vals)
        ]
        lines.append([label, *cells])
    errors = [f"{r['subject']['name']}: {r['error']}" for r in results if "error" in r]
    if markdown:
        out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in lines]
    else:
        widths = [max(len(row[i]) for row in [heads, *lines]) for i in range(len(heads))]
        out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))]
        out.append("  ".join("-" * w for w in widths))
        out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
    out += [f"error: {e}" for e in errors]
    return "\n".join(out)


def header(report: dict[str, Any]) -> str:
    m = report["machine"]
    la = m.get("load_average")
    la_end = m.get("load_average_end")
    load = " ".join(f"{x:.2f}" for x in la) if la else "n/a"
    load_end = " ".join(f"{x:.2f}" for x in la_end) if la_end else "n/a"
    cfg = report["config"]
    onnx_threads = next(
        (r["onnx_engine_threads"] for r in report["results"] if r.get("onnx_engine_threads")), 0
    )
    picked = ", ".join(
        f"{r['subject']['name']}: {r['encoder_backend']}"
        for r in report["results"]
        if r.get("encoder_backend")
    )
    return (
        (f"codec encoder backend picked by the engine: {picked}\n" if picked else "")
        + f"encotag bench, {m['date_utc']}: {m['cpu']} ({m['cores']} cores), torch {m['torch']} with "
        f"{m['threads']} threads, Python {m['python']}\n"
        f"load average (1/5/15 min) at start {load}, at end {load_end}\n"
        f"clip {cfg['clip_s']:g} s, batch 1, best of {cfg['repeat']}; "
        "RTF = audio seconds per compute second; (ratio) = this column / the teacher's mel pipeline"
        + (
            f"\ntorch-free ONNX engine rows: {onnx_threads} thread(s), as the app's inference worker"
            if onnx_threads
            else ""
        )
    )


def scaling_table(report: dict[str, Any]) -> str:
    """Markdown: ms per item vs clip length (batch 1) and vs batch size (1 s windows), per subject."""
    results = [r for r in report["results"] if "error" not in r]
    if not results:
        return ""
    out = []
    for kind, label, unit in (
        ("length", "clip length (s)", "ms per clip"),
        ("batch", "batch size", "ms per window"),
    ):
        keys = sorted(
            {
                row["length_s" if kind == "length" else "batch"]
                for r in results
                for row in r["scaling"]
                if row["stage"] == kind
            }
        )
        out.append(f"| {label} | " + " | ".join(f"{k:g}" for k in keys) + " |")
        out.append("|---" * (len(keys) + 1) + "|")
        for r in results:
            by = {
                row["length_s" if kind == "length" else "batch"]: row
                for row in r["scaling"]
                if row["stage"] == kind
            }
            cells = [f"{by[k]['ms_per_item']:.1f}" if k in by else "–" for k in keys]
            out.append(f"| {r['subject']['name']} ({unit}) | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def scaling_svg(report: dict[str, Any], width: int = 720, height: int = 300) -> str:
    """Two small log-log panels as SVG: ms per clip vs clip length, ms per window vs batch size."""
    results = [r for r in report["results"] if "error" not in r]
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    pw, ph, ml, mt = width / 2 - 60, height - 80, 55, 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    for p, (kind, xlab, ylab) in enumerate(
        (("length", "clip length (s)", "ms per clip"), ("batch", "batch size (1 s windows)", "ms per window"))
    ):
        x0 = ml + p * width / 2
        pts = {
            r["subject"]["name"]: [
                (row["length_s"] if kind == "length" else row["batch"], row["ms_per_item"])
                for row in r["scaling"]
                if row["stage"] == kind
            ]
            for r in results
        }
        xs = [x for v in pts.values() for x, _ in v]
        ys = [y for v in pts.values() for _, y in v if y > 0]
        if not xs or not ys:
            continue
        lx0, lx1 = math.log10(min(xs)), math.log10(max(xs)) + 1e-9
        ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)) + 1e-9)

        def sx(x: float, lx0: float = lx0, lx1: float = lx1, x0: float = x0) -> float:
            return x0 + pw * (math.log10(x) - lx0) / max(lx1 - lx0, 1e-9)

        def sy(y: float, ly0: float = ly0, ly1: float = ly1) -> float:
            return mt + ph - ph * (math.log10(max(y, 1e-9)) - ly0) / max(ly1 - ly0, 1e-9)

        parts.append(f'<rect x="{x0}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
        for e in range(int(ly0), int(ly1) + 1):
            y = sy(10.0**e)
            parts.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{x0 - 5}" y="{y + 4:.1f}" text-anchor="end">{10.0**e:g}</text>')
        for x in sorted(set(xs)):
            parts.append(f'<text x="{sx(x):.1f}" y="{mt + ph + 14}" text-anchor="middle">{x:g}</text>')
        parts.append(f'<text x="{x0 + pw / 2}" y="{mt + ph + 30}" text-anchor="middle">{xlab}</text>')
        parts.append(f'<text x="{x0}" y="{mt - 10}">{ylab} (log-log)</text>')
        for i, (name, v) in enumerate(pts.items()):
            c = colours[i % len(colours)]
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(v))
            parts.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
            if p == 0:
                parts.append(f'<text x="{x0 + 8}" y="{mt + 14 + 13 * i}" fill="{c}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
