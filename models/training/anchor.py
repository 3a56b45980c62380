"""Embedding anchor: hold a student's mid-level embedding near a frozen reference tagger's while it is
distilled (``encotag train tagger --anchor DIR --anchor-kd W``).

Distillation on the everyday corpus raises teacher agreement but lowers the linear probes on the speech
tasks (docs/TRAINING.md, session 30): the scene embedding drifts from the one the shipped tagger learnt.
The anchor is a second copy of the network, loaded from a reference tagger (e.g. the shipped pack) and
frozen in eval mode; on every training batch it embeds the same latent input ``(B, 128, T)`` as the
student, and the loss is the mean over the batch and the mid-level dims of
``((student - anchor) / sigma) ** 2``, ``sigma`` (``(n_mid,)``) the per-dim spread of the anchor's
embeddings over a few batches drawn once, with their own random stream, before training (the same on
resume). The low-level part of the embedding (the latent's own statistics) does not depend on the
weights and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

SCALE_BATCHES = 8  # batches whose anchor embeddings set sigma
MIN_SCALE = 1e-3


class EmbeddingAnchor:
    """A frozen reference network and the per-dim scale of its mid-level embedding.

    ``model``: a ``Tagger`` with the student's architecture (its weights are the anchor; the caller loads
    them strictly, so the mid-level sizes match); ``latents``: latent batches ``(B, D, T)`` float32 that
    set ``sigma``."""

    def __init__(self, model: Any, latents: Sequence[Tensor]) -> None:
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.n_mid: int = model.net.mid_embedding_size
        with torch.no_grad():
            embs = torch.cat([self.embed(x) for x in latents])
        self.scale = embs.std(dim=0).clamp_min(MIN_SCALE)

    @torch.no_grad()
    def embed(self, x: Tensor) -> Tensor:
        """Latent ``(B, D, T)`` → the reference's mid-level embedding ``(B, n_mid)``."""
        out: Tensor = self.model(x).embedding[:, : self.n_mid]
        return out

    def loss(self, x: Tensor, student_embedding: Tensor) -> Tensor:
        """The anchor term for a batch: ``x`` the latent the student saw, ``student_embedding`` its
        ``(B, embedding_size)`` output (gradients flow through it only)."""
        target = self.embed(x)
        return (((student_embedding[:, : self.n_mid] - target) / self.scale) ** 2).mean()
