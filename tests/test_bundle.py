"""Distillation bundles (models/training/bundle.py): the training split written in parts, read back
exactly, refused whole when damaged, and a tagger trained from one through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main
from models.training.bundle import BundleError, read_bundle, write_bundle
from models.training.distill import DistillData

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(n: int = 9, nq: int = 2, t: int = 150, s: int = 5, seed: int = 0) -> tuple[DistillData, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 16, (n, 1, nq, t)).astype(np.int16)
    seg = rng.normal(-5, 3, (n, 1, s, 527)).astype(np.float16)
    data = DistillData(
        codes, seg.max(axis=2), seg, seg_weights=rng.uniform(0.5, 2, (n, s)).astype(np.float32)
    )
    table = rng.standard_normal((nq, 16, 128)).astype(np.float32)
    return data, table


def test_round_trip_in_parts(tmp_path: Path) -> None:
    data, table = _data()
    path = write_bundle(tmp_path / "b", data, table, {"data": {"corpus": "c"}}, part_mb=0.02)
    doc = json.loads(path.read_text())
    assert len(doc["parts"]) > 2  # several parts, contiguous clip ranges
    assert [p["start"] for p in doc["parts"]][1:] == [p["stop"] for p in doc["parts"]][:-1]
    b = read_bundle(tmp_path / "b")
    assert np.array_equal(b.data.codes, data.codes)
    assert np.array_equal(b.data.seg_logits, data.seg_logits)
    assert np.array_equal(b.data.logits, data.logits)  # rebuilt as the maximum of the segments
    assert b.data.seg_weights is not None and np.array_equal(b.data.seg_weights, data.seg_weights)
    assert np.array_equal(b.table, table) and b.info == {"data": {"corpus": "c"}}


def test_refuses_what_is_not_a_training_split(tmp_path: Path) -> None:
    data, table = _data()
    whole = data.logits.copy()
    whole[0, 0, 0] += 1  # a held-out clip's whole logits are the clip's own, not the segments' maximum
    with pytest.raises(ValueError, match="maximum"):
        write_bundle(
            tmp_path / "b",
            DistillData(data.codes, whole, data.seg_logits, seg_weights=data.seg_weights),
            table,
            {},
        )
    with pytest.raises(ValueError, match="weights"):
        write_bundle(tmp_path / "c", DistillData(data.codes, data.logits, data.seg_logits), table, {})
    write_bundle(tmp_path / "d", data, table, {})
    with pytest.raises(ValueError, match="already holds"):
        write_bundle(tmp_path / "d", data, table, {})


@pytest.mark.parametrize("damage", ["flip", "truncate", "missing", "manifest_size", "name", "range", "codes"])
def test_damaged_bundles_are_refused_whole(tmp_path: Path, damage: str) -> None:
    data, table = _data()
    if damage == "codes":
        data.codes[3, 0, 1, 7] = 99  # outside the 16-entry codebook
    path = write_bundle(tmp_path / "b", data, table, {}, part_mb=0.02)
    doc = json.loads(path.read_text())
    part = tmp_path / "b" / doc["parts"][1]["file"]
    if damage == "flip":
        raw = bytearray(part.read_bytes())
        raw[-5] ^= 0xFF
        part.write_bytes(bytes(raw))
    elif damage == "truncate":
        part.write_bytes(part.read_bytes()[:-100])
    elif damage == "missing":
        part.unlink()
    elif damage == "manifest_size":
        doc["clips"] = 9_000_000  # claims 100+ GB: refused before anything is allocated
        path.write_text(json.dumps(doc))
    elif damage == "name":
        doc["parts"][1]["file"] = "../b/" + doc["parts"][1]["file"]
        path.write_text(json.dumps(doc))
    elif damage == "range":
        doc["parts"][1]["start"] += 1
        path.write_text(json.dumps(doc))
    with pytest.raises(BundleError):
        read_bundle(tmp_path / "b")


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle.json"):
        read_bundle(tmp_path)
    (tmp_path / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="JSON"):
        read_bundle(tmp_path)
    (tmp_path / "bundle.json").write_text(json.dumps({"format": "encotag-distill-bundle", "version": 99}))
    with pytest.raises(BundleError, match="version"):
        read_bundle(tmp_path)


def test_train_tagger_from_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`train tagger --bundle` trains without corpus, codec or teacher; the tagger starts from --init and
    moves, and its record keeps the bundle's provenance."""
    from models.config import TaggerConfig
    from models.nets.tagger import Tagger
    from models.training.outputs import load_tagger_dir, save_tagger_dir

    data, table = _data(nq=2)
    write_bundle(tmp_path / "b", data, table, {"data": {"corpus": "/c", "train_clips": 9}, "corpus": ["/c"]})
    torch.manual_seed(0)
    init = Tagger(TaggerConfig(width=0.4, frontend="latent_direct"))
    save_tagger_dir(tmp_path / "init", init, {"tagger_cfg": {}})
    out = tmp_path / "run"
    argv = [
        "train",
        "tagger",
        "--bundle",
        str(tmp_path / "b"),
        "--init",
        str(tmp_path / "init"),
        "--out",
        str(out),
        "--width",
        "0.4",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    cfg, state, info = load_tagger_dir(out)
    assert info["data"]["train_clips"] == 9 and info["corpus"] == ["/c"] and info["device"] == "cpu"
    assert "bundle" in info["metrics"]["held_out"]
    before = init.state_dict()
    assert any(not torch.equal(state[k], before[k].float()) for k in state if state[k].is_floating_point())
    # a corpus and a bundle together are a usage error, as is a bundle that is not one
    assert main([*argv[:2], "--corpus", str(tmp_path), *argv[2:]]) == 2
    assert main(["train", "tagger", "--bundle", str(tmp_path), "--init", str(tmp_path / "init"), "--out",
                 str(tmp_path / "x")]) == 2  # fmt: skip
    assert "not a distillation bundle" in capsys.readouterr().err


def test_export_from_a_per_clip_corpus(tiny_codec_pack: Path, tmp_path: Path) -> None:
    """`train export` writes the training split of a per-clip corpus (codes and teacher logits from its
    caches, the class-balanced weights) and `train tagger --bundle` trains on it."""
    from tests.conftest import require_shared
    from tests.test_corpus_features import _corpus

    teacher = require_shared("teachers", "efficientat_mn04_as")
    _corpus(tmp_path / "c", 3)
    feats = ["--per-clip", "--corpus", str(tmp_path / "c"), "--codec", str(tiny_codec_pack)]
    feats += ["--teacher", str(teacher)]
    assert main(["train", "export", *feats, "--out", str(tmp_path / "b")]) == 0
    b = read_bundle(tmp_path / "b")
    assert b.data.codes.shape[0] == 2 and b.data.seg_weights is not None  # the two training clips
    codes = sorted((tmp_path / "c").glob("codes-*/**/*.npy"))
    cached = {np.load(p).tobytes() for p in codes}
    assert {c[0].tobytes() for c in b.data.codes} <= cached
    assert b.info["teacher"] == str(teacher) and b.info["data"]["train_clips"] == 2
    assert main(["train", "export", *feats, "--out", str(tmp_path / "b")]) == 2  # never over a bundle
    out = tmp_path / "t"
    assert main(["train", "tagger", "--bundle", str(tmp_path / "b"), "--teacher", str(teacher), "--out",
                 str(out), "--steps", "2", "--batch-size", "2"]) == 0  # fmt: skip
    assert (out / "tagger.safetensors").is_file()
