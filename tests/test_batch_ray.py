"""``encotag tag --engine ray``: Ray Data on a local Ray with 2 CPUs gives the same dataset as the
single-machine run (same rows, probabilities within float tolerance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from models.batch import tables
from tests.test_batch import make_clips

pytest.importorskip("ray", reason="ray is in the test extra: pip install -e '.[test]'")
pytest.importorskip("pyarrow", reason="pyarrow is in the test extra: pip install -e '.[test]'")


def test_ray_local_run_equals_the_single_machine_run(
    tiny_mel_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local Ray on this machine
    files = make_clips(tmp_path / "in", 240, seconds=0.6)
    base = ["tag", str(tmp_path / "in"), "--pack", str(tiny_mel_pack), "--threshold", "0.2", "-q"]
    assert main([*base, "-o", str(tmp_path / "local.parquet"), "--workers", "1"]) == 0
    code = main([*base, "-o", str(tmp_path / "ray.parquet"), "--engine", "ray", "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "240 ok, 0 failed, 0 warnings, 0 already done (of 240)" in err
    local = tables.read_table(tmp_path / "local.parquet", "parquet")
    ray_rows = tables.read_table(tmp_path / "ray.parquet", "parquet")
    assert [r["file"] for r in ray_rows] == [r["file"] for r in local] == [str(f) for f in files]
    for a, b in zip(ray_rows, local, strict=True):
        assert a["top_labels"] == b["top_labels"] and a["top_trusted"] == b["top_trusted"]
        assert np.allclose(a["top_scores"], b["top_scores"], atol=1e-5)
        assert (a["status"], a["duration"], a["windows"], a["n_events"], a["pack_id"]) == (
            b["status"], b["duration"], b["windows"], b["n_events"], b["pack_id"])  # fmt: skip
    ev_ray = tables.read_table(tables.events_path(tmp_path / "ray.parquet"), "parquet")
    ev_local = tables.read_table(tables.events_path(tmp_path / "local.parquet"), "parquet")
    assert len(ev_local) > 0
    assert [(e["file"], e["label"]) for e in ev_ray] == [(e["file"], e["label"]) for e in ev_local]
    assert np.allclose([[e["start"], e["end"], e["score"]] for e in ev_ray],
                       [[e["start"], e["end"], e["score"]] for e in ev_local], atol=1e-5)  # fmt: skip
