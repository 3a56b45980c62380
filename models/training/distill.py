"""Distil the teacher (EfficientAT mn04_as on 32 kHz log-mel) into the codec-latent MobileNet.

Loss L = (1-β)·BCE(hard teacher labels, p ≥ 0.5) + β·KD(teacher probabilities, τ), OneCycleLR (cosine),
mixup on latents and targets, random whole-clip or ``seg_s``-segment samples (so the student also learns
the short windows the app analyses). The student's MobileNet starts from the teacher's weights when the
widths match (``teacher_init``): only the input representation differs. Checkpoints are atomic and the run
resumes bit-identically (CPU, same thread count).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models.config import TaggerConfig
from models.training.checkpoint import load_checkpoint, report_step, restore_rng, rng_state, save_checkpoint
from models.training.losses import distillation_loss, listwise_kd

log = logging.getLogger(__name__)

THRESHOLD = 0.5
SHORT_SEG_S = 1.0  # the short segments' length: the app's analysis window


@dataclass(frozen=True)
class DistillConfig:
    """Hyper-parameters of tagger distillation (saved in checkpoints and the pack's provenance)."""

    frontend: str = "latent_direct"
    width: float = 0.4
    steps: int = 2000
    batch_size: int = 16
    lr: float = 8e-4
    pct_start: float = 0.04  # 8 warm-up epochs of 200 (METHOD.md)
    weight_decay: float = 1e-4
    beta: float = 0.9
    tau: float = 1.0
    mixup_alpha: float = 0.3
    p_segment: float = 1.0  # share of 2-s segment batches (the app analyses 1-s windows)
    p_short: float = 0.0  # share of those segment batches taken from the 1-s segments (short_logits)
    feat_kd: float = 0.0  # weight of the mid-level embedding loss on 2-s segments (seg_emb; 0: off)
    mask_time: float = 0.0  # latent masking: one span of up to this share of the frames per example (0: off)
    mask_chan: float = 0.0  # latent masking: up to this share of the latent's channels per example (0: off)
    rank_kd: float = 0.0  # weight of the listwise (softmax over classes) KD term (0: off)
    rank_tau: float = 1.0  # its temperature on the teacher's and the student's logits
    anchor_kd: float = 0.0  # weight of the embedding anchor to a frozen reference tagger (anchor.py; 0: off)
    teacher_init: bool = True
    seed: int = 0
    checkpoint_every_s: float = 180.0
    log_every: int = 25


@dataclass
class DistillData:
    """Cached training material: codes int16 ``(N, K, n_q, T)``, teacher logits float16 ``(N, K, C)``,
    per-segment logits ``(N, K, S, C)``, optionally those of shorter segments ``(N, K, S', C)``
    (``S' > S``; :data:`SHORT_SEG_S` long) and the teacher's embeddings of the segments
    ``(N, K, S, D)`` (its ``embedding_layout``: mid-level blocks first)."""

    codes: np.ndarray
    logits: np.ndarray
    seg_logits: np.ndarray
    short_logits: np.ndarray | None = None
    seg_emb: np.ndarray | None = None
    seg_weights: np.ndarray | None = None  # (N, S) class-balanced sampling weights of the 2-s segments

    @property
    def n_seg(self) -> int:
        return int(self.seg_logits.shape[2])


def codebook_table(codec: Any) -> Tensor:
    """``(n_q_max, codebook_size, D)`` float32 codebook vectors of a ``models.codec.codec.Codec``."""
    return torch.stack([layer.codebook.embed.detach().float() for layer in codec.quantizer.layers])


def latent_from_codes(codes: Tensor, table: Tensor) -> Tensor:
    """Codes ``(B, n_q, T)`` → quantized latent ``(B, D, T)`` (sum of codebook vectors, as ``unembed``)."""
    nq = codes.shape[1]
    offs = (torch.arange(nq, device=codes.device) * table.shape[1]).view(1, nq, 1)
    flat = table[:nq].reshape(-1, table.shape[2])
    return F.embedding(codes.long() + offs, flat).sum(dim=1).permute(0, 2, 1).contiguous()


def build_student(
    dcfg: DistillConfig, teacher_state: dict[str, Tensor] | None, init_from: str = "the teacher"
) -> Any:
    """The latent ``Tagger``; initialised from ``teacher_state`` (the teacher's weights, or an earlier
    tagger's, named by ``init_from`` in the log) where the shapes allow."""
    from models.nets.tagger import Tagger

    model = Tagger(TaggerConfig(width=dcfg.width, frontend=dcfg.frontend))  # type: ignore[arg-type]
    if dcfg.teacher_init and teacher_state is not None:
        own = model.state_dict()
        if _narrower(teacher_state, own):
            from models.training.widen import pad_widen_state

            model.load_state_dict(pad_widen_state(teacher_state, own), strict=True)
            log.info("student widened from %s (function-preserving, width %s)", init_from, dcfg.width)
            return model
        copied = 0
        for k, v in teacher_state.items():
            if k in own and own[k].shape == v.shape:
                own[k] = v.clone()
                copied += 1
            elif (
                k in own
                and own[k].dim() == 4
                and v.dim() == 4
                and own[k].shape[1] != v.shape[1]
                and own[k].shape[0] == v.shape[0]
                and v.shape[1] == 1
            ):
                own[k] = v.repeat(1, own[k].shape[1], 1, 1) / own[k].shape[1]
                copied += 1
        model.load_state_dict(own, strict=True)
        log.info("student initialised from %s: %d/%d tensors", init_from, copied, len(teacher_state))
    return model


def _narrower(state: dict[str, Tensor], own: dict[str, Tensor]) -> bool:
    """Whether ``state`` is the same network as ``own`` at a smaller width (same keys, every tensor fits
    in its counterpart, some smaller): a warm start to widen rather than copy tensor by tensor."""
    if set(state) != set(own):
        return False
    fits = all(
        v.dim() == own[k].dim() and all(a <= b for a, b in zip(v.shape, own[k].shape, strict=True))
        for k, v in state.items()
    )
    return fits and any(v.shape != own[k].shape for k, v in state.items())


class Batch(NamedTuple):
    """codes ``(B, n_q, T)`` long; teacher logits ``(B, C)`` float32; the teacher's embeddings ``(B, D)``
    float32 of a batch of 2-s segments when ``DistillData.seg_emb`` holds them, else None."""

    codes: Tensor
    logits: Tensor
    emb: Tensor | None


def _batch(
    data: DistillData, rng: np.random.Generator, bs: int, p_segment: float, p_short: float = 0.0
) -> Batch:
    """A batch of random clips/augmentations: whole clips, segments, or (a ``p_short`` share of the
    segment batches) short segments."""
    n, k = data.codes.shape[:2]
    emb = None
    idx = rng.integers(0, n, bs)
    aug = rng.integers(0, k, bs)
    if rng.random() < p_segment:
        seg_logits = data.seg_logits
        if p_short > 0 and data.short_logits is not None and rng.random() < p_short:
            seg_logits = data.short_logits
        n_seg = seg_logits.shape[2]
        if data.seg_weights is not None and seg_logits is data.seg_logits:
            w = data.seg_weights.reshape(-1).astype(np.float64)
            flat = rng.choice(len(w), size=bs, p=w / w.sum())
            idx, seg = flat // n_seg, flat % n_seg
        else:
            seg = rng.integers(0, n_seg, bs)
        sf = data.codes.shape[3] // n_seg
        codes = np.stack(
            [data.codes[i, a, :, s * sf : (s + 1) * sf] for i, a, s in zip(idx, aug, seg, strict=True)]
        )
        logits = seg_logits[idx, aug, seg]
        if data.seg_emb is not None and seg_logits is data.seg_logits:
            emb = torch.from_numpy(data.seg_emb[idx, aug, seg].astype(np.float32))
    else:
        codes = data.codes[idx, aug]
        logits = data.logits[idx, aug]
    codes_t, logits_t = torch.from_numpy(codes.astype(np.int64)), torch.from_numpy(logits.astype(np.float32))
    return Batch(codes_t, logits_t, emb)


def mask_latent(x: Tensor, rng: np.random.Generator, time_share: float, chan_share: float) -> Tensor:
    """SpecAugment-style masking of a latent batch ``(B, D, T)``: per example, one span of up to
    ``time_share`` of the frames and a random subset of up to ``chan_share`` of the channels are set to
    that example's time-mean (a plausible latent, unlike zeros). Returns a new tensor; ``x`` is kept."""
    b, d, t = x.shape
    out = x.clone()
    mean = x.mean(dim=2)  # (B, D)
    for i in range(b):
        if time_share > 0:
            w = int(rng.integers(0, int(time_share * t) + 1))
            s = int(rng.integers(0, t - w + 1))
            out[i, :, s : s + w] = mean[i, :, None]
        if chan_share > 0:
            k = int(rng.integers(0, int(chan_share * d) + 1))
            ch = torch.from_numpy(rng.choice(d, size=k, replace=False)).to(x.device)
            out[i, ch, :] = mean[i, ch, None]
    return out


def same_config(saved: dict[str, Any], dcfg: DistillConfig) -> bool:
    """Whether a checkpoint's ``distill_cfg`` is ``dcfg``; fields added since it was written count at
    their defaults (so older runs still resume)."""
    full = dataclasses.asdict(DistillConfig()) | dict(saved)
    return full == dataclasses.asdict(dcfg)


def embedding_scale(dcfg: DistillConfig, data: DistillData, n_mid: int, size: int) -> Tensor | None:
    """Per-dim standard deviation ``(n_mid,)`` of the teacher's mid-level segment embeddings, which
    scales the embedding loss; None when ``dcfg.feat_kd`` is 0. ``size``: the student's embedding size
    (``n_mid`` mid-level dims, then the low-level ones). Raises ValueError when the embeddings are
    missing or laid out otherwise (a student of another width than the teacher's)."""
    if dcfg.feat_kd <= 0:
        return None
    if data.seg_emb is None:
        raise ValueError("feat_kd > 0 needs the teacher's segment embeddings (DistillData.seg_emb)")
    if data.seg_emb.shape[-1] != size:
        raise ValueError(
            f"feat_kd: the teacher's embeddings have {data.seg_emb.shape[-1]} dims, the student's "
            f"{size}: train at the teacher's width"
        )
    flat = data.seg_emb[..., :n_mid].reshape(-1, n_mid).astype(np.float32)
    return torch.from_numpy(flat.std(axis=0) + 1e-3)


def _anchor(
    dcfg: DistillConfig,
    state: dict[str, Tensor] | None,
    data: DistillData,
    table: Tensor,
    device: str,
) -> Any:
    """The run's :class:`~models.training.anchor.EmbeddingAnchor`, or None when ``anchor_kd`` is 0; its
    scale from batches of a random stream of its own (so a resumed run gets the same)."""
    if dcfg.anchor_kd <= 0:
        return None
    if state is None:
        raise ValueError("anchor_kd > 0 needs the anchor tagger's weights (--anchor)")
    from models.nets.tagger import Tagger
    from models.training.anchor import SCALE_BATCHES, EmbeddingAnchor

    ref = Tagger(TaggerConfig(width=dcfg.width, frontend=dcfg.frontend))  # type: ignore[arg-type]
    try:
        ref.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"anchor: not a tagger of the student's width {dcfg.width}") from e
    arng = np.random.default_rng([dcfg.seed, 7])
    xs = [
        latent_from_codes(_batch(data, arng, dcfg.batch_size, 1.0).codes.to(device), table)
        for _ in range(SCALE_BATCHES)
    ]
    return EmbeddingAnchor(ref.to(device), xs)


def train_tagger(
    dcfg: DistillConfig,
    data: DistillData,
    table: Tensor,
    work_dir: str | Path,
    teacher_state: dict[str, Tensor] | None = None,
    max_steps: int | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
    init_from: str = "the teacher",
    device: str = "cpu",
    anchor_state: dict[str, Tensor] | None = None,
) -> Any:
    """Distil (or resume from ``work_dir/tagger_ckpt.safetensors``); returns the student in eval mode,
    on the CPU. ``init_from`` names where ``teacher_state`` came from, for the log. ``device``: where the
    network trains (``"cuda"`` on a GPU); the batches are drawn on the CPU by the same random stream, so
    a run samples the same segments on any device (the arithmetic, and so the weights, differ slightly).
    Checkpoints are stored on the CPU and resume on either. ``anchor_state``: the reference tagger's
    weights (same architecture) when ``dcfg.anchor_kd`` > 0 (:mod:`models.training.anchor`)."""
    work_dir = Path(work_dir)
    ckpt_path = work_dir / "tagger_ckpt.safetensors"
    if dcfg.p_short > 0 and data.short_logits is None:
        raise ValueError("p_short > 0 needs the short-segment teacher logits (DistillData.short_logits)")
    torch.manual_seed(dcfg.seed)
    model = build_student(dcfg, teacher_state, init_from).to(device)
    table = table.to(device)
    n_mid = model.net.mid_embedding_size
    emb_sd = embedding_scale(dcfg, data, n_mid, model.embedding_size)
    if emb_sd is not None:
        emb_sd = emb_sd.to(device)
    anchor = _anchor(dcfg, anchor_state, data, table, device)
    opt = torch.optim.AdamW(model.parameters(), lr=dcfg.lr, weight_decay=dcfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=dcfg.lr, total_steps=dcfg.steps, pct_start=dcfg.pct_start, anneal_strategy="cos"
    )
    rng = np.random.default_rng(dcfg.seed)
    step = 0
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        if not same_config(state["distill_cfg"], dcfg):
            raise ValueError(f"{ckpt_path}: checkpoint was made with another configuration")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        restore_rng(rng, state["rng"])
        step = int(state["step"])
        log.info("resumed tagger training at step %d", step)
    stop = dcfg.steps if max_steps is None else min(dcfg.steps, max_steps)
    t0 = last_save = time.monotonic()
    model.train()

    def save() -> None:
        save_checkpoint(
            ckpt_path,
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "rng": rng_state(rng),
                "step": step,
                "distill_cfg": dataclasses.asdict(dcfg),
            },
        )

    while step < stop:
        codes, t_logits, t_emb = _batch(data, rng, dcfg.batch_size, dcfg.p_segment, dcfg.p_short)
        codes, t_logits = codes.to(device), t_logits.to(device)
        t_emb = t_emb.to(device) if t_emb is not None else None
        x = latent_from_codes(codes, table)
        probs = torch.sigmoid(t_logits / dcfg.tau)
        hard = (torch.sigmoid(t_logits) >= THRESHOLD).float()
        order = torch.softmax(t_logits / dcfg.rank_tau, dim=-1) if dcfg.rank_kd > 0 else None
        if dcfg.mixup_alpha > 0:
            lam_np = rng.beta(dcfg.mixup_alpha, dcfg.mixup_alpha, len(x)).astype(np.float32)
            lam = torch.from_numpy(np.maximum(lam_np, 1 - lam_np)).to(device)
            perm = torch.from_numpy(rng.permutation(len(x))).to(device)
            x = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[perm]
            probs = lam[:, None] * probs + (1 - lam[:, None]) * probs[perm]
            hard = lam[:, None] * hard + (1 - lam[:, None]) * hard[perm]
            if order is not None:
                order = lam[:, None] * order + (1 - lam[:, None]) * order[perm]
            if t_emb is not None:
                t_emb = lam[:, None] * t_emb + (1 - lam[:, None]) * t_emb[perm]
        if dcfg.mask_time > 0 or dcfg.mask_chan > 0:
            x = mask_latent(x, rng, dcfg.mask_time, dcfg.mask_chan)
        out = model(x)
        loss = distillation_loss(out.logits, probs, hard, beta=dcfg.beta, tau=dcfg.tau)
        rank = None
        if order is not None:
            rank = listwise_kd(out.logits, order, dcfg.rank_tau)
            loss = loss + dcfg.rank_kd * rank
        feat = None
        if emb_sd is not None and t_emb is not None:
            feat = (((out.embedding[:, :n_mid] - t_emb[:, :n_mid]) / emb_sd) ** 2).mean()
            loss = loss + dcfg.feat_kd * feat
        anc = None
        if anchor is not None:
            anc = anchor.loss(x, out.embedding)
            loss = loss + dcfg.anchor_kd * anc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % dcfg.log_every == 0 or step == stop:
            rec = {
                "step": step,
                "loss": loss.item(),
                "lr": float(sched.get_last_lr()[0]),
                "elapsed_s": time.monotonic() - t0,
            }
            if feat is not None:
                rec["feat"] = feat.item()
            if rank is not None:
                rec["rank"] = rank.item()
            if anc is not None:
                rec["anchor"] = anc.item()
            report_step(log, "tagger", rec, on_log)
        if time.monotonic() - last_save > dcfg.checkpoint_every_s:
            save()
            last_save = time.monotonic()
    save()
    model.cpu().eval()
    return model


@torch.no_grad()
def data_key(paths: list[str], extra: dict[str, Any]) -> str:
    """Short hash identifying a clip list + feature configuration."""
    h = hashlib.sha256(json.dumps([paths, extra], sort_keys=True).encode())
    return h.hexdigest()[:12]
