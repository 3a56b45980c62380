"""Events export and import (app/export.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from app.export import (
    FORMATS,
    ExportError,
    format_events,
    format_from_path,
    parse_events,
    parse_timestamp,
    timestamp,
    write_events,
)
from models.tagging.results import Event

EVENTS = [
    Event("Speech", 0.0, 1.25, 0.9312),
    Event("Music", 1.0, 3661.5, 0.5),
    Event("Dog, bark", 12.004, 13.999, 0.71),  # a comma in the label
    Event("Bell (?)", 5.5, 6.0, 0.333),  # parentheses in the label
]


def test_timestamps() -> None:
    assert timestamp(1.25) == "00:00:01,250"
    assert timestamp(1.25, ".") == "00:00:01.250"
    assert timestamp(3661.5) == "01:01:01,500"
    assert timestamp(59.9996) == "00:01:00,000"
    assert timestamp(-1) == "00:00:00,000"
    assert parse_timestamp("01:01:01,500") == 3661.5
    assert parse_timestamp("02:03.040") == 123.04
    with pytest.raises(ExportError):
        parse_timestamp("1.5")


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(fmt: str, tmp_path: Path) -> None:
    path = write_events(EVENTS, tmp_path / f"ev.{fmt}", fmt)
    back = parse_events(path.read_text(encoding="utf-8"), fmt)
    assert [e.label for e in back] == [e.label for e in EVENTS]
    for a, b in zip(back, EVENTS, strict=True):
        assert a.start == pytest.approx(b.start, abs=1e-3)
        assert a.end == pytest.approx(b.end, abs=1e-3)
        if fmt == "audacity":
            assert math.isnan(a.score)  # Audacity labels carry no score
        else:
            assert a.score == pytest.approx(b.score, abs=0.005 if fmt in ("srt", "vtt") else 1e-4)
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_exact_text_of_each_format() -> None:
    ev = [Event("Speech", 1.25, 2.0, 0.9312)]
    assert format_events(ev, "csv") == "label,start,end,score\nSpeech,1.250,2.000,0.9312\n"
    rows = json.loads(format_events(ev, "json"))
    assert rows == [{"label": "Speech", "start": 1.25, "end": 2.0, "score": 0.9312}]
    assert format_events(ev, "audacity") == "1.250000\t2.000000\tSpeech\n"
    assert format_events(ev, "srt") == "1\n00:00:01,250 --> 00:00:02,000\nSpeech (0.93)\n"
    assert format_events(ev, "vtt") == "WEBVTT\n\n00:00:01.250 --> 00:00:02.000\nSpeech (0.93)\n"
    assert "Speech" in format_events(ev, "table")
    assert format_events([], "table") == "(no events)\n"
    assert format_events([], "csv") == "label,start,end,score\n"


def test_parse_foreign_files() -> None:
    audacity = "0.5\t1.5\tDog\n\\\t100.0\t2000.0\n2.0\t2.0\tclick\n"
    assert [(e.label, e.start, e.end) for e in parse_events(audacity, "audacity")] == [
        ("Dog", 0.5, 1.5),
        ("click", 2.0, 2.0),
    ]
    vtt = "WEBVTT - made elsewhere\n\nintro\n00:01.000 --> 00:02.500 align:start\nHello\nworld\n"
    (cue,) = parse_events(vtt, "vtt")
    assert (cue.label, cue.start, cue.end) == ("Hello world", 1.0, 2.5) and math.isnan(cue.score)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [("x,y\n1,2\n", "csv"), ("label,start,end\nA,zero,1\n", "csv"), ("{not json", "json"),
     ('[{"label": "A"}]', "json"), ("a\tb\tc\n", "audacity"), ("00:00:01.000 --> 00:00:02.000\nA\n", "vtt")],
)  # fmt: skip
def test_parse_errors(text: str, fmt: str) -> None:
    with pytest.raises(ExportError):
        parse_events(text, fmt)


def test_unknown_format_and_suffix() -> None:
    with pytest.raises(ValueError):
        format_events(EVENTS, "xml")
    assert format_from_path("a/b.SRT") == "srt"
    assert format_from_path("labels.txt") == "audacity"
    assert format_from_path("x.wav") is None


def test_raven_selection_table() -> None:
    """Raven Pro reads tab-separated selection tables; what we write parses back, and so does a table
    written by Raven itself (a selection per view) or by BirdNET (Common Name, Confidence)."""
    ev = [Event("Bird vocalization, bird call, bird song", 1.25, 2.0, 0.9312), Event("Dog", 3.0, 4.5, 0.5)]
    text = format_events(ev, "raven")
    lines = text.splitlines()
    assert lines[0].split("\t") == [
        "Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
        "High Freq (Hz)", "Annotation", "Score",
    ]  # fmt: skip
    assert lines[1].split("\t") == [
        "1", "Spectrogram 1", "1", "1.250000", "2.000000", "0.0", "16000.0",
        "Bird vocalization, bird call, bird song", "0.9312",
    ]  # fmt: skip
    assert parse_events(text, "raven") == ev
    raven = (
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tAnnotation\n"
        "1\tWaveform 1\t1\t0.5\t1.5\t0\t8000\tOwl\n"
        "1\tSpectrogram 1\t1\t0.5\t1.5\t0\t8000\tOwl\n"
        "2\tSpectrogram 1\t1\t2\t3\t100\t900\t\n"
    )
    back = parse_events(raven, "raven")
    assert [(e.label, e.start, e.end) for e in back] == [("Owl", 0.5, 1.5), ("", 2.0, 3.0)]
    assert all(math.isnan(e.score) for e in back)
    birdnet = "Selection\tBegin Time (s)\tEnd Time (s)\tCommon Name\tConfidence\n7\t3.0\t6.0\tRobin\t0.81\n"
    assert parse_events(birdnet, "raven") == [Event("Robin", 3.0, 6.0, 0.81)]
    with pytest.raises(ExportError):
        parse_events("Selection\tLabel\n1\tx\n", "raven")
    with pytest.raises(ExportError):
        parse_events("Begin Time (s)\tEnd Time (s)\nzero\t1\n", "raven")
    assert format_from_path("site.Table.1.selections.txt") == "raven"
