"""Codec training, feature caches and the mel alignment on tiny synthetic configurations (tagger
distillation: tests/test_distill.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.config import CodecConfig
from models.training.checkpoint import load_checkpoint, save_checkpoint
from models.training.codec_train import CodecTrainConfig, evaluate_codec, n_quantizers, train_codec
from models.training.distill import (
    codebook_table,
    latent_from_codes,
)
from models.training.features import FeatureConfig, augment, build_code_cache, compose
from models.training.losses import MultiScaleMelLoss, distillation_loss, si_sdr
from tests.conftest import synth_tones

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


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    x = torch.from_numpy(np.stack(synth_tones(2, 4800)))
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
    clips = synth_tones(6, 12000)
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
    from models.codec.codec import Codec

    codec = Codec.from_state(TINY_CODEC, model.state_dict())
    codes = codec.encode(torch.from_numpy(clips[0][None, :4800]))
    assert codes.shape == (1, n_quantizers(TINY_CODEC, 12.0), 4800 // TINY_CODEC.hop_length)
    report = evaluate_codec(model, TINY_CODEC, clips[:2], seconds=0.2)
    assert set(report["per_bandwidth"]) == {"6.0", "12.0"}
    assert report["encoder_rtf"] > 0


def test_codec_warm_start_continues_from_trained_weights(tmp_path: Path) -> None:

    clips = synth_tones(4, 12000)
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
    base = np.stack(synth_tones(5, 12000))
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
    base = np.stack(synth_tones(3, 12000))
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
    base = np.stack(synth_tones(3, 12000))
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
    clips = synth_tones(2, 4800)
    tcfg = CodecTrainConfig(steps=2, batch_size=2, segment_s=0.1, init_batches=2)
    train_codec(TINY_CODEC, tcfg, clips, tmp_path, max_steps=1)
    with pytest.raises(ValueError, match="another configuration"):
        train_codec(TINY_CODEC, CodecTrainConfig(steps=3, batch_size=2, segment_s=0.1), clips, tmp_path)


def test_augment_and_compose_are_deterministic() -> None:
    x = synth_tones(1, 24000)[0]
    others = synth_tones(3, 5000, seed=1)
    assert np.array_equal(augment(x, 0, 1, others), x)
    a1, a2 = augment(x, 2, 1, others), augment(x, 2, 1, others)
    assert np.array_equal(a1, a2) and a1.shape == x.shape and a1.dtype == np.float32
    assert not np.array_equal(a1, augment(x, 3, 1, others))
    assert np.abs(a1).max() <= 1.0
    short = synth_tones(20, 7000, seed=2) + [synth_tones(1, 50000)[0]]
    base = compose(short, 1.0, 24000, seed=3)
    assert base.shape[1] == 24000 and len(base) >= 2
    assert np.array_equal(base, compose(short, 1.0, 24000, seed=3))


def test_code_cache_matches_codec(tmp_path: Path) -> None:
    from models.codec.codec import Codec

    codec = Codec(TINY_CODEC)
    fcfg = FeatureConfig(clip_s=0.2, n_aug=2, seg_s=0.1)
    base = np.stack(synth_tones(3, 4800))
    path = build_code_cache(base, codec, tmp_path / "codes.npz", fcfg, chunk=2)
    codes = np.load(path)["codes"]
    assert codes.shape == (3, 2, 2, 4800 // 16) and codes.dtype == np.int16
    direct = codec.encode(torch.from_numpy(base[1:2]))  # augmentation 0 is the clip itself
    assert np.array_equal(codes[1, 0], direct[0].numpy())
    # latent_from_codes reproduces Codec.unembed
    lat = latent_from_codes(torch.from_numpy(codes[:, 0].astype(np.int64)), codebook_table(codec))
    assert torch.allclose(lat, codec.unembed(torch.from_numpy(codes[:, 0].astype(np.int64))), atol=1e-5)


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
    clips = synth_tones(6, 24000)
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
