"""Thinned training recordings for a learning curve (``encotag corpus subset --halvings K``)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from app.cli import main
from models.training.corpus_sources import stable_hash
from models.training.corpus_split import files_of, halve_training
from tests.test_corpus_split import _mix, _row
from tests.test_corpus_widen import _write_corpus


def _unit(source: str, residue: int) -> str:
    """A unit id of ``source`` whose ``half`` hash is ``residue`` modulo 8."""
    return next(f"u{i}-0" for i in range(10_000) if stable_hash("half", source, f"u{i}-0") % 8 == residue)


def _rows() -> list[dict[str, str]]:
    """Recordings of source ``ev`` with half-hash residues 0 (kept at every K <= 3), 4 (K <= 2), 2 (K <= 1)
    and 1 (K = 0 only), each with an augmented copy; a held-out recording; mixtures over them."""
    rows = []
    for residue in (0, 4, 2, 1):
        u = _unit("ev", residue)
        rows.append(_row(f"clips/ev/r{residue}_00.flac", "ev", "train", u, f"/s/ev/r{residue}.wav"))
        rows.append(
            _row(f"clips/ev+aug/r{residue}_00.flac", "ev+aug", "train", f"{u}~a1", f"/s/ev/r{residue}.wav")
        )
    rows.append(_row("clips/ev/held_00.flac", "ev", "val", _unit("ev", 1) + "x", "/s/ev/held.wav"))
    rows.append(_mix("clips/mix/keep.flac", "/s/ev/r0.wav", ["/s/ev/r0.wav"]))
    rows.append(_mix("clips/mix/drop.flac", "/s/ev/r0.wav", ["/s/ev/r1.wav"]))
    rows.append(_mix("clips/mix/val.flac", "/s/ev/held.wav", ["/s/ev/r1.wav"], split="val"))
    return rows


def _clips(rows: list[dict[str, str]]) -> set[str]:
    return {r["clip"] for r in rows}


def test_each_halving_keeps_a_nested_half_of_the_training_recordings_and_every_held_out_row() -> None:
    rows = _rows()
    held = {r["clip"] for r in rows if r["split"] == "val"}
    views = [halve_training(rows, k) for k in range(4)]
    assert views[0][0] == rows  # K = 0 keeps everything
    for k, (new, info) in enumerate(views):
        kept = {r["clip"].split("/")[-1] for r in new if r["split"] == "train" and r["origin"] != "mixture"}
        want = [res for res in (0, 4, 2, 1) if res % 2**k == 0]
        assert kept == {f"r{res}_00.flac" for res in want}  # each recording with its augmented copy
        assert sum(r["split"] == "train" and r["origin"] != "mixture" for r in new) == 2 * len(want)
        assert held <= _clips(new)  # the held-out set does not change
        assert info["recordings"] == 4 and info["kept_recordings"] == len(want)
        assert info["rows_left_out"] == len(rows) - len(new)
        dropped = set().union(*(files_of(r) for r in rows if r["origin"] != "mixture" and r not in new))
        assert not any(files_of(r) & dropped for r in new if r["split"] == "train")
        if k:
            assert _clips(new) <= _clips(views[k - 1][0])  # nested
    assert "clips/mix/keep.flac" in _clips(views[3][0]) and "clips/mix/drop.flac" not in _clips(views[1][0])
    assert rows == _rows()  # the input is not modified
    with pytest.raises(ValueError):
        halve_training(rows, -1)


def test_subset_writes_a_linked_view_and_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus, out = tmp_path / "corpus", tmp_path / "half"
    corpus.mkdir()
    rows = _rows()
    _write_corpus(corpus, rows)
    original = (corpus / "manifest.csv").read_bytes()
    assert main(["corpus", "subset", str(corpus), "--halvings", "1", "--out", str(out)]) == 0
    assert "3 of 4 training recordings kept" in capsys.readouterr().out
    assert (corpus / "manifest.csv").read_bytes() == original
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        assert list(csv.DictReader(fh)) == halve_training(rows, 1)[0]
    for folder in ("clips", "teacher_segments", "codes-abc"):
        assert (out / folder).is_symlink()
    assert (out / "clips/ev/r0_00.flac").read_bytes() == b"audio"
    assert (out / "teacher_segments/clips/ev/held_00.flac.npy").is_file()
    again = ["corpus", "subset", str(corpus), "--halvings", "1", "--out"]
    assert main([*again, str(out)]) == 2  # not into a folder that holds something
    assert main([*again, str(corpus)]) == 2  # not over the corpus
    assert main(["corpus", "subset", str(corpus), "--halvings", "17", "--out", str(tmp_path / "x")]) == 2
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/manifest.csv").write_text("a,b\n1,2\n")
    assert (
        main(["corpus", "subset", str(tmp_path / "bad"), "--halvings", "1", "--out", str(tmp_path / "y")])
        == 2
    )
    (tmp_path / "file").write_text("not a folder")
    assert main(["corpus", "subset", str(corpus), "--halvings", "1", "--out", str(tmp_path / "file/z")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("encotag corpus subset: ") for line in err)
