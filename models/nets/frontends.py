"""Front ends turning the tagger's input into the MobileNet's image.

- :class:`MelFrontend`: EfficientAT's log-mel (the teacher's exact input), audio ``(B, n)`` @ 32 kHz →
  ``(B, 1, 128, T)``. No torchaudio: the Kaldi mel filterbank is built here.
- :class:`LatentDirect`: codec latent ``(B, 128, T)`` → learned per-dim normalisation → ``(B, 1, 128, T)``.
- :class:`LatentProjection`: codec latent ``(B, 128, T)`` → small CNN + bilinear resize →
  ``(B, 3, 224, 224)``.

The tagger takes the low-level embedding (per-dim mean over time) from the mel image or the normalised
latent (``normalise``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import MelConfig


def kaldi_mel_scale(freq_hz: Tensor) -> Tensor:
    """Kaldi's mel scale ``1127 · ln(1 + f / 700)``."""
    return 1127.0 * torch.log(1.0 + freq_hz / 700.0)


def kaldi_mel_banks(
    n_mels: int, n_fft: int, sample_rate: float, fmin: float, fmax: float, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Kaldi-style triangular mel filterbank, ``(n_mels, n_fft // 2)`` of ``dtype``.

    Same semantics as Kaldi's ``MelBanks`` without VTLN: ``n_mels`` triangles equally spaced on the mel
    scale between ``mel(fmin)`` and ``mel(fmax)`` (``fmax <= 0`` means Nyquist + fmax), evaluated at FFT
    bin ``k`` frequency ``k · sample_rate / n_fft`` for ``k < n_fft // 2`` (the Nyquist bin is excluded;
    pad one zero column to apply it to a one-sided spectrum). Weights are triangular in the mel domain,
    peak 1. The band edges are Python floats and the per-bin arithmetic runs in ``dtype`` (float32 by
    default, the precision the teacher's front end used), so the float32 weights match it to rounding.
    """
    nyquist = 0.5 * sample_rate
    if fmax <= 0.0:
        fmax += nyquist
    if not 0.0 <= fmin < fmax <= nyquist:
        raise ValueError(f"bad mel range fmin={fmin}, fmax={fmax} for sample rate {sample_rate}")
    mel_lo = 1127.0 * math.log(1.0 + fmin / 700.0)
    mel_hi = 1127.0 * math.log(1.0 + fmax / 700.0)
    delta = (mel_hi - mel_lo) / (n_mels + 1)
    idx = torch.arange(n_mels, dtype=dtype).unsqueeze(1)
    left = mel_lo + idx * delta
    centre = mel_lo + (idx + 1.0) * delta
    right = mel_lo + (idx + 2.0) * delta
    bin_mel = kaldi_mel_scale((sample_rate / n_fft) * torch.arange(n_fft // 2, dtype=dtype)).unsqueeze(0)
    up = (bin_mel - left) / (centre - left)
    down = (right - bin_mel) / (right - centre)
    return torch.clamp(torch.minimum(up, down), min=0.0)


class MelFrontend(nn.Module):
    """EfficientAT's log-mel front end (evaluation mode, no augmentation).

    ``(B, n)`` float32 mono audio @ ``cfg.sample_rate`` (32 kHz) → ``(B, 1, n_mels, T)`` with
    ``T = (n - 1) // hop + 1`` (the pre-emphasis filter drops one sample; the STFT is centred):
    pre-emphasis ``y[i] = x[i+1] - 0.97·x[i]``, STFT (n_fft 1024, symmetric Hann window of 800 zero-padded
    to 1024, hop 320, centred with reflect padding), power spectrum, Kaldi mel banks (fmin 0,
    fmax = sr/2 − 1000 unless set, zero weight on the Nyquist bin), ``log(mel + 1e-5)``, ``(x + 4.5) / 5``.
    Needs ``n ≥ n_fft // 2 + 2`` samples (reflect padding).
    """

    mel_basis: Tensor  # (n_mels, n_fft // 2 + 1) float32
    window: Tensor  # (win_length,) symmetric Hann

    def __init__(self, cfg: MelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg if cfg is not None else MelConfig()
        self.cfg = cfg
        fmax = cfg.fmax if cfg.fmax is not None else cfg.sample_rate / 2 - 1000.0
        banks = kaldi_mel_banks(cfg.n_mels, cfg.n_fft, cfg.sample_rate, cfg.fmin, fmax)
        banks = F.pad(banks, (0, 1))  # Nyquist bin
        self.register_buffer("mel_basis", banks, persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win_length, periodic=False), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.cfg.n_mels

    def num_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` samples of audio."""
        return (n_samples - 1) // self.cfg.hop_length + 1

    def forward(self, audio: Tensor) -> Tensor:
        if audio.dim() != 2:
            raise ValueError(f"MelFrontend expects audio (B, n), got {tuple(audio.shape)}")
        min_len = self.cfg.n_fft // 2 + 2
        if audio.shape[1] < min_len:
            raise ValueError(
                f"audio too short for the mel front end: {audio.shape[1]} samples (need >= {min_len})"
            )
        # pre-emphasis, the valid 1-D convolution with [-0.97, 1] (slicing is ~30x faster than conv1d on CPU)
        x = audio[:, 1:] - self.cfg.preemphasis * audio[:, :-1]
        spec = torch.stft(
            x,
            self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            win_length=self.cfg.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            return_complex=True,
        )
        ri = torch.view_as_real(spec)
        power = ri[..., 0].square() + ri[..., 1].square()  # (B, n_fft/2 + 1, T)
        mel = torch.matmul(self.mel_basis, power)
        mel = torch.log(mel + 1e-5)
        return ((mel + 4.5) / 5.0).unsqueeze(1)


class LatentDirect(nn.Module):
    """Codec latent fed to the MobileNet as a 1-channel image.

    ``(B, dim, T)`` float32 → per-dim learned normalisation (BatchNorm1d: running mean/variance plus a
    learned scale and shift per latent dim) → ``(B, 1, dim, T)``.
    """

    def __init__(self, dim: int = 128) -> None:
        super().__init__()
        self.dim = dim
        self.norm = nn.BatchNorm1d(dim)

    @property
    def out_dim(self) -> int:
        return self.dim

    def normalise(self, latent: Tensor) -> Tensor:
        """``(B, dim, T) → (B, dim, T)`` normalised latent."""
        if latent.dim() != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"expected latent (B, {self.dim}, T), got {tuple(latent.shape)}")
        return self.norm(latent)

    def forward(self, latent: Tensor) -> Tensor:
        return self.normalise(latent).unsqueeze(1)


class LatentProjection(nn.Module):
    """The paper's variant: project the codec latent into the 3 × 224 × 224 image an ImageNet-shaped
    MobileNet expects.

    ``(B, dim, T)`` float32 → per-dim normalisation (BatchNorm1d) → as a 1-channel ``dim × T`` image:
    conv 3×3 (1 → hidden) → BN → ReLU → conv 3×3 (hidden → hidden) → BN → ReLU → conv 1×1 (hidden → 3)
    → bilinear resize to ``size × size`` → ``(B, 3, size, size)``. All layers are trainable.
    """

    def __init__(self, dim: int = 128, hidden: int = 16, size: int = 224) -> None:
        super().__init__()
        self.dim = dim
        self.size = size
        self.norm = nn.BatchNorm1d(dim)
        self.proj = nn.Sequential(
            nn.Conv2d(1, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 3, 1),
        )

    @property
    def out_dim(self) -> int:
        return self.dim

    def normalise(self, latent: Tensor) -> Tensor:
        """``(B, dim, T) → (B, dim, T)`` normalised latent."""
        if latent.dim() != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"expected latent (B, {self.dim}, T), got {tuple(latent.shape)}")
        return self.norm(latent)

    def project(self, normalised: Tensor) -> Tensor:
        """Normalised latent ``(B, dim, T)`` → image ``(B, 3, size, size)``."""
        img = self.proj(normalised.unsqueeze(1))
        return F.interpolate(img, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def forward(self, latent: Tensor) -> Tensor:
        return self.project(self.normalise(latent))
