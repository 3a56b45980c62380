"""Codec training, feature caches and tagger distillation on tiny synthetic configurations."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from models.config import CodecConfig
from models.training.checkpoint import load_checkpoint, save_checkpoint
from models.training.codec_train import CodecTrainConfig, evaluate_codec, n_quantizers, train_codec
from models.training.distill import (
    DistillConfig,
    DistillData,
    build_student,
    codebook_table,
    latent_from_codes,
    per_class_ap,
    train_tagger,
    trusted_labels,
)
from models.training.features import FeatureConfig, augment, build_code_cache, compose
from models.training.losses import MultiScaleMelLoss, distillation_loss, si_sdr

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
TEACHER_DIR = SHARED / "teachers" / "efficientat_mn04_as"

TINY_CODEC = CodecConfig(
    num_filters=4,
    upsampling_ratios=(4, 4),
    hidden_size=16,
    codebook_size=16,
    target_bandwidths=(6.0, 12.0),
    bandwidth=12.0,
    num_lstm_layers=1,
)


def _synth(n_clips: int, n: int, sr: int = 24000, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    out = []
    for _ in range(n_clips):
        f = rng.uniform(200, 2000)
        x = 0.5 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(n)
        out.append(x.astype(np.float32))
    return out


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_checkpoint_roundtrip(tmp_path: Path) -> None:
    state = {"a": torch.arange(5.0), "nested": {"t": (torch.ones(2, 2), 3, "x"), 1: [0.5, None]}, "step": 7}
    save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert torch.equal(back["a"], state["a"])
    assert torch.equal(back["nested"]["t"][0], torch.ones(2, 2))
    assert back["nested"]["t"][1:] == (3, "x")
    assert back["nested"][1] == [0.5, None]
    assert back["step"] == 7
    assert not list(tmp_path.glob("*.tmp"))


def test_losses_behave() -> None:
    x = torch.from_numpy(np.stack(_synth(2, 4800)))
    loss = MultiScaleMelLoss()
    assert float(loss(x, x)) < 1e-3
    noisy = x + 0.1 * torch.randn_like(x)
    assert float(loss(noisy, x)) > 0.01
    assert float(si_sdr(x, x).min()) > 60
    assert float(si_sdr(noisy, x).mean()) < 20
    assert torch.allclose(si_sdr(3 * noisy, x), si_sdr(noisy, x), atol=1e-3)  # scale invariant
    logits = torch.tensor([[5.0, -5.0]])
    good = distillation_loss(logits, torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    bad = distillation_loss(-logits, torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    assert float(good) < float(bad)


def test_codec_training_learns_and_resumes(tmp_path: Path) -> None:
    clips = _synth(6, 12000)
    tcfg = CodecTrainConfig(steps=24, batch_size=4, segment_s=0.1, lr=3e-3, log_every=4, init_batches=4)
    logs: list[dict] = []
    model = train_codec(TINY_CODEC, tcfg, clips, tmp_path / "full", on_log=logs.append)
    assert logs[-1]["step"] == 24
    assert np.mean([r["mel"] for r in logs[-2:]]) < logs[0]["mel"]
    # a run stopped at step 10 and resumed from its checkpoint ends in the identical state
    train_codec(TINY_CODEC, tcfg, clips, tmp_path / "split", max_steps=10)
    resumed = train_codec(TINY_CODEC, tcfg, clips, tmp_path / "split")
    for (k, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    # the trained weights load strictly into the app's Codec and encode at every bandwidth
    from models.codec import Codec

    codec = Codec.from_state(TINY_CODEC, model.state_dict())
    codes = codec.encode(torch.from_numpy(clips[0][None, :4800]))
    assert codes.shape == (1, n_quantizers(TINY_CODEC, 12.0), 4800 // TINY_CODEC.hop_length)
    report = evaluate_codec(model, TINY_CODEC, clips[:2], seconds=0.2)
    assert set(report["per_bandwidth"]) == {"6.0", "12.0"}
    assert report["encoder_rtf"] > 0


def test_codec_warm_start_continues_from_trained_weights(tmp_path: Path) -> None:
    import dataclasses

    clips = _synth(4, 12000)
    tcfg = CodecTrainConfig(steps=16, batch_size=4, segment_s=0.1, lr=3e-3, log_every=4, init_batches=4)
    trained = train_codec(TINY_CODEC, tcfg, clips, tmp_path / "a")
    init = {k: v.clone() for k, v in trained.state_dict().items()}
    short = dataclasses.replace(tcfg, steps=2, lr=1e-5, log_every=1)
    warm: list[dict] = []
    fresh: list[dict] = []
    train_codec(TINY_CODEC, short, clips, tmp_path / "warm", init_state=init, on_log=warm.append)
    train_codec(TINY_CODEC, short, clips, tmp_path / "fresh", on_log=fresh.append)
    assert warm[0]["mel"] < fresh[0]["mel"]  # starts where the trained codec left off
    bad = {k: v for k, v in init.items() if not k.startswith("decoder")}
    with pytest.raises(RuntimeError):  # strict: a partial state dict is refused
        train_codec(TINY_CODEC, short, clips, tmp_path / "bad", init_state=bad)


def test_evenly_spaced_covers_the_whole_list() -> None:
    from app.commands.train_data import evenly_spaced

    items = list(range(7001))
    pick = evenly_spaced(items, 1800)
    assert len(pick) == 1800 and len(set(pick)) == 1800
    assert pick[0] == 0 and pick[-1] > 6990  # the end of the list is represented
    assert evenly_spaced(items[:5], 10) == items[:5]
    assert evenly_spaced(items, 1800, 0.0) == pick  # shard 0 is the plain selection (its caches stay valid)
    shards = [evenly_spaced(items, 1800, j / 3) for j in range(3)]
    assert len(set().union(*map(set, shards))) == 3 * 1800  # disjoint shards
    assert max(shards[2]) < 7001


class _TinyTeacher(torch.nn.Module):
    """A small deterministic tagger with the teacher's call signature (audio (B, n) → ``.logits``,
    ``.embedding``)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(8, 527)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, x: torch.Tensor) -> Any:
        frames = x[:, : x.shape[1] // 8 * 8].reshape(len(x), 8, -1).abs().mean(-1)
        return type("Out", (), {"logits": self.proj(frames), "embedding": frames})()


def test_teacher_cache_two_workers_and_resume(tmp_path: Path) -> None:
    from models.training.features import build_teacher_cache

    fcfg = FeatureConfig(clip_s=0.5, n_aug=2, seg_s=0.25)
    base = np.stack(_synth(5, 12000))
    teacher = _TinyTeacher()
    one = np.load(build_teacher_cache(base, teacher, tmp_path / "a.npz", fcfg, chunk=2))
    assert one["logits"].shape == (5, 2, 527) and one["seg_logits"].shape == (5, 2, 2, 527)
    # a reverse worker alone, then resuming after a chunk was lost, gives the same cache
    out = tmp_path / "b.npz"
    build_teacher_cache(base, teacher, out, fcfg, chunk=2, reverse=True)
    (tmp_path / "b.npz.partial" / "000002.npz").unlink()
    two = np.load(build_teacher_cache(base, teacher, out, fcfg, chunk=2))
    for k in ("logits", "seg_logits"):
        assert np.array_equal(one[k], two[k])


def test_teacher_cache_of_short_segments(tmp_path: Path) -> None:
    from models.training.features import build_teacher_cache, resample

    fcfg = FeatureConfig(clip_s=0.5, n_aug=2, seg_s=0.25)
    base = np.stack(_synth(3, 12000))
    teacher = _TinyTeacher()
    short = np.load(build_teacher_cache(base, teacher, tmp_path / "s.npz", fcfg, seg_s=0.125, whole=False))
    assert set(short.files) == {"seg_logits"} and short["seg_logits"].shape == (3, 2, 4, 527)
    a32 = resample(base[1], 24000, 32000)  # augmentation 0 is the clip itself
    seg = len(a32) // 4
    with torch.no_grad():
        direct = teacher(torch.from_numpy(a32[: 4 * seg].reshape(4, seg).astype(np.float32))).logits
    assert np.allclose(short["seg_logits"][1, 0].astype(np.float32), direct.numpy(), atol=2e-2, rtol=1e-2)


def test_teacher_cache_with_segment_embeddings(tmp_path: Path) -> None:
    from models.training.features import build_teacher_cache, resample

    fcfg = FeatureConfig(clip_s=0.5, n_aug=2, seg_s=0.25)
    base = np.stack(_synth(3, 12000))
    teacher = _TinyTeacher()
    path = build_teacher_cache(base, teacher, tmp_path / "e.npz", fcfg, whole=False, embeddings=True)
    cache = np.load(path)
    assert set(cache.files) == {"seg_logits", "seg_emb"} and cache["seg_emb"].shape == (3, 2, 2, 8)
    a32 = resample(base[2], 24000, 32000)  # augmentation 0 is the clip itself
    seg = len(a32) // 2
    with torch.no_grad():
        direct = teacher(torch.from_numpy(a32[: 2 * seg].reshape(2, seg).astype(np.float32))).embedding
    assert np.allclose(cache["seg_emb"][2, 0].astype(np.float32), direct.numpy(), atol=1e-3, rtol=1e-2)
    # a finished cache is joined again from its chunks with the same keys
    again = np.load(build_teacher_cache(base, teacher, path, fcfg, whole=False, embeddings=True))
    assert np.array_equal(again["seg_emb"], cache["seg_emb"])


def test_resume_refuses_other_config(tmp_path: Path) -> None:
    clips = _synth(2, 4800)
    tcfg = CodecTrainConfig(steps=2, batch_size=2, segment_s=0.1, init_batches=2)
    train_codec(TINY_CODEC, tcfg, clips, tmp_path, max_steps=1)
    with pytest.raises(ValueError, match="another configuration"):
        train_codec(TINY_CODEC, CodecTrainConfig(steps=3, batch_size=2, segment_s=0.1), clips, tmp_path)


def test_augment_and_compose_are_deterministic() -> None:
    x = _synth(1, 24000)[0]
    others = _synth(3, 5000, seed=1)
    assert np.array_equal(augment(x, 0, 1, others), x)
    a1, a2 = augment(x, 2, 1, others), augment(x, 2, 1, others)
    assert np.array_equal(a1, a2) and a1.shape == x.shape and a1.dtype == np.float32
    assert not np.array_equal(a1, augment(x, 3, 1, others))
    assert np.abs(a1).max() <= 1.0
    short = _synth(20, 7000, seed=2) + [_synth(1, 50000)[0]]
    base = compose(short, 1.0, 24000, seed=3)
    assert base.shape[1] == 24000 and len(base) >= 2
    assert np.array_equal(base, compose(short, 1.0, 24000, seed=3))


def test_code_cache_matches_codec(tmp_path: Path) -> None:
    from models.codec import Codec

    codec = Codec(TINY_CODEC)
    fcfg = FeatureConfig(clip_s=0.2, n_aug=2, seg_s=0.1)
    base = np.stack(_synth(3, 4800))
    path = build_code_cache(base, codec, tmp_path / "codes.npz", fcfg, chunk=2)
    codes = np.load(path)["codes"]
    assert codes.shape == (3, 2, 2, 4800 // 16) and codes.dtype == np.int16
    direct = codec.encode(torch.from_numpy(base[1:2]))  # augmentation 0 is the clip itself
    assert np.array_equal(codes[1, 0], direct[0].numpy())
    # latent_from_codes reproduces Codec.unembed
    lat = latent_from_codes(torch.from_numpy(codes[:, 0].astype(np.int64)), codebook_table(codec))
    assert torch.allclose(lat, codec.unembed(torch.from_numpy(codes[:, 0].astype(np.int64))), atol=1e-5)


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
    for i, x in enumerate(_synth(6, 24000 * 6, seed=5)):
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
    from models.pack import load_pack

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


ALIGN_CODEC = CodecConfig(
    num_filters=2,
    upsampling_ratios=(8, 5, 4, 2),
    hidden_size=128,
    codebook_size=16,
    target_bandwidths=(0.75, 1.5),
    bandwidth=1.5,
    num_lstm_layers=1,
)


def test_mel_align_target_is_the_teachers_log_mel_at_latent_frames() -> None:
    from models.training.mel_align import MelAlign

    align = MelAlign(128, 24000, 320)
    assert 100 < int(align.mask.sum()) < 128  # bands above 12 kHz (no energy at 24 kHz) are left out
    t = np.arange(24000) / 24000
    low = torch.from_numpy((0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))[None]
    high = torch.from_numpy((0.5 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32))[None]
    tl, th = align.target(low, 75), align.target(high, 75)
    assert tl.shape == (1, 128, 75)
    # the loudest band follows the tone: low band for 300 Hz, a higher one for 3 kHz
    assert int(tl[0, :, 40].argmax()) < int(th[0, :, 40].argmax())
    with torch.no_grad():
        assert float(align(tl, low)) < 1e-6  # a latent equal to the target costs nothing
        assert float(align(th, low)) > 0.05


def test_codec_training_with_mel_alignment_learns_and_resumes(tmp_path: Path) -> None:
    clips = _synth(6, 24000)
    tcfg = CodecTrainConfig(
        steps=16, batch_size=2, segment_s=0.2, lr=3e-3, log_every=2, init_batches=2, w_mel_align=1.0
    )
    logs: list[dict] = []
    model = train_codec(ALIGN_CODEC, tcfg, clips, tmp_path / "full", on_log=logs.append)
    assert all("align" in r for r in logs)
    assert np.mean([r["align"] for r in logs[-3:]]) < logs[0]["align"]
    train_codec(ALIGN_CODEC, tcfg, clips, tmp_path / "split", max_steps=7)
    assert "align" in str(load_checkpoint(tmp_path / "split" / "codec_ckpt.safetensors").keys())
    resumed = train_codec(ALIGN_CODEC, tcfg, clips, tmp_path / "split")
    for (k, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
