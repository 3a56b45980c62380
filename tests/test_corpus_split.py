"""A held-out recording in every source, and no training mixture made of held-out recordings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from app.cli import main
from models.training.corpus_split import cover_every_source, files_of


def _row(clip: str, source: str, split: str, unit: str, file: str, origin: str = "repo@1") -> dict[str, str]:
    params = {"unit": unit, "file": file, "offset_s": 0.0}
    row = {"clip": clip, "source": source, "origin": origin, "domain": "environment", "licence": "CC0-1.0"}
    return row | {"duration": "10.0", "split": split, "params": json.dumps(params)}


def _mix(clip: str, bg: str, fg: list[str], split: str = "train") -> dict[str, str]:
    params = {"unit": clip, "bg": {"file": bg, "source": "amb"}, "fg": {"files": fg, "source": "ev"}}
    row = {"clip": clip, "source": "mix-real-events", "origin": "mixture", "domain": "environment"}
    return row | {"licence": "CC0-1.0", "duration": "10.0", "split": split, "params": json.dumps(params)}


def _rows() -> list[dict[str, str]]:
    rows = []
    for u in ("a", "b", "c"):  # a source of three recordings, none held out, each with an augmented copy
        rows.append(_row(f"clips/ev/{u}_00.flac", "ev", "train", f"{u}-1", f"/s/ev/{u}.wav"))
        rows.append(_row(f"clips/ev+aug/{u}_00.flac", "ev+aug", "train", f"{u}-1~a1", f"/s/ev/{u}.wav"))
    rows.append(_row("clips/amb/x_00.flac", "amb", "train", "x-1", "/s/amb/x.wav"))
    rows.append(_row("clips/amb/y_00.flac", "amb", "val", "y-1", "/s/amb/y.wav"))  # already has one
    rows.append(_row("clips/one/z_00.flac", "one", "train", "z-1", "/s/one/z.wav"))  # a single recording
    rows += [_mix(f"clips/mix/{u}.flac", "/s/amb/x.wav", [f"/s/ev/{u}.wav"]) for u in ("a", "b", "c")]
    rows.append(_mix("clips/mix/y.flac", "/s/amb/y.wav", ["/s/ev/a.wav"]))  # a held-out ambience
    return rows


def test_every_source_gets_a_held_out_recording_and_leaking_mixtures_go() -> None:
    rows = _rows()
    new, info = cover_every_source(rows)
    assert set(info["moved"]) == {"ev"}  # amb has one, "one" has a single recording
    uid = info["moved"]["ev"].split("-")[0]
    held = {r["clip"] for r in new if r["split"] == "val"}
    # the recording and its augmented copy move together
    assert held == {f"clips/ev/{uid}_00.flac", f"clips/ev+aug/{uid}_00.flac", "clips/amb/y_00.flac"}
    # mixtures holding the moved recording or the held-out ambience are left out; the rest stay
    kept_mix = {r["clip"] for r in new if r["origin"] == "mixture"}
    assert kept_mix == {f"clips/mix/{u}.flac" for u in "abc" if u != uid}
    assert info["mixtures_left_out"] == 2
    held_files = set().union(*(files_of(r) for r in new if r["split"] == "val"))
    assert not any(files_of(r) & held_files for r in new if r["split"] == "train")
    # deterministic and idempotent; the input is not modified
    again, info2 = cover_every_source(new)
    assert again == new and info2 == {"moved": {}, "mixtures_left_out": 0}
    assert cover_every_source(_rows())[0] == new and rows == _rows()


def test_resplit_command_rewrites_the_manifest_and_drops_stale_teacher_cache(tmp_path: Path) -> None:
    rows = _rows()
    with open(tmp_path / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cache = tmp_path / "teacher_segments" / "clips"
    for r in rows:
        p = tmp_path / "teacher_segments" / (r["clip"] + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.zeros((6, 527), np.float16))
    assert main(["corpus", "resplit", str(tmp_path)]) == 0
    with open(tmp_path / "manifest.csv", newline="", encoding="utf-8") as fh:
        now = list(csv.DictReader(fh))
    assert now == cover_every_source(rows)[0]
    moved = {r["clip"] for r in now if r["split"] == "val"} - {"clips/amb/y_00.flac"}
    assert len(moved) == 2 and cache.is_dir()
    for r in now:  # moved clips lost their cache entry (held-out clips cache whole-clip logits)
        assert (tmp_path / "teacher_segments" / (r["clip"] + ".npy")).exists() == (r["clip"] not in moved)
    (tmp_path / "manifest.csv").write_text("not,a\nmanifest,at all\n", encoding="utf-8")
    assert main(["corpus", "resplit", str(tmp_path)]) == 2


def test_a_held_out_recording_stays_held_out_when_the_corpus_grows() -> None:
    """Growing a corpus can draw a new recording of a covered source for ``val``; the recording the cover
    rule held out before must not go back into training (its teacher cache and any model scored on it
    assume it is held out)."""
    first, info = cover_every_source(_rows())
    uid = info["moved"]["ev"].split("-")[0]
    grown = _rows() + [_row("clips/ev/d_00.flac", "ev", "val", "d-1", "/s/ev/d.wav")]  # drawn for val
    assert {
        r["clip"] for r in cover_every_source(grown)[0] if r["split"] == "val" and r["source"] == "ev"
    } == {
        "clips/ev/d_00.flac"
    }  # without the previous manifest the cover rule no longer holds the first recording out
    before = {r["clip"] for r in first if r["split"] == "val"}
    now, _ = cover_every_source(grown, keep_val=before)
    held = {r["clip"] for r in now if r["split"] == "val"}
    assert before <= held and "clips/ev/d_00.flac" in held
    assert f"clips/ev+aug/{uid}_00.flac" in held  # the whole recording, augmented copy included
    held_files = set().union(*(files_of(r) for r in now if r["split"] == "val"))
    assert not any(files_of(r) & held_files for r in now if r["split"] == "train")
