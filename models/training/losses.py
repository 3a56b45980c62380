"""Losses and quality measures for codec and tagger training (pure torch, no torchaudio).

- :class:`MultiScaleMelLoss`: reconstruction loss over STFT windows 2^5 … 2^11 at 24 kHz: L1 on log10-mel
  plus L1 on mel magnitudes (divided by the window length, so every scale weighs alike), averaged over scales.
- :func:`mel_distance`: the same multi-scale log-mel L1 distance used to *report* codec quality.
- :func:`si_sdr`: scale-invariant signal-to-distortion ratio in dB.
- :func:`distillation_loss`: (1-β)·BCE(hard labels) + β·KD(teacher probabilities, τ).
- :func:`listwise_kd`: KL between the teacher's and the student's softmax over the classes of each example
  (the order of the classes within a segment, which top-1 and top-5 agreement measure).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> Tensor:
    """Triangular HTK-scale mel filters, float32 ``(n_mels, n_fft // 2 + 1)``."""
    fmax = sr / 2 if fmax is None else fmax

    def hz_to_mel(f: Tensor) -> Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    def mel_to_hz(m: Tensor) -> Tensor:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(
        float(hz_to_mel(torch.tensor(fmin))), float(hz_to_mel(torch.tensor(fmax))), n_mels + 2
    )
    hz = mel_to_hz(mels.double())
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None] - lower) / (centre - lower).clamp_min(1e-9)
    down = (upper - freqs[None]) / (upper - centre).clamp_min(1e-9)
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


class MultiScaleMelLoss(nn.Module):
    """Multi-scale mel reconstruction loss on ``(B, n)`` float32 waveforms at ``sr``.

    Scales: window ``2**i`` for ``i`` in ``exponents``, hop = window // 4, ``n_mels`` = min(64, window // 4)
    (small windows get fewer bands so no band is empty).
    """

    def __init__(
        self,
        sr: int = 24000,
        exponents: tuple[int, ...] = (5, 6, 7, 8, 9, 10, 11),
        n_mels: int = 64,
        w_lin: float = 1.0,
        eps: float = 1e-5,
    ):
        super().__init__()
        self.exponents = exponents
        self.w_lin = w_lin
        self.eps = eps
        for e in exponents:
            n = 2**e
            self.register_buffer(f"fb{e}", mel_filterbank(sr, n, min(n_mels, n // 4)), persistent=False)
            self.register_buffer(f"win{e}", torch.hann_window(n), persistent=False)

    def mels(self, x: Tensor, e: int) -> Tensor:
        """Mel magnitudes ``(B, n_mels, frames)`` of ``x`` ``(B, n)`` at window ``2**e``."""
        n = 2**e
        spec = torch.stft(
            x,
            n,
            hop_length=n // 4,
            window=getattr(self, f"win{e}"),
            return_complex=True,
            center=True,
            pad_mode="reflect" if x.shape[-1] > n // 2 else "constant",
        )
        return getattr(self, f"fb{e}") @ spec.abs()

    def forward(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """Mean over scales of L1(log10 mel) + ``w_lin``·L1(mel / window) (a scalar)."""
        total = x.new_zeros(())
        for e in self.exponents:
            m_hat, m = self.mels(x_hat, e), self.mels(x, e)
            log_l1 = (torch.log10(m_hat + self.eps) - torch.log10(m + self.eps)).abs().mean()
            lin_l1 = (m_hat - m).abs().mean() / 2**e
            total = total + log_l1 + self.w_lin * lin_l1
        return total / len(self.exponents)

    @torch.no_grad()
    def distance(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """Per-item multi-scale log-mel L1 distance ``(B,)`` (lower is better; reported figure)."""
        out = x.new_zeros(x.shape[0])
        for e in self.exponents:
            lm_hat = torch.log10(self.mels(x_hat, e) + self.eps)
            lm = torch.log10(self.mels(x, e) + self.eps)
            out = out + (lm_hat - lm).abs().mean(dim=(1, 2))
        return out / len(self.exponents)


def mel_distance(x_hat: Tensor, x: Tensor, sr: int = 24000) -> Tensor:
    """Multi-scale log10-mel L1 distance per item ``(B,)`` between ``(B, n)`` waveforms at ``sr``."""
    return MultiScaleMelLoss(sr).to(x.device).distance(x_hat, x)


def si_sdr(x_hat: Tensor, x: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale-invariant SDR in dB per item ``(B,)`` for ``(B, n)`` estimate and reference (means removed)."""
    x = x - x.mean(dim=-1, keepdim=True)
    x_hat = x_hat - x_hat.mean(dim=-1, keepdim=True)
    alpha = (x_hat * x).sum(-1, keepdim=True) / (x.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * x
    noise = x_hat - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def distillation_loss(
    logits: Tensor, teacher_probs: Tensor, labels: Tensor, beta: float = 0.9, tau: float = 1.0
) -> Tensor:
    """``(1-β)·BCE(logits, labels) + β·KD``; KD = BCE between σ(logits/τ) and the teacher's soft targets.

    ``logits``, ``teacher_probs`` and ``labels`` are ``(B, C)`` float32; ``teacher_probs`` are the
    teacher's sigmoid outputs at temperature τ (τ = 1: its plain probabilities).
    """
    hard = F.binary_cross_entropy_with_logits(logits, labels)
    soft = F.binary_cross_entropy_with_logits(logits / tau, teacher_probs) * (tau**2)
    return (1.0 - beta) * hard + beta * soft


def listwise_kd(logits: Tensor, target: Tensor, tau: float = 1.0) -> Tensor:
    """Mean over the batch of ``τ²·KL(target ‖ softmax(logits / τ))``, a scalar.

    ``logits`` ``(B, C)`` float32 are the student's; ``target`` ``(B, C)`` is a distribution over the
    classes per row (the teacher's ``softmax(teacher_logits / τ)``, or a mixup blend of two such rows).
    The per-class BCE of :func:`distillation_loss` weighs each class alone, so a student can keep every
    label's probability close to the teacher's and still rank Music above the teacher's top class on a
    segment where both are low; this term asks for the teacher's order of the classes within the segment.
    It is unchanged by adding a constant to a row of logits.
    """
    return F.kl_div(F.log_softmax(logits / tau, dim=-1), target, reduction="batchmean") * (tau**2)
