"""``encotag eval --drawn-only``: the broad held-out set limited to recordings the stable hash holds out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from models.evaluation.agreement import drawn_by_hash, heldout_clips
from models.training.corpus_stretch import split_for


def _uid(source: str, real: bool, want: str, start: int = 0) -> str:
    """The first unit id ``rec-N`` (N ≥ start) whose stable-hash split is ``want``."""
    n = start
    while split_for(source, f"rec-{n}", real) != want:
        n += 1
    return f"rec-{n}"


def test_drawn_only_keeps_hash_drawn_recordings(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "clips").mkdir(parents=True)
    drawn = _uid("src", True, "val")  # held out by the draw at the 12 % rate of snapshot recordings
    moved = _uid("src", True, "train")  # held out only by the cover rule in this build
    rows = [("drawn", drawn, "owner/repo@abc"), ("moved", moved, "owner/repo@abc")]
    # a generated (non-snapshot) recording drawn at 12 % but not at 5 % is not drawn
    n = 0
    while not (
        split_for("gen", f"rec-{n}", True) == "val" and split_for("gen", f"rec-{n}", False) == "train"
    ):
        n += 1
    rows.append(("gen", f"rec-{n}", "generated"))
    lines = ["clip,source,origin,split,params"]
    for name, uid, origin in rows:
        src = "gen" if name == "gen" else "src"
        sf.write(corpus / "clips" / f"{name}.flac", np.zeros(800, np.float32), 16000)
        params = json.dumps({"unit": uid + "~0"}).replace('"', '""')
        lines.append(f'clips/{name}.flac,{src},{origin},val,"{params}"')
    (corpus / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    everything = heldout_clips([], corpus)
    assert sorted(p.name for p, _ in everything) == ["drawn.flac", "gen.flac", "moved.flac"]
    only = heldout_clips([], corpus, drawn_only=True)
    assert only == [(corpus / "clips" / "drawn.flac", "corpus:src")]
    assert drawn_by_hash(
        {"source": "src+aug", "origin": "o@c", "params": json.dumps({"unit": drawn + "~a1"})}
    )
    assert not drawn_by_hash({"source": "src", "origin": "o@c", "params": json.dumps({"unit": moved})})
