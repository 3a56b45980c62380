"""Tagger and its front ends: shapes, embedding layout, mel sanity, training, teacher-file errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.config import MelConfig, TaggerConfig
from models.nets.frontends import LatentDirect, LatentProjection, MelFrontend, kaldi_mel_banks
from models.nets.tagger import Tagger, TaggerOutput, load_teacher_state, teacher_tagger


def test_mel_shape_and_frames() -> None:
    fe = MelFrontend(MelConfig())
    for n in (32000, 16000, 5000):
        out = fe(torch.randn(2, n))
        assert out.shape == (2, 1, 128, fe.num_frames(n))
    assert fe.num_frames(320000) == 1000
    with pytest.raises(ValueError, match="too short"):
        fe(torch.randn(1, 100))


def test_mel_banks_kaldi_properties() -> None:
    banks = kaldi_mel_banks(128, 1024, 32000, 0.0, 15000.0)
    assert banks.shape == (128, 512)
    assert (banks >= 0).all() and banks.max() <= 1.0
    freqs = torch.arange(512) * 32000 / 1024
    assert banks[:, freqs > 15000].abs().max() == 0  # nothing above fmax
    peaks = banks.argmax(dim=1)
    assert (peaks[1:] >= peaks[:-1]).all()  # centres increase with the band index
    assert MelFrontend().mel_basis[:, -1].abs().max() == 0  # Nyquist column is zero


def test_mel_tone_peaks_in_the_right_band() -> None:
    sr = 32000
    t = torch.arange(sr) / sr
    fe = MelFrontend()
    mel = fe(0.5 * torch.sin(2 * torch.pi * 1000.0 * t)[None])
    band = int(mel[0, 0].mean(dim=1).argmax())
    banks = kaldi_mel_banks(128, 1024, sr, 0.0, 15000.0)
    expected = int(banks[:, round(1000 * 1024 / sr)].argmax())  # band whose triangle covers bin 32
    assert abs(band - expected) <= 1
    low = fe(0.5 * torch.sin(2 * torch.pi * 200.0 * t)[None])
    assert int(low[0, 0].mean(dim=1).argmax()) < band


@pytest.mark.parametrize(
    ("frontend", "shape"),
    [("mel", (2, 8000)), ("latent_direct", (2, 128, 40)), ("latent_proj", (2, 128, 40))],
)
@pytest.mark.parametrize("width", [0.1, 0.2])
def test_tagger_shapes(frontend: str, shape: tuple[int, ...], width: float) -> None:
    torch.manual_seed(0)
    tagger = Tagger(TaggerConfig(width=width, frontend=frontend)).eval()  # type: ignore[arg-type]
    with torch.inference_mode():
        out = tagger(torch.randn(*shape))
    assert isinstance(out, TaggerOutput)
    assert out.logits.shape == (2, 527)
    assert out.embedding.shape == (2, tagger.embedding_size)
    assert tagger.embedding_size == sum(size for _, size in tagger.embedding_layout)
    assert tagger.embedding_layout[-1] == ("lowlevel", 128)
    assert [n for n, _ in tagger.embedding_layout[:-1]] == ["block5", "block11", "block13", "block15"]


def test_lowlevel_is_mean_of_mel_bands() -> None:
    tagger = Tagger(TaggerConfig(width=0.1)).eval()
    audio = torch.randn(1, 8000)
    with torch.inference_mode():
        emb = tagger(audio).embedding
        mel = tagger.frontend(audio)
    assert torch.allclose(emb[0, -128:], mel[0, 0].mean(dim=1), atol=1e-6)


def test_latent_frontends() -> None:
    lat = torch.randn(3, 128, 50) * 4 + 2
    direct = LatentDirect(128).train()
    out = direct(lat)
    assert out.shape == (3, 1, 128, 50)
    assert out.mean().abs() < 1e-4  # normalised per dim in training mode
    proj = LatentProjection(128)
    assert proj(lat).shape == (3, 3, 224, 224)
    with pytest.raises(ValueError, match="expected latent"):
        direct(torch.randn(1, 64, 10))


@pytest.mark.parametrize("frontend", ["latent_direct", "latent_proj", "mel"])
def test_training_step_updates_front_end_and_net(frontend: str) -> None:
    torch.manual_seed(0)
    tagger = Tagger(TaggerConfig(width=0.1, num_classes=4, frontend=frontend)).train()  # type: ignore[arg-type]
    x = torch.randn(2, 8000) if frontend == "mel" else torch.randn(2, 128, 30)
    out = tagger(x)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, torch.ones(2, 4))
    (loss + out.embedding.square().mean()).backward()
    no_grad = [n for n, p in tagger.named_parameters() if p.grad is None]
    assert not no_grad
    if frontend != "mel":
        assert any(n.startswith("frontend.") for n, _ in tagger.named_parameters())


def test_state_dict_prefixes() -> None:
    mel_keys = Tagger(TaggerConfig(width=0.1)).state_dict().keys()
    assert all(k.startswith("net.") for k in mel_keys)  # mel front end has no state
    lat_keys = Tagger(TaggerConfig(width=0.1, frontend="latent_direct")).state_dict().keys()
    assert any(k.startswith("frontend.norm.") for k in lat_keys)


def test_timestamp_embeddings() -> None:
    tagger = Tagger(TaggerConfig(width=0.1)).eval()
    audio = torch.randn(2, 16000)
    with torch.inference_mode():
        frames = tagger.timestamp_embeddings(audio, frame_hop=5)
        mel = tagger.frontend(audio)
    n_in = mel.shape[3]
    assert frames.shape == (2, -(-n_in // 5), tagger.embedding_size)
    assert torch.allclose(frames[:, 0, -128:], mel[:, 0, :, :5].mean(dim=2), atol=1e-5)
    with pytest.raises(ValueError):
        tagger.timestamp_embeddings(audio, frame_hop=0)


def test_bad_config_and_bad_teacher_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="front end"):
        Tagger(TaggerConfig(frontend="wave"))  # type: ignore[arg-type]
    bad = tmp_path / "bad.pt"
    torch.save({"features.0.0.weight": torch.zeros(3, 1, 3, 3), "classifier.5.bias": torch.zeros(527)}, bad)
    assert set(load_teacher_state(bad)) == {"net.features.0.0.weight", "net.classifier.5.bias"}
    with pytest.raises(ValueError, match="bad.pt"):
        teacher_tagger(bad)
    notdict = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], notdict)
    with pytest.raises(ValueError, match="not a state dict"):
        load_teacher_state(notdict)
