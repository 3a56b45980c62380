"""HEAR 2021 API for Encotag model packs (importable without Qt).

``load_model(model_file_path="")`` loads a pack folder ("" = the default pack) and returns a
:class:`HearModel` (an ``nn.Module``) declaring ``sample_rate = 16000`` (one of the rates HEAR allows);
audio is resampled inside, with soxr, to the pack's own rate (24 kHz codec packs, 32 kHz mel packs).

- ``get_scene_embeddings(audio (n_sounds, n_samples) float32 @ 16 kHz, model) -> (n_sounds, D)``: the pack's
  clip embedding (mid-level blocks 5, 11, 13, 15 pooled over time + low-level per-dim means).
- ``get_timestamp_embeddings(audio, model) -> (embeddings (n_sounds, F, D), timestamps (n_sounds, F) ms)``:
  one embedding every 40 ms, timestamps at frame centres, evenly spaced.

Outputs are float32 tensors on the input's device; the model itself always computes on CPU.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from models.tagging.engine import Engine

HEAR_SAMPLE_RATE = 16000


class HearModel(nn.Module):
    """A loaded pack behind the HEAR interface.

    ``sample_rate`` (16000), ``scene_embedding_size`` and ``timestamp_embedding_size`` (both the pack's D).
    The engine is kept outside the module tree, so ``.to(device)`` leaves it on CPU.
    """

    sample_rate: int = HEAR_SAMPLE_RATE
    engine: Engine

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.__dict__["engine"] = engine  # not a sub-module: stays on CPU whatever .to() is called with
        self.scene_embedding_size = int(engine.embedding_size)
        self.timestamp_embedding_size = int(engine.embedding_size)

    def resample(self, audio: Tensor) -> np.ndarray:
        """(n_sounds, n_samples) @ 16 kHz → float32 numpy (n_sounds, m) @ the engine's rate (soxr HQ)."""
        if audio.dim() != 2:
            raise ValueError(f"audio must be (n_sounds, n_samples), got shape {tuple(audio.shape)}")
        x = audio.detach().to("cpu", torch.float32).numpy()
        sr = self.engine.sample_rate
        if sr == self.sample_rate or x.shape[0] == 0:
            return np.ascontiguousarray(x)
        import soxr

        out = soxr.resample(np.ascontiguousarray(x.T), self.sample_rate, sr, quality="HQ")
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, x.shape[0]).T)

    def forward(self, audio: Tensor) -> Tensor:
        """Scene embeddings (same as :func:`get_scene_embeddings`)."""
        return get_scene_embeddings(audio, self)


def load_model(model_file_path: str = "", threads: int | None = None) -> HearModel:
    """Load the pack folder at ``model_file_path`` ("" = the default pack) as a :class:`HearModel`."""
    return HearModel(Engine.load(model_file_path or None, threads=threads))


def get_scene_embeddings(audio: Tensor, model: HearModel) -> Tensor:
    """(n_sounds, n_samples) float32 @ ``model.sample_rate`` → (n_sounds, scene_embedding_size) float32."""
    x = model.resample(audio)
    if x.shape[0] == 0:
        return torch.zeros((0, model.scene_embedding_size), dtype=torch.float32, device=audio.device)
    _, emb = model.engine.infer(x)
    return torch.from_numpy(emb).to(device=audio.device, dtype=torch.float32)


def get_timestamp_embeddings(audio: Tensor, model: HearModel) -> tuple[Tensor, Tensor]:
    """(n_sounds, n_samples) float32 @ ``model.sample_rate`` → (embeddings (n_sounds, F, D) float32,
    timestamps (n_sounds, F) float32 ms, evenly spaced every ``engine.timestamp_hop_ms``)."""
    x = model.resample(audio)
    if x.shape[0] == 0:
        empty = torch.zeros((0, 0, model.timestamp_embedding_size), dtype=torch.float32, device=audio.device)
        return empty, torch.zeros((0, 0), dtype=torch.float32, device=audio.device)
    emb, ts = model.engine.timestamp_embeddings(x)
    stamps = np.broadcast_to(ts.astype(np.float32), (emb.shape[0], ts.shape[0])).copy()
    return (
        torch.from_numpy(emb).to(device=audio.device, dtype=torch.float32),
        torch.from_numpy(stamps).to(device=audio.device),
    )
