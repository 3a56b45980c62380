"""HEAR API: attributes, shapes, devices, evenly spaced timestamps ≤ 50 ms, resampling inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models import hear


@pytest.fixture(scope="module", params=["tiny_codec_pack", "tiny_mel_pack"])
def model(request: pytest.FixtureRequest) -> hear.HearModel:
    return hear.load_model(str(request.getfixturevalue(request.param)))


def test_attributes(model: hear.HearModel) -> None:
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate in (16000, 22050, 44100, 48000)
    assert model.scene_embedding_size == model.timestamp_embedding_size == model.engine.embedding_size
    assert model.engine.sample_rate in (24000, 32000)


def test_scene_embeddings(model: hear.HearModel) -> None:
    audio = torch.randn(3, 16000) * 0.1
    emb = hear.get_scene_embeddings(audio, model)
    assert emb.shape == (3, model.scene_embedding_size) and emb.dtype == torch.float32
    assert emb.device == audio.device and torch.isfinite(emb).all()
    # same as the engine on audio resampled to its own rate
    _, direct = model.engine.infer(model.resample(audio))
    np.testing.assert_allclose(emb.numpy(), direct, atol=1e-5)
    # any length ≥ a fraction of a second, and an empty batch
    assert hear.get_scene_embeddings(torch.randn(2, 1600) * 0.1, model).shape == (
        2,
        model.scene_embedding_size,
    )
    assert hear.get_scene_embeddings(torch.zeros(0, 16000), model).shape == (0, model.scene_embedding_size)


def test_timestamp_embeddings(model: hear.HearModel) -> None:
    audio = torch.randn(2, 32000) * 0.1  # 2 s
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    n_frames = ts.shape[1]
    assert emb.shape == (2, n_frames, model.timestamp_embedding_size) and ts.shape == (2, n_frames)
    assert emb.dtype == torch.float32 and ts.dtype == torch.float32
    steps = torch.diff(ts, dim=1)
    assert torch.all((steps - steps[0, 0]).abs() < 1.0)  # evenly spaced within 1 ms
    assert 0 < float(steps[0, 0]) <= 50.0
    assert torch.equal(ts[0], ts[1])
    assert float(ts[0, 0]) < 50 and 1900 < float(ts[0, -1]) < 2050


def test_resampling_keeps_duration(model: hear.HearModel) -> None:
    out = model.resample(torch.zeros(2, 16000))
    assert out.shape == (2, model.engine.sample_rate) and out.dtype == np.float32
    with pytest.raises(ValueError):
        model.resample(torch.zeros(16000))


def test_default_pack_path(monkeypatch: pytest.MonkeyPatch, tiny_mel_pack: Path) -> None:
    import models.resources

    monkeypatch.setattr(models.resources, "default_pack_dir", lambda: tiny_mel_pack)
    model = hear.load_model("")
    assert model.engine.info.name == "tiny mel test pack"
