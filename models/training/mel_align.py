"""Mel alignment of the codec latent: an auxiliary codec-training loss (training only).

The tagger's ``latent_direct`` front end feeds the 128-dim quantized latent to a MobileNet initialised
from the teacher, whose first layers expect a 128-band log-mel image. This loss asks latent dimension
``i`` (through a learned per-dimension scale and offset, no mixing across dimensions) to follow band ``i``
of the teacher's own log-mel (``models.nets.frontends.MelFrontend``: 32 kHz, Kaldi bands up to 15 kHz,
``(log(mel + 1e-5) + 4.5) / 5``) at the latent's frame times. The latent then becomes a coarse
spectrogram in the teacher's band order, so the codec's tokens carry the spectral envelope in a form
the teacher's filters and linear probes read, while the decoder still reconstructs the audio from it
(measured effect: ``docs/TRAINING.md``).
It is a distillation target in the spirit of semantic-distillation codecs (the first quantizer level
regressed onto a teacher's features), here onto the teacher's input representation.

Bands above the codec's Nyquist frequency (no energy at 24 kHz) are masked out of the loss, so those
latent dimensions stay free for reconstruction. The scale/offset parameters are not part of the codec.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from models.audio import resample
from models.config import MelConfig
from models.nets.frontends import MelFrontend

TEACHER_SR = 32000


class MelAlign(nn.Module):
    """Loss between a per-dimension affine map of the latent and the teacher's log-mel.

    ``forward(latent, audio)``: ``latent`` ``(B, D, T)`` float32 (the straight-through quantized latent,
    ``D`` = 128 = the teacher's band count), ``audio`` ``(B, n)`` float32 at ``sr`` (24 kHz), with
    ``T = ceil(n / hop)``; returns the mean absolute error over unmasked bands (a scalar).
    """

    mask: Tensor  # (D,) bool, bands below the codec's Nyquist frequency

    def __init__(self, dim: int = 128, sr: int = 24000, hop: int = 320) -> None:
        super().__init__()
        self.mel = MelFrontend(MelConfig())
        if self.mel.out_dim != dim:
            raise ValueError(f"latent has {dim} dims but the teacher's mel has {self.mel.out_dim} bands")
        self.sr = sr
        self.hop = hop
        self.scale = nn.Parameter(torch.ones(dim))
        self.offset = nn.Parameter(torch.zeros(dim))
        # band centre (Hz) = the FFT bin of each band's peak weight
        bin_hz = TEACHER_SR / self.mel.cfg.n_fft
        centres = self.mel.mel_basis.argmax(dim=1).float() * bin_hz
        self.register_buffer("mask", centres < 0.95 * sr / 2, persistent=False)

    @torch.no_grad()
    def target(self, audio: Tensor, frames: int) -> Tensor:
        """Teacher log-mel ``(B, D, frames)`` sampled at the latent frame times ``k · hop / sr``."""
        a32 = np.stack([resample(a, self.sr, TEACHER_SR) for a in audio.detach().cpu().numpy()])
        mel = self.mel(torch.from_numpy(a32))[:, 0]  # (B, D, T100)
        mel_rate = TEACHER_SR / self.mel.cfg.hop_length  # teacher frames per second (100)
        pos = torch.arange(frames, dtype=torch.float32) * (self.hop / self.sr) * mel_rate
        pos = pos.clamp(max=mel.shape[-1] - 1)
        lo = pos.floor().long()
        hi = (lo + 1).clamp(max=mel.shape[-1] - 1)
        w = (pos - lo.float())[None, None]
        return mel[..., lo] * (1 - w) + mel[..., hi] * w

    def forward(self, latent: Tensor, audio: Tensor) -> Tensor:
        tgt = self.target(audio, latent.shape[-1])
        pred = latent * self.scale[None, :, None] + self.offset[None, :, None]
        return (pred - tgt).abs()[:, self.mask].mean()
