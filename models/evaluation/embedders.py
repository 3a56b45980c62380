"""Whole-clip embedders compared by ``encotag eval``.

Every embedder takes one mono clip, float32 ``(n,)`` at its ``sample_rate``, and returns per view a
whole-clip embedding ``(D,)`` float32 plus, for tagging packs, the 527 AudioSet probabilities ``(527,)``
float32 (``None`` otherwise):

- :class:`MelStatsEmbedder` — the baseline: mean and standard deviation over time of the teacher's
  128-band log-mel (:class:`models.nets.frontends.MelFrontend`, 32 kHz) → 256 dims.
- :class:`PackEmbedder` — any model pack through :class:`models.tagging.engine.Engine` (the teacher pack
  included): the whole clip in one forward pass (the network pools over time); optionally also the
  pooled last feature map (EfficientAT's ``features`` output), the embedding the reference figures used.

An embedder may produce several :class:`View` s from one pass; each view is one row of the report.

:func:`load_clip` decodes a file (soundfile), downmixes and resamples it (soxr) for an embedder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


class ClipError(Exception):
    """A clip that cannot be read; the message names the file and the reason."""


@dataclass(frozen=True)
class View:
    """One embedding an embedder produces: one row of the report.

    key: name inside the embedder (``scene``, ``final``, ``melstats``); name: display name; id: cache
    identity (changes whenever the weights or the recipe change); has_tags: whether it comes with 527 probs;
    reference: which set of reference figures describes it (``teacher``, ``melstats``), if any.
    """

    key: str
    name: str
    id: str
    embedding_size: int
    has_tags: bool
    reference: str | None = None


class Embedder(Protocol):
    sample_rate: int
    views: tuple[View, ...]

    def embed(self, audio: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """Mono float32 (n,) @ ``sample_rate`` → view key → (embedding (D,) float32, probs (527,) or None)."""
        ...


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
        from models.nets.frontends import MelFrontend

        self._torch = torch
        self.cfg = MelConfig()
        self.frontend = MelFrontend(self.cfg).eval()
        self.sample_rate = self.cfg.sample_rate
        recipe = json.dumps(asdict(self.cfg), sort_keys=True)
        eid = "melstats-v1:" + hashlib.sha256(recipe.encode()).hexdigest()[:16]
        self.views = (
            View("melstats", "mel-statistics baseline", eid, 2 * self.cfg.n_mels, False, "melstats"),
        )
        self._min_len = self.cfg.n_fft // 2 + 2

    def embed(self, audio: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        torch = self._torch
        x = torch.from_numpy(_pad(np.asarray(audio, np.float32), self._min_len))[None]
        with torch.inference_mode():
            mel = self.frontend(x)[0, 0].double()  # (128, T)
        emb = torch.cat([mel.mean(dim=1), mel.std(dim=1, unbiased=False)])
        return {"melstats": (emb.float().numpy(), None)}


class PackEmbedder:
    """A model pack via :class:`models.tagging.engine.Engine`, whole clip in one forward pass.

    Views: ``scene`` — the pack's scene embedding (mid-level blocks + low-level means, ``(D,)``) with its
    probabilities ``(527,)``; ``final`` (optional) — the global average of the network's last feature map
    (EfficientAT's own ``features`` output, ``(6·C15,)``, 384 for mn04), captured by a forward hook in the
    same pass. Clips go in whole (the engine zero-pads only clips under 50 ms); ``pad_to_window`` pads
    clips shorter than the pack's analysis window to one window instead.
    """

    def __init__(
        self,
        pack_dir: Path | None,
        name: str | None = None,
        final_view: bool = False,
        pad_to_window: bool = False,
    ) -> None:
        from models.tagging.engine import Engine

        self.engine = Engine.load(pack_dir)
        info = self.engine.info
        self.sample_rate = int(self.engine.sample_rate)
        self._min_len = int(round(self.engine.window.window_s * self.sample_rate)) if pad_to_window else 1
        name = name or info.name
        recipe = f"wholeclip-v1:pad{self._min_len}@{self.sample_rate}"
        views = [View("scene", name, f"pack:{info.pack_id}:{recipe}", int(self.engine.embedding_size), True)]
        self._final: np.ndarray | None = None
        if final_view:
            last = self.engine.tagger.net.features[-1]
            last.register_forward_hook(self._grab)
            size = int(self.engine.tagger.net.block_channels[-1])
            views.append(
                View("final", f"{name}, final features", f"pack:{info.pack_id}:final:{recipe}", size, False)
            )
        self.views = tuple(views)

    def _grab(self, module: object, inputs: object, output: object) -> None:
        self._final = output.detach().float().mean(dim=(2, 3)).numpy()  # type: ignore[attr-defined]

    def embed(self, audio: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        x = _pad(np.asarray(audio, np.float32), self._min_len)[None]
        self._final = None
        probs, emb = self.engine.infer(x)
        out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
            "scene": (np.asarray(emb[0], np.float32), np.asarray(probs[0], np.float32))
        }
        if len(self.views) > 1:
            assert self._final is not None
            out["final"] = (np.asarray(self._final[0], np.float32), None)
        return out
