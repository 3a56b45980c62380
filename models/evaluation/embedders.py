"""Whole-clip embedders compared by ``encotag eval``.

Every embedder takes one mono clip, float32 ``(n,)`` at its ``sample_rate``, and returns a whole-clip
embedding ``(D,)`` float32 plus, for tagging packs, the 527 AudioSet probabilities ``(527,)`` float32
(``None`` otherwise):

- :class:`MelStatsEmbedder` — the baseline: mean and standard deviation over time of the teacher's
  128-band log-mel (:class:`models.frontends.MelFrontend`, 32 kHz) → 256 dims.
- :class:`PackEmbedder` — any model pack through :class:`models.engine.Engine` (the teacher pack
  included): the whole clip in one forward pass (the network pools over time), clips shorter than the
  pack's analysis window zero-padded to one window.

:func:`load_clip` decodes a file (soundfile), downmixes and resamples it (soxr) for an embedder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import numpy as np


class ClipError(Exception):
    """A clip that cannot be read; the message names the file and the reason."""


class Embedder(Protocol):
    name: str  # display name in the report
    id: str  # cache identity: changes whenever the weights or the recipe change
    sample_rate: int
    embedding_size: int
    has_tags: bool

    def embed(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


def load_clip(path: Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to mono float32 ``(n,)`` at ``sample_rate`` (soxr HQ). Raises :class:`ClipError`."""
    import soundfile as sf
    import soxr

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, sf.LibsndfileError) as exc:
        raise ClipError(f"{path}: cannot decode ({exc})") from exc
    if data.shape[0] == 0:
        raise ClipError(f"{path}: empty audio")
    x = data.mean(axis=1)
    if sr != sample_rate:
        x = soxr.resample(x, sr, sample_rate)
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(x, -1.0, 1.0)


def _pad(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad ``x`` (n0,) at the end to at least ``n`` samples."""
    return x if x.shape[0] >= n else np.pad(x, (0, n - x.shape[0]))


class MelStatsEmbedder:
    """Mean and std (ddof 0) over time of the teacher's log-mel: ``(n,) @ 32 kHz → (256,)`` float32."""

    has_tags = False

    def __init__(self) -> None:
        import torch

        from models.config import MelConfig
        from models.frontends import MelFrontend

        self._torch = torch
        self.cfg = MelConfig()
        self.frontend = MelFrontend(self.cfg).eval()
        self.sample_rate = self.cfg.sample_rate
        self.embedding_size = 2 * self.cfg.n_mels
        self.name = "mel-statistics baseline"
        recipe = json.dumps(asdict(self.cfg), sort_keys=True)
        self.id = "melstats-v1:" + hashlib.sha256(recipe.encode()).hexdigest()[:16]
        self._min_len = self.cfg.n_fft // 2 + 2

    def embed(self, audio: np.ndarray) -> tuple[np.ndarray, None]:
        torch = self._torch
        x = torch.from_numpy(_pad(np.asarray(audio, np.float32), self._min_len))[None]
        with torch.inference_mode():
            mel = self.frontend(x)[0, 0].double()  # (128, T)
        emb = torch.cat([mel.mean(dim=1), mel.std(dim=1, unbiased=False)])
        return emb.float().numpy(), None


class PackEmbedder:
    """A model pack via :class:`models.engine.Engine`: whole-clip embedding ``(D,)`` and probs ``(527,)``.

    Clips shorter than the pack's window (``engine.window.window_s``) are zero-padded to one window; longer
    clips go through the network whole (global pooling over time inside the tagger).
    """

    has_tags = True

    def __init__(self, pack_dir: Path | None, name: str | None = None, threads: int | None = 1) -> None:
        from models.engine import Engine

        self.engine = Engine.load(pack_dir) if threads is None else Engine.load(pack_dir)
        info = self.engine.info
        self.sample_rate = int(self.engine.sample_rate)
        self.embedding_size = int(self.engine.embedding_size)
        self.name = name or info.name
        self._min_len = int(round(self.engine.window.window_s * self.sample_rate))
        self.id = f"pack:{info.pack_id}:wholeclip-v1:pad{self._min_len}@{self.sample_rate}"

    def embed(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = _pad(np.asarray(audio, np.float32), self._min_len)[None]
        probs, emb = self.engine.infer(x)
        return np.asarray(emb[0], np.float32), np.asarray(probs[0], np.float32)
