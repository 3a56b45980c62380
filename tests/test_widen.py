"""Widening a trained codec (models.training.widen): same function, more filters, refused mismatches."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.codec.codec import Codec
from models.config import CodecConfig
from models.training.codec_train import build_model
from models.training.widen import widen_codec_state
from tests.test_training import TINY_CODEC

NARROW = dataclasses.replace(TINY_CODEC, num_filters=2, num_lstm_layers=2)  # hop 16, 16-dim latent


def _trained_like_state(cfg: CodecConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random codec state with initialised codebooks and non-trivial biases (as after training)."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for layer in model.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
            layer.codebook.inited.fill_(1.0)
        for name, p in model.named_parameters():
            if name.endswith("bias") or "bias_" in name:
                p.normal_(0.0, 0.1)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _audio(n: int = 4000, seed: int = 1) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 24000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)
    return torch.from_numpy(x.astype(np.float32))[None]


@pytest.mark.parametrize("factor", [2, 3])
def test_widened_codec_computes_the_same(factor: int) -> None:
    state = _trained_like_state(NARROW)
    wide = dataclasses.replace(NARROW, num_filters=NARROW.num_filters * factor)
    narrow_codec = Codec.from_state(NARROW, state)
    wide_state = widen_codec_state(state, NARROW, wide, noise=0.0)
    wide_codec = Codec.from_state(wide, wide_state)
    enc = wide_state["encoder.layers.0.conv.parametrizations.weight.original1"]
    assert enc.shape[0] == 2 * factor  # first conv: num_filters output channels
    lstm = wide_state["encoder.layers.7.lstm.weight_hh_l0"]
    assert lstm.shape == (4 * 8 * factor, 8 * factor)  # 4 gates x (num_filters * 4) units
    x = _audio()
    z0, z1 = narrow_codec.embed(x).detach(), wide_codec.embed(x).detach()
    assert torch.allclose(z0, z1, atol=1e-5 * float(z0.abs().max()) + 1e-6)
    codes = narrow_codec.encode(x)
    assert torch.equal(codes, wide_codec.encode(x))
    y0, y1 = narrow_codec.decode(codes), wide_codec.decode(codes)
    assert torch.allclose(y0, y1, atol=1e-5 * float(y0.abs().max()) + 1e-6)


def test_noise_breaks_symmetry_but_keeps_the_function_close() -> None:
    state = _trained_like_state(NARROW)
    wide = dataclasses.replace(NARROW, num_filters=4)
    a = widen_codec_state(state, NARROW, wide, noise=0.01, seed=3)
    b = widen_codec_state(state, NARROW, wide, noise=0.01, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)  # seeded
    v = a["encoder.layers.0.conv.parametrizations.weight.original1"]
    assert not torch.allclose(v[:2], v[2:])  # the copies of each channel differ
    x = _audio()
    z0 = Codec.from_state(NARROW, state).embed(x).detach()
    z1 = Codec.from_state(wide, a).embed(x).detach()
    rel = float((z1 - z0).norm() / z0.norm())
    assert 0.0 < rel < 0.1
    for key in state:
        if key.startswith("quantizer."):
            assert torch.equal(a[key], state[key])  # codebooks are kept as they are


def test_mismatched_configurations_are_refused() -> None:
    state = _trained_like_state(NARROW)
    with pytest.raises(ValueError, match="not a multiple"):
        widen_codec_state(state, NARROW, dataclasses.replace(NARROW, num_filters=3))
    with pytest.raises(ValueError, match="hidden_size"):
        widen_codec_state(state, NARROW, dataclasses.replace(NARROW, num_filters=4, hidden_size=32))


def test_cli_warm_start_from_a_narrower_codec(tmp_path: Path) -> None:
    from app.cli import main
    from tests.test_distill import _tiny_corpus

    corpus = _tiny_corpus(tmp_path / "corpus")
    common = ["--corpus", str(corpus), "--steps", "1", "--codebook-size", "16", "--batch-size", "2"]
    common += ["--segment-s", "0.2", "--eval-clips", "1"]
    narrow, wide = tmp_path / "narrow", tmp_path / "wide"
    assert main(["train", "codec", *common, "--out", str(narrow), "--num-filters", "2"]) == 0
    rc = main(["train", "codec", *common, "--out", str(wide), "--num-filters", "4", "--init", str(narrow)])
    assert rc == 0
    info = json.loads((wide / "codec.json").read_text())
    assert info["codec_cfg"]["num_filters"] == 4 and info["init"] == str(narrow)
    bad = ["--out", str(tmp_path / "bad"), "--num-filters", "3", "--init", str(narrow)]
    assert main(["train", "codec", *common, *bad]) != 0


def _trained_like_tagger(width: float, seed: int = 0) -> torch.nn.Module:
    """A random latent tagger with non-trivial BatchNorm statistics and biases (as after training)."""
    from models.config import TaggerConfig
    from models.nets.tagger import Tagger

    torch.manual_seed(seed)
    model = Tagger(TaggerConfig(width=width, frontend="latent_direct"))
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith(("running_mean", "bias")):
                t.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
    return model.eval()


def test_widened_tagger_computes_the_same() -> None:
    from models.training.distill import DistillConfig, build_student

    narrow = _trained_like_tagger(0.2)
    state = {k: v.clone() for k, v in narrow.state_dict().items()}
    wide = build_student(DistillConfig(frontend="latent_direct", width=0.3), state, "a narrow tagger").eval()
    assert wide.embedding_size > narrow.embedding_size  # the new channels add embedding dimensions
    x = torch.randn(2, 128, 60, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = narrow(x), wide(x)
    assert torch.allclose(a.logits, b.logits, atol=1e-4 * float(a.logits.abs().max()) + 1e-6)
    # the old channels of each embedding block keep their values (leading channels of each part)
    start_a = start_b = 0
    for (name, n_a), (_, n_b) in zip(narrow.embedding_layout, wide.embedding_layout, strict=True):
        part_a = a.embedding[:, start_a : start_a + n_a]
        part_b = b.embedding[:, start_b : start_b + n_a]
        assert torch.allclose(part_a, part_b, atol=1e-4 * float(part_a.abs().max()) + 1e-6), name
        start_a, start_b = start_a + n_a, start_b + n_b
    # and the new channels are live: training can grow them (their readers are zero, not their values)
    assert float(b.embedding[:, narrow.embedding_layout[0][1] : wide.embedding_layout[0][1]].abs().sum()) > 0


def test_tagger_widening_refuses_other_networks() -> None:
    from models.training.widen import pad_widen_state

    narrow = _trained_like_tagger(0.3).state_dict()
    wide = _trained_like_tagger(0.2).state_dict()
    with pytest.raises(ValueError, match="does not fit"):
        pad_widen_state(narrow, wide)  # a narrower target
    fewer = dict(list(wide.items())[:-1])
    with pytest.raises(ValueError, match="differ in 1 tensors"):
        pad_widen_state(fewer, wide)
