"""A larger held-out share by the same stable hash (``encotag corpus resplit --held-out-percent``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from models.training.corpus_sources import stable_hash
from models.training.corpus_split import files_of, widen_held_out
from tests.test_corpus_split import _mix, _row


def _unit(source: str, lo: int, hi: int) -> str:
    """A unit id of ``source`` whose split hash falls in [lo, hi)."""
    return next(f"u{i}-0" for i in range(10_000) if lo <= stable_hash("split", source, f"u{i}-0") % 100 < hi)


def _rows() -> list[dict[str, str]]:
    rows = []
    for src in ("ev", "keep"):
        for tag, (lo, hi) in {"drawn": (0, 12), "wide": (12, 35), "rest": (35, 100)}.items():
            u = _unit(src, lo, hi)
            split = "val" if tag == "drawn" else "train"
            rows.append(_row(f"clips/{src}/{tag}_00.flac", src, split, u, f"/s/{src}/{tag}.wav"))
            rows.append(
                _row(f"clips/{src}+aug/{tag}_00.flac", f"{src}+aug", split, f"{u}~a1", f"/s/{src}/{tag}.wav")
            )
    rows[-2]["split"] = rows[-1]["split"] = "val"  # keep/rest: held out before by the cover rule only
    rows.append(_mix("clips/mix/wide.flac", "/s/ev/rest.wav", ["/s/ev/wide.wav"]))
    rows.append(_mix("clips/mix/rest.flac", "/s/ev/rest.wav", ["/s/keep/wide.wav"]))
    rows.append(_mix("clips/mix/val.flac", "/s/ev/drawn.wav", ["/s/ev/wide.wav"], split="val"))
    return rows


def _split(rows: list[dict[str, str]]) -> dict[str, str]:
    return {r["clip"]: r["split"] for r in rows}


def test_the_wider_share_nests_the_draw_and_spares_kept_sources() -> None:
    rows = _rows()
    new, info = widen_held_out(rows, 35, keep_sources={"keep"})
    got = _split(new)
    for copy in ("", "+aug"):  # a recording and its derived copy share the split
        assert got[f"clips/ev{copy}/drawn_00.flac"] == "val"  # the draw stays held out
        assert got[f"clips/ev{copy}/wide_00.flac"] == "val"  # widened
        assert got[f"clips/ev{copy}/rest_00.flac"] == "train"
        assert got[f"clips/keep{copy}/drawn_00.flac"] == "val"
        assert got[f"clips/keep{copy}/wide_00.flac"] == "train"  # a kept source keeps the draw's share
        assert got[f"clips/keep{copy}/rest_00.flac"] == "train"  # the cover rule's choice goes back
    # the training mixture holding a newly held-out recording is left out; the others stay as they were
    assert "clips/mix/wide.flac" not in got
    assert got["clips/mix/rest.flac"] == "train" and got["clips/mix/val.flac"] == "val"
    held = set().union(*(files_of(r) for r in new if r["split"] == "val" and r["origin"] != "mixture"))
    assert not any(files_of(r) & held for r in new if r["split"] == "train")
    assert info == {"recordings": 6, "held_out": 3, "to_val": 2, "to_train": 2, "mixtures_left_out": 1}
    assert rows == _rows()  # the input is not modified
    # at the draw's own share nothing but the draw is held out; without kept sources keep/wide goes too
    assert {c for c, s in _split(widen_held_out(rows, 12)[0]).items() if s == "val" and "mix" not in c} == {
        f"clips/{s}{c}/drawn_00.flac" for s in ("ev", "keep") for c in ("", "+aug")
    }
    assert _split(widen_held_out(rows, 35)[0])["clips/keep/wide_00.flac"] == "val"
    with pytest.raises(ValueError):
        widen_held_out(rows, 101)


def _write_corpus(root: Path, rows: list[dict[str, str]]) -> None:
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        for folder, arr in (("teacher_segments", np.zeros((6, 527), np.float16)), ("codes-abc", None)):
            p = root / folder / (r["clip"] + ".npy")
            p.parent.mkdir(parents=True, exist_ok=True)
            np.save(p, arr if arr is not None else np.zeros((8, 750), np.int16))
        (root / r["clip"]).parent.mkdir(parents=True, exist_ok=True)
        (root / r["clip"]).write_bytes(b"audio")


def test_resplit_out_writes_a_linked_copy_and_leaves_the_corpus_alone(tmp_path: Path) -> None:
    corpus, out = tmp_path / "corpus", tmp_path / "wide"
    corpus.mkdir()
    rows = _rows()
    _write_corpus(corpus, rows)
    original = (corpus / "manifest.csv").read_bytes()
    pack = tmp_path / "pack"  # a pack whose tagger trained on "keep"
    pack.mkdir()
    train = {"sources": {"keep": {"clips": 3}}}
    (pack / "manifest.json").write_text(json.dumps({"provenance": {"tagger": {"data": {"/c/train": train}}}}))
    args = ["corpus", "resplit", str(corpus), "--held-out-percent", "35", "--keep-sources-of", str(pack)]
    assert main([*args, "--out", str(out)]) == 0
    assert (corpus / "manifest.csv").read_bytes() == original
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        now = list(csv.DictReader(fh))
    expected, _ = widen_held_out(rows, 35, {"keep"})
    assert now == expected
    assert (out / "clips").is_symlink() and (out / "codes-abc").is_symlink()
    assert (out / "clips/ev/wide_00.flac").read_bytes() == b"audio"
    changed = {r["clip"] for r in expected if _split(rows)[r["clip"]] != r["split"]}
    assert changed == {f"clips/{s}{c}_00.flac" for s in ("ev/wide", "keep/rest") for c in ("",)} | {
        "clips/ev+aug/wide_00.flac",
        "clips/keep+aug/rest_00.flac",
    }
    for r in rows:  # a clip whose split changed has its teacher cache recomputed; the rest are links
        link = out / "teacher_segments" / (r["clip"] + ".npy")
        assert link.is_symlink() == (r["clip"] not in changed)
    assert main([*args, "--out", str(out)]) == 2  # not into a folder that holds something
    assert main([*args]) == 2  # --held-out-percent needs --out
    not_a_pack = [
        "corpus",
        "resplit",
        str(corpus),
        "--held-out-percent",
        "35",
        "--keep-sources-of",
        str(tmp_path),
    ]
    assert main([*not_a_pack, "--out", str(tmp_path / "x")]) == 2  # a folder without a pack manifest
