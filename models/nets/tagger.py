"""Tagger = front end + MobileNetV3: AudioSet logits and a scene embedding.

State dict layout: the network's parameters live under ``net.`` (``net.features.…``, ``net.classifier.…``),
a latent front end's under ``frontend.`` (the mel front end has no state). EfficientAT checkpoints such as
the teacher ``mn04_as_mAP_432.pt`` therefore load into a mel ``Tagger`` after prefixing ``net.``:
:func:`load_teacher_state` does that, :func:`teacher_tagger` builds the ready-to-run teacher.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import MelConfig, TaggerConfig
from models.nets.frontends import LatentDirect, LatentProjection, MelFrontend
from models.nets.mobilenet import MobileNetV3

log = logging.getLogger(__name__)

NET_PREFIX = "net."
TEACHER_WIDTH = 0.4  # EfficientAT mn04_as


class TaggerOutput(NamedTuple):
    """``logits``: (B, num_classes) float32, raw (sigmoid → probabilities).
    ``embedding``: (B, embedding_size) float32, laid out as ``Tagger.embedding_layout``."""

    logits: Tensor
    embedding: Tensor


class Tagger(nn.Module):
    """Front end (``cfg.frontend``) + EfficientAT-style MobileNetV3 of width ``cfg.width``.

    Input ``x``: audio ``(B, n)`` float32 @ ``mel_cfg.sample_rate`` (32 kHz) for ``mel``; codec latent
    ``(B, cfg.input_dim, T)`` float32 for ``latent_direct`` / ``latent_proj``.
    Embedding = concat(mid-level: ``features[i]`` outputs for ``i`` in ``cfg.embedding_blocks``, each
    averaged over frequency and time; low-level: per-dim mean over time of the input representation,
    i.e. the log-mel bands or the normalised latent dims).
    """

    def __init__(self, cfg: TaggerConfig, mel_cfg: MelConfig | None = None) -> None:
        super().__init__()
        mel_cfg = mel_cfg if mel_cfg is not None else MelConfig()
        self.cfg = cfg
        self.mel_cfg = mel_cfg
        self.frontend: MelFrontend | LatentDirect | LatentProjection
        if cfg.frontend == "mel":
            if cfg.input_dim != mel_cfg.n_mels:
                raise ValueError(
                    f"input_dim {cfg.input_dim} != n_mels {mel_cfg.n_mels} for the mel front end"
                )
            self.frontend = MelFrontend(mel_cfg)
            in_channels = 1
        elif cfg.frontend == "latent_direct":
            self.frontend = LatentDirect(cfg.input_dim)
            in_channels = 1
        elif cfg.frontend == "latent_proj":
            self.frontend = LatentProjection(cfg.input_dim)
            in_channels = 3
        else:
            raise ValueError(
                f"unknown front end {cfg.frontend!r}: expected mel, latent_direct or latent_proj"
            )
        if cfg.head_type != "mlp":
            raise ValueError(f"unsupported head_type {cfg.head_type!r}: only 'mlp'")
        self.net = MobileNetV3(
            cfg.width,
            num_classes=cfg.num_classes,
            in_channels=in_channels,
            embedding_blocks=cfg.embedding_blocks,
        )

    def optimize_for_inference(self) -> Tagger:
        """Eval mode and a BN-folded, channels-last network (see ``MobileNetV3.fuse_for_inference``);
        returns ``self``. Inference only: call after loading the weights, never save the result."""
        self.eval()
        self.net.fuse_for_inference()
        return self

    @property
    def embedding_layout(self) -> tuple[tuple[str, int], ...]:
        """Parts of the embedding in order, e.g. ``(("block5", 16), …, ("lowlevel", 128))``."""
        return (*self.net.mid_layout, ("lowlevel", self.cfg.input_dim))

    @property
    def embedding_size(self) -> int:
        return self.net.mid_embedding_size + self.cfg.input_dim

    def representation(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(network image (B, C, F, T'), representation (B, input_dim, T))``: the image the MobileNet
        sees and the per-frame input representation the low-level features come from."""
        fe = self.frontend
        if isinstance(fe, LatentProjection):
            rep = fe.normalise(x)
            return fe.project(rep), rep
        image = fe(x)
        return image, image[:, 0]

    def forward(self, x: Tensor) -> TaggerOutput:
        image, rep = self.representation(x)
        logits, mid = self.net(image)
        return TaggerOutput(logits, torch.cat([mid, rep.mean(dim=2)], dim=1))

    def timestamp_embeddings(self, x: Tensor, frame_hop: int) -> Tensor:
        """Per-frame embeddings ``(B, F, embedding_size)``, ``F = ceil(T / frame_hop)``.

        ``T`` is the number of input-representation frames (mel frames of ``hop_length`` samples, or
        latent frames) and frame ``f`` summarises input frames ``[f·frame_hop, (f+1)·frame_hop)`` (centre
        at ``(f + 0.5)·frame_hop`` frames): each embedding block's map is averaged over frequency,
        linearly resampled along time to the ``T`` input frames, then averaged per frame; the low-level
        part averages the input representation the same way. Mid-level features keep the network's
        context (receptive field) around each frame.
        """
        if frame_hop < 1:
            raise ValueError(f"frame_hop must be >= 1, got {frame_hop}")
        image, rep = self.representation(x)
        _, maps = self.net.forward_maps(image)
        n_frames = rep.shape[2]
        parts = [
            F.interpolate(m.mean(dim=2), size=n_frames, mode="linear", align_corners=False) for m in maps
        ]
        parts.append(rep)
        seq = torch.cat(parts, dim=1)  # (B, D, T)
        pad = (-n_frames) % frame_hop
        if pad:
            seq = F.pad(seq, (0, pad), mode="replicate")
        pooled = F.avg_pool1d(seq, kernel_size=frame_hop, stride=frame_hop)
        return pooled.transpose(1, 2).contiguous()


def load_teacher_state(path: str | Path) -> dict[str, Tensor]:
    """The EfficientAT teacher checkpoint as a mel ``Tagger`` state dict (keys prefixed ``net.``).

    Only for the teacher file (``torch.load(weights_only=True)``, never a user-supplied file).
    Raises ``ValueError`` naming the file if it is not a flat tensor state dict.
    """
    path = Path(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    return {k if k.startswith(NET_PREFIX) else NET_PREFIX + k: v for k, v in state.items()}


def teacher_tagger(path: str | Path, mel_cfg: MelConfig | None = None) -> Tagger:
    """The EfficientAT mn04_as teacher as a mel ``Tagger`` (width 0.4) in eval mode, loaded strictly.

    Raises ``ValueError`` naming the file if its tensors do not match the mn04 layout.
    """
    state = load_teacher_state(path)
    head = state.get(NET_PREFIX + "classifier.5.bias")
    if head is None:
        raise ValueError(f"{path}: not an EfficientAT mn checkpoint (no classifier.5.bias)")
    num_classes = int(head.shape[0])
    model = Tagger(TaggerConfig(width=TEACHER_WIDTH, num_classes=num_classes, frontend="mel"), mel_cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise ValueError(f"{path}: does not match the mn04 layout: {first}") from None
    model.eval()
    log.info("loaded teacher %s (width %.1f, %d classes)", path, TEACHER_WIDTH, num_classes)
    return model
