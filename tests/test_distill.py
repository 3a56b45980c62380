"""Tagger distillation (batches, losses, resume, teacher init) and the whole train → train-tagger → pack
command line, on tiny synthetic configurations (split from tests/test_training.py)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from models.training.distill import (
    DistillConfig,
    DistillData,
    build_student,
    latent_from_codes,
    mask_latent,
    same_config,
    train_tagger,
)
from models.training.losses import distillation_loss
from models.training.student_eval import per_class_ap, trusted_labels
from tests.conftest import synth_tones

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
TEACHER_DIR = SHARED / "teachers" / "efficientat_mn04_as"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny_data(seed: int = 0) -> tuple[DistillData, torch.Tensor]:
    rng = np.random.default_rng(seed)
    n, k, nq, t, c = 8, 2, 2, 40, 527
    codes = rng.integers(0, 16, (n, k, nq, t)).astype(np.int16)
    logits = np.full((n, k, c), -6.0, np.float32)
    cls = rng.integers(0, 3, n)
    logits[np.arange(n), :, cls] = 4.0  # each clip has one confident teacher class out of three
    seg = np.repeat(logits[:, :, None], 2, axis=2)
    table = torch.from_numpy(rng.standard_normal((nq, 16, 128)).astype(np.float32))
    return DistillData(codes, logits.astype(np.float16), seg.astype(np.float16)), table


def test_batches_of_short_segments() -> None:
    from models.training.distill import _batch

    data, _ = _tiny_data()
    rng_short = np.random.default_rng(0).standard_normal((8, 2, 4, 527)).astype(np.float16)
    with_short = DistillData(data.codes, data.logits, data.seg_logits, rng_short)
    # p_short 0 draws exactly what it drew before short segments existed
    before = _batch(data, np.random.default_rng(1), 4, 1.0)
    now = _batch(with_short, np.random.default_rng(1), 4, 1.0, 0.0)
    assert torch.equal(before.codes, now.codes) and torch.equal(before.logits, now.logits)
    codes, logits, _ = _batch(with_short, np.random.default_rng(2), 4, 1.0, 1.0)
    assert codes.shape == (4, 2, 10) and logits.shape == (4, 527)
    rows = {tuple(r) for r in rng_short.astype(np.float32).reshape(-1, 527)[:, :4].tolist()}
    assert all(tuple(r) in rows for r in logits[:, :4].tolist())
    codes = _batch(with_short, np.random.default_rng(2), 4, 1.0, 0.0).codes
    assert codes.shape == (4, 2, 20)


def test_batches_carry_the_teachers_segment_embeddings() -> None:
    from models.training.distill import _batch

    data, _ = _tiny_data()
    emb = np.random.default_rng(3).standard_normal((8, 2, 2, 6)).astype(np.float16)
    short = np.zeros((8, 2, 4, 527), np.float16)
    with_emb = DistillData(data.codes, data.logits, data.seg_logits, short, emb)
    plain = _batch(data, np.random.default_rng(1), 4, 1.0)
    both = _batch(with_emb, np.random.default_rng(1), 4, 1.0)
    assert plain.emb is None  # the draws are those of a batch without embeddings
    assert torch.equal(plain.codes, both.codes) and torch.equal(plain.logits, both.logits)
    assert both.emb is not None and both.emb.shape == (4, 6)
    rows = {tuple(r) for r in emb.astype(np.float32).reshape(-1, 6).tolist()}
    assert all(tuple(r) in rows for r in both.emb.tolist())
    # whole clips and 1-s segments have no teacher embeddings
    assert _batch(with_emb, np.random.default_rng(1), 4, 0.0).emb is None
    assert _batch(with_emb, np.random.default_rng(1), 4, 1.0, 1.0).emb is None


def test_feature_distillation_pulls_the_mid_level_embedding(tmp_path: Path) -> None:
    data, table = _tiny_data()
    dcfg = DistillConfig(width=0.1, steps=40, batch_size=4, lr=3e-3, log_every=40, feat_kd=10.0)
    with pytest.raises(ValueError, match="segment embeddings"):
        train_tagger(dcfg, data, table, tmp_path / "none")
    student = build_student(dcfg, None)
    n_mid = student.net.mid_embedding_size
    narrow = DistillData(*dataclasses.astuple(data)[:4], np.zeros((8, 2, 2, n_mid + 127), np.float16))
    with pytest.raises(ValueError, match="teacher's width"):
        train_tagger(dcfg, narrow, table, tmp_path / "narrow")
    # the "teacher": the student as initialised (same seed), so its embedding of every segment is
    # reachable; distillation without the embedding loss moves away from it
    # (compared in training mode, where batch norm uses the statistics of the batch: all 32 segments)
    torch.manual_seed(dcfg.seed)
    other = build_student(dcfg, None).train()
    sf_ = data.codes.shape[3] // 2
    segs = np.stack([data.codes[:, :, :, s * sf_ : (s + 1) * sf_] for s in range(2)], axis=2)  # N K S q T
    with torch.no_grad():
        x_all = latent_from_codes(torch.from_numpy(segs.reshape(-1, *segs.shape[3:]).astype(np.int64)), table)
        emb = other(x_all).embedding.numpy().reshape(8, 2, 2, -1)
    fdata = DistillData(*dataclasses.astuple(data)[:4], emb.astype(np.float16))

    def mid_error(model: Any) -> float:
        model.train()
        with torch.no_grad():
            got = model(x_all).embedding[:, :n_mid].numpy().reshape(emb[..., :n_mid].shape)
        sd = emb[..., :n_mid].reshape(-1, n_mid).std(axis=0) + 1e-3
        return float(np.mean(((got - emb[..., :n_mid]) / sd) ** 2))  # the loss it minimises

    plain = train_tagger(dataclasses.replace(dcfg, feat_kd=0.0), fdata, table, tmp_path / "plain")
    pulled = train_tagger(dcfg, fdata, table, tmp_path / "pulled")
    assert mid_error(pulled) < 0.6 * mid_error(plain)


def test_short_segments_need_their_logits(tmp_path: Path) -> None:
    data, table = _tiny_data()
    dcfg = DistillConfig(width=0.1, steps=2, batch_size=2, p_short=0.5)
    with pytest.raises(ValueError, match="short-segment"):
        train_tagger(dcfg, data, table, tmp_path)


def _full_loss(model, data: DistillData, table: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        x = latent_from_codes(torch.from_numpy(data.codes[:, 0].astype(np.int64)), table)
        p = torch.sigmoid(torch.from_numpy(data.logits[:, 0].astype(np.float32)))
        return float(distillation_loss(model(x).logits, p, (p >= 0.5).float()))


@pytest.mark.parametrize("frontend", ["latent_direct", "latent_proj"])
def test_distillation_learns_and_resumes(tmp_path: Path, frontend: str) -> None:
    data, table = _tiny_data()
    dcfg = DistillConfig(frontend=frontend, width=0.1, steps=16, batch_size=4, lr=3e-3, log_every=4)
    before = _full_loss(build_student(dcfg, None), data, table)
    model = train_tagger(dcfg, data, table, tmp_path / "full")
    assert _full_loss(model, data, table) < before
    train_tagger(dcfg, data, table, tmp_path / "split", max_steps=7)
    resumed = train_tagger(dcfg, data, table, tmp_path / "split")
    for (k, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_latent_masking_spans_and_channels() -> None:
    x = torch.randn(6, 12, 40)
    keep = x.clone()
    mean = x.mean(dim=2)
    assert torch.equal(mask_latent(x, np.random.default_rng(0), 0.0, 0.0), x)
    out = mask_latent(x, np.random.default_rng(0), 0.25, 0.0)
    assert torch.equal(x, keep)  # the input is left as it was
    for i in range(6):
        changed = (out[i] != x[i]).any(dim=0)  # frames that were replaced
        idx = torch.nonzero(changed).flatten()
        assert len(idx) <= 10  # at most a quarter of the 40 frames ...
        if len(idx):  # ... in one span, holding the example's time-mean
            assert int(idx[-1] - idx[0]) + 1 == len(idx)
            assert torch.allclose(out[i][:, idx], mean[i][:, None].expand(-1, len(idx)))
    out = mask_latent(x, np.random.default_rng(1), 0.0, 0.5)
    masked = [int((out[i] != x[i]).any(dim=1).sum()) for i in range(6)]
    assert max(masked) <= 6 and sum(masked) > 0  # up to half the 12 channels, somewhere


def test_masked_distillation_resumes_and_old_checkpoints_still_match(tmp_path: Path) -> None:
    data, table = _tiny_data()
    dcfg = DistillConfig(width=0.1, steps=8, batch_size=4, lr=3e-3, log_every=4, mask_time=0.2, mask_chan=0.2)
    model = train_tagger(dcfg, data, table, tmp_path / "full")
    train_tagger(dcfg, data, table, tmp_path / "split", max_steps=3)
    resumed = train_tagger(dcfg, data, table, tmp_path / "split")
    for (k, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    old = {k: v for k, v in dataclasses.asdict(DistillConfig()).items() if not k.startswith("mask_")}
    assert same_config(old, DistillConfig())  # written before the masking fields existed
    assert not same_config(old, dcfg)


def test_teacher_init_copies_matching_tensors() -> None:
    dcfg = DistillConfig(width=0.1)
    donor = build_student(dcfg, None).state_dict()
    donor = {k: v + 1.0 if v.is_floating_point() else v for k, v in donor.items() if k.startswith("net.")}
    student = build_student(dcfg, donor).state_dict()
    assert torch.equal(student["net.classifier.5.bias"], donor["net.classifier.5.bias"])
    proj = build_student(DistillConfig(width=0.1, frontend="latent_proj"), donor).state_dict()
    w1, w3 = donor["net.features.0.0.weight"], proj["net.features.0.0.weight"]
    assert w3.shape[1] == 3 and torch.allclose(w3.sum(dim=1, keepdim=True), w1, atol=1e-6)


def test_trusted_labels_rule() -> None:
    student = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.3]])
    teacher = np.array([[0.9, 0.1], [0.7, 0.8], [0.1, 0.1], [0.2, 0.1]])
    ap, pos = per_class_ap(student, teacher, min_pos=1)
    assert pos.tolist() == [2, 1]
    assert ap[0] == pytest.approx(1.0) and ap[1] < 0.5
    assert trusted_labels(np.array([30, 30]), ap) == [True, False]
    assert trusted_labels(np.array([5, 30]), ap) == [False, False]


def _tiny_corpus(root: Path) -> Path:
    root.mkdir()
    rows = []
    for i, x in enumerate(synth_tones(6, 24000 * 6, seed=5)):
        sf.write(root / f"c{i}.flac", x, 24000)
        rows.append(
            {
                "file": f"c{i}.flac",
                "split": "val" if i >= 4 else "train",
                "source": "synth",
                "licence": "CC0-1.0",
            }
        )
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


def test_cli_codec_tagger_pack(tmp_path: Path) -> None:
    if not (TEACHER_DIR / "mn04_as_mAP_432.pt").is_file():
        pytest.skip("../shared not present: teacher efficientat_mn04_as")
    from app.cli import main
    from models.packs.pack import load_pack

    corpus = _tiny_corpus(tmp_path / "corpus")
    cdir, tdir, pdir = tmp_path / "codec", tmp_path / "tagger", tmp_path / "pack"
    rc = main(
        [
            "train",
            "codec",
            "--corpus",
            str(corpus),
            "--out",
            str(cdir),
            "--steps",
            "2",
            "--num-filters",
            "2",
            "--codebook-size",
            "16",
            "--batch-size",
            "2",
            "--segment-s",
            "0.2",
            "--eval-clips",
            "2",
        ]
    )
    assert rc == 0
    info = json.loads((cdir / "codec.json").read_text())
    assert set(info["metrics"]["per_bandwidth"]) == {"1.5", "3.0", "6.0"}
    assert main(["train", "codec", "--corpus", str(corpus), "--out", str(cdir), "--steps", "2"]) == 2
    rc = main(
        [
            "train",
            "tagger",
            "--corpus",
            str(corpus),
            "--codec",
            str(cdir),
            "--teacher",
            str(TEACHER_DIR),
            "--out",
            str(tdir),
            "--width",
            "0.1",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--n-aug",
            "2",
            "--max-clips",
            "2",
            "--shards",
            "2",
            "--p-short",
            "0.5",
        ]
    )
    assert rc == 0
    tinfo = json.loads((tdir / "tagger.json").read_text())
    assert {"corpus/train", "corpus/train[1]", "corpus/held"} <= set(tinfo["data"])  # two shards
    assert tinfo["distill_cfg"]["p_short"] == 0.5
    short = sorted((tdir / "features").glob("teacher1s_train_*.npz"))  # one per shard, 1-s segments
    assert len(short) == 2 and all(np.load(p)["seg_logits"].shape[2] == 10 for p in short)
    assert len(tinfo["metrics"]["trusted"]) == 527
    # at the teacher's width, the student can also match the teacher's mid-level segment embeddings
    fdir = tmp_path / "tagger_fkd"
    common = ["--corpus", str(corpus), "--codec", str(cdir), "--teacher", str(TEACHER_DIR), "--n-aug", "2"]
    rc = main(
        ["train", "tagger", *common, "--out", str(fdir), "--steps", "2", "--batch-size", "2"]
        + ["--max-clips", "2", "--feat-kd", "0.5"]
    )
    assert rc == 0
    assert json.loads((fdir / "tagger.json").read_text())["distill_cfg"]["feat_kd"] == 0.5
    (emb_cache,) = (fdir / "features").glob("teacheremb_train_*.npz")
    assert np.load(emb_cache)["seg_emb"].shape[2:] == (5, 320)  # 2-s segments of 10 s; blocks + 128 bands
    assert main(["train", "pack", "--codec", str(cdir), "--tagger", str(tdir), "--out", str(pdir)]) == 0
    pack = load_pack(pdir)
    assert pack.codec_cfg is not None and pack.codec_cfg.num_filters == 2
    assert pack.info.provenance["codec"]["train_cfg"]["steps"] == 2
    assert (
        pack.info.provenance["codec"]["init"] is None
        and "train codec" in pack.info.provenance["codec"]["command"]
    )
    assert len(pack.info.trusted) == 527
    assert "CC-BY-SA-4.0" in (pdir / "README.md").read_text()


class _MeanLinear(torch.nn.Module):
    """A fixed stand-in student: logits = the time-mean latent through a fixed linear map (what it
    predicts depends on which frames it is given, so the segment layout is tested)."""

    def __init__(self, d: int, c: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(d, c, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor) -> Any:
        return SimpleNamespace(logits=0.5 * x.mean(dim=2) @ self.w)


def test_segment_scoring_matches_clip_slices_and_sets_trusted() -> None:
    from models.training.student_eval import evaluate_student, predict_segments, segment_codes

    rng = np.random.default_rng(0)
    n, nq, t, s, c = 12, 2, 40, 4, 527
    codes = rng.integers(0, 16, (n, 1, nq, t)).astype(np.int16)
    # segment layout: clip-major, segment k of clip i is frames k*T/S..(k+1)*T/S
    seg = segment_codes(codes[:, 0], s)
    assert seg.shape == (n * s, nq, t // s)
    assert np.array_equal(seg[2 * s + 3], codes[2, 0, :, 3 * (t // s) : 4 * (t // s)])
    table = torch.from_numpy(rng.standard_normal((nq, 16, 128)).astype(np.float32))
    model = _MeanLinear(128, c)
    # the teacher's segment logits are the student's own outputs on each segment: AP must be 1 everywhere
    data = DistillData(codes, np.zeros((n, 1, c), np.float16), np.zeros((n, 1, s, c), np.float16))
    p = predict_segments(model, data, table)
    logit = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    held = DistillData(codes, data.logits, logit.reshape(n, 1, s, c).astype(np.float32))
    train = DistillData(codes, data.logits, np.concatenate([held.seg_logits] * 3, axis=2))
    m = evaluate_student(model, train, held, table, augs=(0,), segments=True)
    assert m["trusted_unit"] == "2-s segment" and m["heldout_segments"] == n * s
    assert m["heldout_top1_segments"] == 1.0
    pos = (logit >= 0).sum(axis=0)
    scored = pos >= 5
    assert m["heldout_classes_segments"] == int(scored.sum()) > 0
    assert m["heldout_map_segments"] == pytest.approx(1.0)
    # trusted: >= 20 training segments (3 x the held-out count here) and AP >= 0.5 on >= 5 positives
    expect = scored & (3 * pos >= 20)
    assert m["trusted"] == expect.tolist() and m["n_trusted"] == int(expect.sum())
