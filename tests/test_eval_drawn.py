"""``encotag eval --drawn-only``: the broad held-out set limited to recordings the stable hash holds out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from models.evaluation.agreement import heldout_clips
from models.training.corpus_split import drawn_by_hash, drawn_clips
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


def _manifest(
    corpus: Path, rows: list[tuple[str, str, str, str, str]], n: int = 800, sr: int = 16000
) -> None:
    """``corpus/manifest.csv`` and a short tone per row (name, source, unit id, origin, split)."""
    (corpus / "clips").mkdir(parents=True, exist_ok=True)
    lines = ["clip,source,origin,split,params"]
    for name, src, uid, origin, split in rows:
        x = (0.1 * np.sin(np.arange(n) * 0.05 * (1 + len(lines)))).astype(np.float32)
        sf.write(corpus / "clips" / f"{name}.flac", x, sr)
        params = json.dumps({"unit": uid + "~0"}).replace('"', '""')
        lines.append(f'clips/{name}.flac,{src},{origin},{split},"{params}"')
    (corpus / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_drawn_only_keeps_hash_drawn_recordings(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    drawn = _uid("src", "val")  # held out by the draw at the 12 % rate of snapshot recordings
    moved = _uid("src", "train")  # held out only by the cover rule in this build
    # a generated (non-snapshot) recording drawn at 12 % but not at 5 % is not drawn
    gen = _uid("gen", "val", "train")
    rows = [
        ("drawn", "src", drawn, "owner/repo@abc", "val"),
        ("moved", "src", moved, "owner/repo@abc", "val"),
    ]
    _manifest(corpus, [*rows, ("gen", "gen", gen, "generated", "val")])
    assert drawn_clips(corpus) == {"clips/drawn.flac"}

    everything = heldout_clips([], corpus)
    assert sorted(p.name for p, _ in everything) == ["drawn.flac", "gen.flac", "moved.flac"]
    only = heldout_clips([], corpus, drawn_only=True)
    assert only == [(corpus / "clips" / "drawn.flac", "corpus:src")]
    assert drawn_by_hash(
        {"source": "src+aug", "origin": "o@c", "params": json.dumps({"unit": drawn + "~a1"})}
    )
    assert not drawn_by_hash({"source": "src", "origin": "o@c", "params": json.dumps({"unit": moved})})


def test_training_scores_only_drawn_recordings(tiny_codec_pack: Path, tmp_path: Path) -> None:
    """``train tagger --per-clip --drawn-only`` holds out the same recordings but scores its figures and
    trusted labels only on those the draw holds out; the pack says so in its trusted rule."""
    from app.cli import main
    from tests.conftest import require_shared

    teacher = require_shared("teachers", "efficientat_mn04_as")
    corpus, origin = tmp_path / "c", "owner/repo@abc"
    rows = [(f"t{i}", "src", f"t{i}", origin, "train") for i in range(2)]
    rows.append(("drawn", "src", _uid("src", "val"), origin, "val"))
    rows.append(("moved", "src", _uid("src", "train"), origin, "val"))  # held out by this build only
    _manifest(corpus, rows, n=240000, sr=24000)
    feats = [
        "--per-clip",
        "--corpus",
        str(corpus),
        "--codec",
        str(tiny_codec_pack),
        "--teacher",
        str(teacher),
    ]
    out, pack, mean = tmp_path / "tagger", tmp_path / "pack", tmp_path / "mean"
    train = ["train", "tagger", *feats, "--drawn-only", "--out", str(out), "--steps", "3", "--eval-augs", "0"]
    assert main(train) == 0
    data = json.loads((out / "tagger.json").read_text(encoding="utf-8"))["data"]
    assert data["heldout_clips"] == 1 and data["heldout_drawn_only"] is True
    assert data["train_clips"] == 2  # the recording held out by this build stays out of training
    assert (
        main(["train", "pack", "--codec", str(tiny_codec_pack), "--tagger", str(out), "--out", str(pack)])
        == 0
    )
    rule = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))["provenance"]["trusted_rule"]
    assert rule.endswith("held-out recordings the stable hash draw holds out")
    # without the option every held-out recording is scored
    assert (
        main(["train", "average", *feats, "--out", str(mean), "--tagger", str(out), "--tagger", str(out)])
        == 0
    )
    averaged = json.loads((mean / "tagger.json").read_text(encoding="utf-8"))
    assert averaged["data"]["heldout_clips"] == 2 and averaged["data"]["heldout_drawn_only"] is False
    assert averaged["metrics"]["heldout_segments"] == 10 and averaged["data"]["train_clips"] == 2
    # label offsets fitted on the held-out recording the draw does not hold out ("moved"): the drawn one,
    # which scores the result, never enters the fit
    cal, cal_pack = tmp_path / "cal", tmp_path / "cal_pack"
    calibrate = ["train", "calibrate", *feats, "--tagger", str(out), "--out", str(cal), "--fit-on"]
    assert main([*calibrate, "held-undrawn", "--max-instead", "10"]) == 2  # needs --drawn-only
    assert main([*calibrate, "held-undrawn", "--drawn-only", "--max-instead", "250"]) == 2
    # only the held-out codes are read: the training clips' code files may be gone, and stay gone
    train_codes = sorted(corpus.glob("codes-*/clips/t*.flac.npy"))
    assert len(train_codes) == 2
    for f in train_codes:
        f.unlink()
    assert main([*calibrate, "held-undrawn", "--drawn-only", "--max-instead", "10"]) == 0
    assert not any(f.exists() for f in train_codes)
    info = json.loads((cal / "tagger.json").read_text(encoding="utf-8"))
    record = info["calibration"]
    assert record["fit_on"] == "held-undrawn" and record["n_segments"] == 5  # one clip of five 2-s segments
    assert record["max_instead"] == 0.1 and record["labels"] == [0, 137]
    assert info["metrics"]["heldout_segments"] == 5  # scored on the drawn clip alone
    assert (
        main(["train", "pack", "--codec", str(tiny_codec_pack), "--tagger", str(cal), "--out", str(cal_pack)])
        == 0
    )
    readme = (cal_pack / "README.md").read_text(encoding="utf-8")
    assert "fitted on held-out recordings outside the drawn evaluation set" in readme
    assert "capped at 10.0 %" in readme
