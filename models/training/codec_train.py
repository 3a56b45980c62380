"""Train a compact EnCodec (transformers architecture) on the corpus; checkpoint + resume.

Recipe (CPU-friendly, no adversarial loss):
- random ``segment_s`` crops of 24 kHz mono audio, batch ``batch_size``;
- encoder → residual VQ trained here on top of the model's own quantizer modules: k-means
  initialisation of every codebook from the first batch, EMA codebook updates (decay ``ema_decay``),
  dead-code replacement by random current residuals, commitment loss, straight-through gradients and
  quantizer dropout (each step uses the quantizers of a random target bandwidth);
- decoder; loss = multi-scale mel (L1 + log L2) + ``w_wave``·L1(waveform) + ``w_commit``·commitment
  (+ ``w_mel_align``·mel alignment of the quantized latent, see ``models.training.mel_align``).
The model weights stay a plain ``transformers.EncodecModel`` state dict, so
``models.codec.codec.Codec`` loads them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.config import CodecConfig, to_dict
from models.training.checkpoint import load_checkpoint, report_step, restore_rng, rng_state, save_checkpoint
from models.training.losses import MultiScaleMelLoss, si_sdr

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodecTrainConfig:
    """Hyper-parameters of codec training (saved in checkpoints and the pack's provenance)."""

    steps: int = 4000
    batch_size: int = 8
    segment_s: float = 1.0
    lr: float = 1e-3
    w_wave: float = 1.0
    mel_eps: float = 1e-4  # log floor of the mel loss (1e-5 over-weights silent bands)
    w_commit: float = 1.0
    w_mel_align: float = 0.0  # > 0: latent follows the teacher's log-mel (models.training.mel_align)
    ema_decay: float = 0.99
    dead_threshold: float = 0.5  # EMA usage below this → code replaced
    kmeans_iters: int = 10
    init_batches: int = 8  # batches pooled for the k-means initialisation
    checkpoint_every_s: float = 180.0
    log_every: int = 50
    seed: int = 0


def encodec_config(cfg: CodecConfig) -> Any:
    """The ``transformers.EncodecConfig`` for ``cfg``."""
    from transformers import EncodecConfig

    return EncodecConfig(
        sampling_rate=cfg.sampling_rate,
        num_filters=cfg.num_filters,
        upsampling_ratios=list(cfg.upsampling_ratios),
        hidden_size=cfg.hidden_size,
        codebook_size=cfg.codebook_size,
        codebook_dim=cfg.hidden_size,
        target_bandwidths=list(cfg.target_bandwidths),
        num_lstm_layers=cfg.num_lstm_layers,
        num_residual_layers=cfg.num_residual_layers,
        norm_type=cfg.norm_type,
        use_causal_conv=cfg.use_causal_conv,
        audio_channels=1,
        normalize=False,
        chunk_length_s=None,
        overlap=None,
    )


def build_model(cfg: CodecConfig) -> Any:
    """A randomly initialised ``EncodecModel`` whose codebooks are marked un-initialised."""
    from transformers import EncodecModel

    model: Any = EncodecModel(encodec_config(cfg))
    reinit_convs(model)
    for layer in model.quantizer.layers:
        layer.codebook.inited.fill_(0.0)
    return model


@torch.no_grad()
def reinit_convs(model: Any) -> None:
    """Variance-preserving (Kaiming normal, ELU/linear gain 1) init of every weight-normed conv.

    transformers' ``_init_weights`` applies Kaiming init to the *computed* weight of parametrized
    (weight-norm) convs, which leaves the stored ``g``/``v`` at PyTorch's default, variance-shrinking
    init: after ~15 layers the encoder output barely depends on the audio and training stalls.
    Here ``v`` is drawn Kaiming-normal and ``g`` set to ``‖v‖`` so the effective weight is ``v``.
    """
    from torch.nn.utils import parametrize

    m: Any
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)) and parametrize.is_parametrized(
            m, "weight"
        ):
            p: Any = getattr(m.parametrizations, "weight")  # noqa: B009 (typed access)
            v = p.original1
            fan_in = v.shape[1] * v.shape[2] if isinstance(m, torch.nn.Conv1d) else v.shape[0] * v.shape[2]
            if isinstance(m, torch.nn.ConvTranspose1d):
                fan_in = v.shape[0] * v.shape[2] // max(1, m.stride[0])
            v.normal_(0.0, (1.0 / fan_in) ** 0.5)
            wn_dim = getattr(p[0], "dim", 0)
            dims = [d for d in range(v.dim()) if d != wn_dim % v.dim()] if wn_dim is not None else None
            p.original0.copy_(torch.linalg.vector_norm(v, dim=dims, keepdim=True).view_as(p.original0))
            if m.bias is not None:
                m.bias.zero_()


def n_quantizers(cfg: CodecConfig, bandwidth: float) -> int:
    """Number of RVQ stages used at ``bandwidth`` kbps (as transformers computes it)."""
    bits = int(np.log2(cfg.codebook_size))
    return max(1, int(bandwidth * 1000 // (cfg.frame_rate * bits)))


def _kmeans(x: Tensor, k: int, iters: int, gen: torch.Generator) -> Tensor:
    """k-means centroids ``(k, D)`` of ``x`` ``(N, D)`` (empty clusters re-seeded from the data)."""
    idx = torch.randint(0, x.shape[0], (k,), generator=gen)
    centroids = x[idx].clone()
    for _ in range(iters):
        assign = torch.cdist(x, centroids).argmin(dim=1)
        counts = torch.bincount(assign, minlength=k).float()
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            centroids[empty] = x[torch.randint(0, x.shape[0], (int(empty.sum()),), generator=gen)]
    return centroids


def quantize_train(
    model: Any, z: Tensor, nq: int, tcfg: CodecTrainConfig, gen: torch.Generator, train: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Residual VQ of ``z`` ``(B, D, T)`` with ``nq`` stages.

    Returns (straight-through quantized latent ``(B, D, T)``, commitment loss, codes ``(nq, B, T)``).
    In training mode codebooks are k-means initialised (first call) and EMA-updated.
    """
    residual = z
    out = torch.zeros_like(z)
    commit = z.new_zeros(())
    codes = []
    for layer in model.quantizer.layers[:nq]:
        cb = layer.codebook
        flat = residual.detach().permute(0, 2, 1).reshape(-1, z.shape[1])
        if train and cb.inited.item() == 0:
            cents = _kmeans(flat, cb.codebook_size, tcfg.kmeans_iters, gen)
            cb.embed.copy_(cents)
            cb.embed_avg.copy_(cents)
            cb.cluster_size.fill_(1.0)
            cb.inited.fill_(1.0)
        ind = torch.cdist(flat, cb.embed).argmin(dim=1)
        q_flat = cb.embed[ind]
        if train:
            with torch.no_grad():
                onehot_counts = torch.bincount(ind, minlength=cb.codebook_size).float()
                sums = torch.zeros_like(cb.embed).index_add_(0, ind, flat)
                d = tcfg.ema_decay
                cb.cluster_size.mul_(d).add_(onehot_counts, alpha=1 - d)
                cb.embed_avg.mul_(d).add_(sums, alpha=1 - d)
                n = cb.cluster_size.sum()
                smoothed = (cb.cluster_size + 1e-5) / (n + cb.codebook_size * 1e-5) * n
                cb.embed.copy_(cb.embed_avg / smoothed[:, None])
                dead = cb.cluster_size < tcfg.dead_threshold
                n_dead = int(dead.sum())
                if n_dead:
                    pick = torch.randint(0, flat.shape[0], (n_dead,), generator=gen)
                    cb.embed[dead] = flat[pick]
                    cb.embed_avg[dead] = flat[pick]
                    cb.cluster_size[dead] = 1.0
        q = q_flat.view(z.shape[0], z.shape[2], z.shape[1]).permute(0, 2, 1)
        commit = commit + torch.mean((residual - q.detach()) ** 2)
        out = out + q
        residual = residual - q.detach()
        codes.append(ind.view(z.shape[0], z.shape[2]))
    return z + (out - z).detach(), commit / max(nq, 1), torch.stack(codes)  # straight-through


class SegmentSampler:
    """Random fixed-length crops from a list of 24 kHz float32 clips (short clips are zero-padded)."""

    def __init__(self, clips: Sequence[np.ndarray], segment: int):
        if not clips:
            raise ValueError("no training audio")
        self.clips = list(clips)
        self.segment = segment
        lengths = np.array([max(len(c), 1) for c in self.clips], dtype=np.float64)
        self.p = lengths / lengths.sum()

    def batch(self, rng: np.random.Generator, batch_size: int) -> Tensor:
        """``(batch_size, segment)`` float32 batch, each crop with a random gain of −10…0 dB."""
        out = np.zeros((batch_size, self.segment), dtype=np.float32)
        for b in range(batch_size):
            clip = self.clips[int(rng.choice(len(self.clips), p=self.p))]
            if len(clip) > self.segment:
                start = int(rng.integers(0, len(clip) - self.segment + 1))
                seg = clip[start : start + self.segment]
            else:
                seg = clip
            peak = float(np.abs(seg).max()) if len(seg) else 0.0
            gain = 10 ** (-rng.uniform(0, 10) / 20) / max(peak, 1e-3) if peak > 1e-4 else 1.0
            out[b, : len(seg)] = seg * min(gain, 10.0)
        return torch.from_numpy(out)


def _bandwidth_nqs(cfg: CodecConfig) -> list[int]:
    return [n_quantizers(cfg, bw) for bw in cfg.target_bandwidths]


def train_codec(
    cfg: CodecConfig,
    tcfg: CodecTrainConfig,
    clips: Sequence[np.ndarray],
    work_dir: str | Path,
    max_steps: int | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
    init_state: dict[str, Tensor] | None = None,
) -> Any:
    """Train (or resume from ``work_dir/codec_ckpt.safetensors``) and return the ``EncodecModel``.

    ``init_state`` (a trained codec's state dict, codebooks included) warm-starts a fresh run: the
    weights are loaded strictly, the optimiser and schedule start anew, k-means initialisation is skipped.

    ``max_steps`` stops early (for a budget or a test) after saving a checkpoint; the run continues from
    there when called again. Deterministic on CPU for a given seed and thread count.
    """
    work_dir = Path(work_dir)
    ckpt_path = work_dir / "codec_ckpt.safetensors"
    torch.manual_seed(tcfg.seed)
    model = build_model(cfg)
    if init_state is not None:
        model.load_state_dict(init_state, strict=True)
    align = None
    params = list(model.parameters())
    if tcfg.w_mel_align > 0:
        from models.training.mel_align import MelAlign

        align = MelAlign(cfg.hidden_size, cfg.sampling_rate, cfg.hop_length)
        params += list(align.parameters())
    opt = torch.optim.AdamW(params, lr=tcfg.lr, betas=(0.5, 0.9), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=tcfg.lr, total_steps=tcfg.steps, pct_start=0.05, anneal_strategy="cos"
    )
    rng = np.random.default_rng(tcfg.seed)
    gen = torch.Generator().manual_seed(tcfg.seed)
    step = 0
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        if state["codec_cfg"] != to_dict(cfg) or state["train_cfg"]["steps"] != tcfg.steps:
            raise ValueError(f"{ckpt_path}: checkpoint was made with another configuration")
        model.load_state_dict(state["model"])
        if align is not None:
            align.load_state_dict(state["align"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        restore_rng(rng, state["rng"])
        gen.set_state(state["gen"])
        step = int(state["step"])
        log.info("resumed codec training at step %d", step)
    sampler = SegmentSampler(clips, int(round(tcfg.segment_s * cfg.sampling_rate)))
    mel_loss = MultiScaleMelLoss(cfg.sampling_rate, eps=tcfg.mel_eps)
    nqs = _bandwidth_nqs(cfg)
    stop = tcfg.steps if max_steps is None else min(tcfg.steps, max_steps)
    last_save = time.monotonic()
    t0 = time.monotonic()
    model.train()

    def save() -> None:
        save_checkpoint(
            ckpt_path,
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "rng": rng_state(rng),
                "gen": gen.get_state(),
                "step": step,
                "codec_cfg": to_dict(cfg),
                "train_cfg": dataclasses.asdict(tcfg),
                **({"align": align.state_dict()} if align is not None else {}),
            },
        )

    if step == 0 and stop > 0 and init_state is None:
        with torch.no_grad():
            x0 = sampler.batch(rng, tcfg.batch_size * tcfg.init_batches)
            quantize_train(model, model.encoder(x0[:, None, :]), max(nqs), tcfg, gen, train=True)
    while step < stop:
        x = sampler.batch(rng, tcfg.batch_size)
        nq = nqs[int(rng.integers(0, len(nqs)))]
        z = model.encoder(x[:, None, :])
        zq, commit, _ = quantize_train(model, z, nq, tcfg, gen, train=True)
        y = model.decoder(zq)[:, 0, : x.shape[-1]]
        l_mel = mel_loss(y, x)
        l_wave = (y - x).abs().mean()
        loss = l_mel + tcfg.w_wave * l_wave + tcfg.w_commit * commit
        l_align = align(zq, x) if align is not None else None
        if l_align is not None:
            loss = loss + tcfg.w_mel_align * l_align
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        step += 1
        if step % tcfg.log_every == 0 or step == stop:
            rec = {
                "step": step,
                "loss": loss.item(),
                "mel": l_mel.item(),
                "wave": l_wave.item(),
                "commit": commit.item(),
                **({"align": l_align.item()} if l_align is not None else {}),
                "nq": nq,
                "elapsed_s": time.monotonic() - t0,
            }
            report_step(log, "codec", rec, on_log)
        if time.monotonic() - last_save > tcfg.checkpoint_every_s:
            save()
            last_save = time.monotonic()
    save()
    model.eval()
    return model


@torch.no_grad()
def evaluate_codec(model: Any, cfg: CodecConfig, clips: Sequence[np.ndarray], seconds: float = 5.0) -> dict:
    """Reconstruction quality per bandwidth on held-out clips and the encoder's cost.

    Returns ``{"per_bandwidth": {bw: {"mel_distance", "si_sdr_db"}}, "encoder_rtf", "params"}``;
    clips are cut/padded to ``seconds``; ``encoder_rtf`` = encode time / audio duration (1 thread as set);
    ``mel_distance`` = mean |Δ log10 mel| over windows 32…2048 (floor 1e-4), lower is better.
    """
    model.eval()
    n = int(seconds * cfg.sampling_rate)
    batch = np.zeros((len(clips), n), dtype=np.float32)
    for i, c in enumerate(clips):
        batch[i, : min(n, len(c))] = c[:n]
    x = torch.from_numpy(batch)
    mel = MultiScaleMelLoss(cfg.sampling_rate, eps=1e-4)
    t0 = time.perf_counter()
    z = torch.cat([model.encoder(x[i : i + 8, None, :]) for i in range(0, len(x), 8)])
    enc_time = time.perf_counter() - t0
    res: dict[str, Any] = {"per_bandwidth": {}}
    for bw in cfg.target_bandwidths:
        nq = n_quantizers(cfg, bw)
        gen = torch.Generator().manual_seed(0)
        ys = []
        for i in range(0, len(x), 8):
            zq, _, _ = quantize_train(model, z[i : i + 8], nq, CodecTrainConfig(), gen, train=False)
            ys.append(model.decoder(zq)[:, 0, :n])
        y = torch.cat(ys)
        res["per_bandwidth"][str(bw)] = {
            "n_q": nq,
            "mel_distance": float(mel.distance(y, x).mean()),
            "si_sdr_db": float(si_sdr(y, x).mean()),
        }
    res["encoder_rtf"] = enc_time / (len(clips) * seconds)
    res["encoder_params"] = sum(p.numel() for p in model.encoder.parameters())
    res["params"] = sum(p.numel() for p in model.parameters())
    res["clips"] = len(clips)
    return res
