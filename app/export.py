"""Events ↔ text: csv, json, Audacity labels, SubRip (SRT), WebVTT (and a plain table for people).

- csv: header ``label,start,end,score``; times in seconds (3 decimals), score 4 decimals.
- json: a list of ``{"label", "start", "end", "score"}`` objects.
- audacity: Audacity's label track format, ``start<TAB>end<TAB>label`` per line (no score; parsed events
  get score NaN, i.e. unknown).
- srt / vtt: one cue per event, text ``label (score)``; SRT times ``00:00:01,250``, VTT ``00:00:01.250``.
- raven: a Raven Pro selection table (tab-separated, ``*.selections.txt``): ``Selection``, ``View``,
  ``Channel``, ``Begin Time (s)``, ``End Time (s)``, ``Low Freq (Hz)``, ``High Freq (Hz)``,
  ``Annotation`` (the label), ``Score``; one row per event with View ``Spectrogram 1``, channel 1 and the
  whole band (0 to :data:`RAVEN_HIGH_HZ`), as BirdNET writes them. Parsing accepts any Raven table with
  begin/end times (Annotation, else Label/Common Name/Class for the label; Score/Confidence if present)
  and reads each selection once (Raven lists a selection once per view).

Qt-free. :func:`write_events` writes atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

from models.atomic import atomic_write_text
from models.tagging.results import Event

FORMATS = ("csv", "json", "audacity", "srt", "vtt", "raven")
RAVEN_HIGH_HZ = 16000.0
RAVEN_COLUMNS = ("Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                 "High Freq (Hz)", "Annotation", "Score")  # fmt: skip
EXTENSIONS = {
    "raven": ".selections.txt",
    "csv": ".csv",
    "json": ".json",
    "audacity": ".txt",
    "srt": ".srt",
    "vtt": ".vtt",
    "table": ".txt",
}

_TS_RE = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{3})")
_CUE_RE = re.compile(rf"({_TS_RE.pattern})\s*-->\s*({_TS_RE.pattern})")
_SCORE_RE = re.compile(r"^(.*\S)\s+\((\d+(?:\.\d+)?)\)$")


class ExportError(ValueError):
    """Text that cannot be parsed in the stated format (message names the line)."""


def timestamp(seconds: float, sep: str = ",") -> str:
    """``HH:MM:SS<sep>mmm`` (SRT uses ``,``, WebVTT ``.``); negative times clamp to 0."""
    ms = max(0, int(round(seconds * 1000)))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def parse_timestamp(text: str) -> float:
    """Seconds from ``[HH:]MM:SS,mmm`` or ``[HH:]MM:SS.mmm``."""
    m = _TS_RE.fullmatch(text.strip())
    if not m:
        raise ExportError(f"not a timestamp: {text!r}")
    h, mi, s, ms = (int(g) if g else 0 for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def _cue_text(ev: Event) -> str:
    return ev.label if math.isnan(ev.score) else f"{ev.label} ({ev.score:.2f})"


def _split_cue_text(text: str) -> tuple[str, float]:
    m = _SCORE_RE.match(text.strip())
    return (m.group(1), float(m.group(2))) if m else (text.strip(), math.nan)


def format_events(events: Sequence[Event], fmt: str) -> str:
    """``events`` as text in ``fmt`` (one of :data:`FORMATS` or ``"table"``)."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["label", "start", "end", "score"])
        for ev in events:
            w.writerow([ev.label, f"{ev.start:.3f}", f"{ev.end:.3f}", f"{ev.score:.4f}"])
        return buf.getvalue()
    if fmt == "json":
        rows = [
            {
                "label": ev.label,
                "start": round(ev.start, 3),
                "end": round(ev.end, 3),
                "score": None if math.isnan(ev.score) else round(ev.score, 4),
            }
            for ev in events
        ]
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "audacity":
        return "".join(f"{ev.start:.6f}\t{ev.end:.6f}\t{ev.label}\n" for ev in events)
    if fmt in ("srt", "vtt"):
        sep = "," if fmt == "srt" else "."
        cues = []
        for i, ev in enumerate(events, 1):
            head = f"{i}\n" if fmt == "srt" else ""
            cues.append(f"{head}{timestamp(ev.start, sep)} --> {timestamp(ev.end, sep)}\n{_cue_text(ev)}\n")
        body = "\n".join(cues)
        return body if fmt == "srt" else "WEBVTT\n\n" + body
    if fmt == "raven":
        lines = ["\t".join(RAVEN_COLUMNS)]
        for i, ev in enumerate(events, 1):
            label = " ".join(ev.label.split())  # no tabs or newlines inside a cell
            score = "" if math.isnan(ev.score) else f"{ev.score:.4f}"
            lines.append(f"{i}\tSpectrogram 1\t1\t{ev.start:.6f}\t{ev.end:.6f}\t0.0\t{RAVEN_HIGH_HZ:.1f}\t"
                        f"{label}\t{score}")  # fmt: skip
        return "\n".join(lines) + "\n"
    if fmt == "table":
        if not events:
            return "(no events)\n"
        width = max(len(ev.label) for ev in events)
        return "".join(
            f"{ev.start:9.2f} – {ev.end:9.2f} s  {ev.label:<{width}}  {ev.score:.2f}\n" for ev in events
        )
    raise ValueError(f"unknown events format {fmt!r} (choose from {', '.join((*FORMATS, 'table'))})")


def _parse_cues(text: str, fmt: str) -> list[Event]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if fmt == "vtt":
        if not lines or not lines[0].lstrip("\ufeff").startswith("WEBVTT"):
            raise ExportError("WebVTT text must start with 'WEBVTT'")
    events: list[Event] = []
    i = 0
    while i < len(lines):
        m = _CUE_RE.search(lines[i])
        if not m:
            i += 1
            continue
        start = parse_timestamp(m.group(1))
        end = parse_timestamp(m.group(6))
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip():
            body.append(lines[i].strip())
            i += 1
        label, score = _split_cue_text(" ".join(body))
        events.append(Event(label=label, start=start, end=end, score=score))
    return events


def _parse_raven(text: str) -> list[Event]:
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        return []
    head = [h.strip() for h in lines[0].lstrip("\ufeff").split("\t")]
    col = {name: i for i, name in enumerate(head)}
    if "Begin Time (s)" not in col or "End Time (s)" not in col:
        raise ExportError("a Raven selection table needs 'Begin Time (s)' and 'End Time (s)' columns")
    label_col = next((col[c] for c in ("Annotation", "Label", "Common Name", "Class") if c in col), None)
    score_col = next((col[c] for c in ("Score", "Confidence") if c in col), None)
    out, seen = [], set()
    for n, line in enumerate(lines[1:], 2):
        cells = line.split("\t")
        cells += [""] * (len(head) - len(cells))
        sel = cells[col["Selection"]] if "Selection" in col else str(n)
        if sel in seen:  # the same selection in another view
            continue
        seen.add(sel)
        try:
            start, end = float(cells[col["Begin Time (s)"]]), float(cells[col["End Time (s)"]])
            raw = cells[score_col].strip() if score_col is not None else ""
            score = float(raw) if raw else math.nan
        except ValueError:
            raise ExportError(f"raven selection table line {n}: times and score must be numbers") from None
        out.append(Event(cells[label_col].strip() if label_col is not None else "", start, end, score))
    return out


def parse_events(text: str, fmt: str) -> list[Event]:
    """Events read back from text written by :func:`format_events` (or by Audacity / subtitle tools)."""
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or not {"label", "start", "end"} <= set(reader.fieldnames):
            raise ExportError("csv needs a header with label,start,end[,score]")
        out = []
        for n, row in enumerate(reader, 2):
            try:
                score = float(row["score"]) if row.get("score") not in (None, "") else math.nan
                out.append(Event(row["label"], float(row["start"]), float(row["end"]), score))
            except (TypeError, ValueError) as exc:
                raise ExportError(f"csv line {n}: {exc}") from None
        return out
    if fmt == "json":
        try:
            rows = json.loads(text)
            return [
                Event(
                    str(r["label"]),
                    float(r["start"]),
                    float(r["end"]),
                    math.nan if r.get("score") is None else float(r["score"]),
                )
                for r in rows
            ]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ExportError(f"json events: {exc}") from None
    if fmt == "audacity":
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("\\"):  # "\" lines hold Audacity's frequency ranges
                continue
            parts = line.split("\t")
            try:
                start, end = float(parts[0]), float(parts[1]) if len(parts) > 1 else float(parts[0])
            except ValueError:
                raise ExportError(f"audacity labels line {n}: expected start<TAB>end<TAB>label") from None
            out.append(Event(parts[2] if len(parts) > 2 else "", start, end, math.nan))
        return out
    if fmt in ("srt", "vtt"):
        return _parse_cues(text, fmt)
    if fmt == "raven":
        return _parse_raven(text)
    raise ValueError(f"cannot parse events format {fmt!r} (choose from {', '.join(FORMATS)})")


def write_events(events: Sequence[Event], path: str | os.PathLike[str], fmt: str) -> Path:
    """Write ``events`` to ``path`` in ``fmt`` atomically; returns the path."""
    return atomic_write_text(path, format_events(events, fmt))


def format_from_path(path: str | os.PathLike[str]) -> str | None:
    """The events format implied by a file name (``.csv`` → csv, ``.srt`` → srt, …), or None."""
    if Path(path).name.lower().endswith(".selections.txt"):
        return "raven"
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".json": "json", ".srt": "srt", ".vtt": "vtt", ".txt": "audacity"}.get(suffix)


def with_extension(path: str | os.PathLike[str], fmt: str) -> Path:
    """``path`` with ``fmt``'s extension added when its name has no events extension ("events" →
    "events.csv"; "a.srt" stays as it is)."""
    p = Path(path)
    if format_from_path(p) is not None or not p.name:
        return p
    return p.with_name(p.name + EXTENSIONS[fmt])
