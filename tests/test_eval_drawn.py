"""``encotag eval --drawn-only``: the broad held-out set limited to recordings the stable hash holds out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from models.evaluation.agreement import heldout_clips
from models.training.corpus_split import drawn_by_hash
from models.training.corpus_stretch import split_for


def _uid(source: str, want_real: str, want_generated: str | None = None) -> str:
    """The first unit id ``rec-N`` whose stable-hash split is ``want_real`` at the rate of snapshot
    recordings (and ``want_generated`` at the rate of generated ones, when given)."""
    n = 0
    while split_for(source, f"rec-{n}", True) != want_real or (
        want_generated is not None and split_for(source, f"rec-{n}", False) != want_generated
    ):
        n += 1
    return f"rec-{n}"


def test_drawn_only_keeps_hash_drawn_recordings(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "clips").mkdir(parents=True)
    drawn = _uid("src", "val")  # held out by the draw at the 12 % rate of snapshot recordings
    moved = _uid("src", "train")  # held out only by the cover rule in this build
    rows = [("drawn", drawn, "owner/repo@abc"), ("moved", moved, "owner/repo@abc")]
    # a generated (non-snapshot) recording drawn at 12 % but not at 5 % is not drawn
    rows.append(("gen", _uid("gen", "val", "train"), "generated"))
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
