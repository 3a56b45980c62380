"""EnCodec through ``transformers``: audio → RVQ codes → quantized latent (and back to audio).

:class:`Codec` builds ``transformers.EncodecModel`` from a :class:`~models.config.CodecConfig` and keeps
its three parts (``encoder``, ``quantizer``, ``decoder``) as its own sub-modules, so its state-dict names
are exactly the Hugging Face ones (``encoder.layers.0.conv.…``) and the official checkpoint loads with
``strict=True``.

Shapes (official layout, ``CodecConfig()``): audio (B, n) float32 @ 24 kHz → codes (B, n_q, T) int64 with
T = ceil(n / 320) (75 frames/s) and n_q = 8 at 6 kbps → latent (B, 128, T) float32.

State dicts come in three spellings, all accepted by :meth:`Codec.from_state` (strict in each case):
- parametrized weight norm (``…conv.parametrizations.weight.original0/original1``, what training uses),
- legacy weight norm (``…conv.weight_g/weight_v``, older Hugging Face checkpoints),
- fused (plain ``…conv.weight``, after :meth:`Codec.fuse`; smallest and fastest for inference).
Each may leave out the codebooks' EMA training buffers (:func:`inference_state`, as model packs do).
"""

from __future__ import annotations

import contextlib
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from models.config import CodecConfig

log = logging.getLogger(__name__)

_G = ".parametrizations.weight.original0"
_V = ".parametrizations.weight.original1"


class CodecError(ValueError):
    """A codec state dict or input that does not fit the codec's configuration."""


def encodec_config(cfg: CodecConfig):  # -> transformers.EncodecConfig (imported lazily)
    """The ``transformers.EncodecConfig`` for ``cfg`` (mono, unchunked, unnormalised, like the 24 kHz one)."""
    from transformers import EncodecConfig

    return EncodecConfig(
        sampling_rate=cfg.sampling_rate,
        audio_channels=1,
        normalize=False,
        chunk_length_s=None,
        overlap=None,
        num_filters=cfg.num_filters,
        upsampling_ratios=list(cfg.upsampling_ratios),
        hidden_size=cfg.hidden_size,
        codebook_size=cfg.codebook_size,
        target_bandwidths=list(cfg.target_bandwidths),
        num_lstm_layers=cfg.num_lstm_layers,
        num_residual_layers=cfg.num_residual_layers,
        norm_type=cfg.norm_type,
        use_causal_conv=cfg.use_causal_conv,
    )


def num_quantizers(cfg: CodecConfig, bandwidth: float | None = None) -> int:
    """Codebooks used at ``bandwidth`` kbps (default ``cfg.bandwidth``), as EnCodec counts them."""
    frame_rate = math.ceil(cfg.sampling_rate / cfg.hop_length)
    bits = math.log2(cfg.codebook_size)
    bw = cfg.bandwidth if bandwidth is None else bandwidth
    total = int(1000 * max(cfg.target_bandwidths) // (frame_rate * math.ceil(bits)))
    return min(total, int(max(1, math.floor(bw * 1000 / (bits * frame_rate)))))


class CodecGeometry(ABC):
    """Rates and sizes derived from ``self.cfg``, and the encode/latent steps built on ``embed``,
    ``quantize_codes`` and ``unembed`` (which each codec defines): shared by :class:`Codec` and the
    tagging-only codec."""

    cfg: CodecConfig

    @abstractmethod
    def embed(self, audio: Tensor) -> Tensor:
        """Audio (B, n) → continuous encoder output (B, 128, T)."""

    @abstractmethod
    def quantize_codes(self, latent: Tensor, bandwidth: float | None = None) -> Tensor:
        """Continuous latent (B, 128, T) → RVQ codes (B, n_q, T) int64."""

    @abstractmethod
    def unembed(self, codes: Tensor) -> Tensor:
        """Codes (B, n_q, T) → quantized latent (B, 128, T)."""

    def encode(self, audio: Tensor, bandwidth: float | None = None) -> Tensor:
        """Audio (B, n) float32 @ ``sample_rate`` → codes (B, n_q, ceil(n / hop)) int64 at ``bandwidth``
        (default ``cfg.bandwidth``, kbps)."""
        bw = self.cfg.bandwidth if bandwidth is None else bandwidth
        if bw not in self.cfg.target_bandwidths:
            raise CodecError(f"bandwidth {bw} not in target_bandwidths {self.cfg.target_bandwidths}")
        with torch.inference_mode():
            return self.quantize_codes(self.embed(audio), bw)

    def latent(self, audio: Tensor, bandwidth: float | None = None) -> Tensor:
        """Audio (B, n) @ ``sample_rate`` → quantized latent (B, 128, ceil(n / hop)) = unembed(encode)."""
        return self.unembed(self.encode(audio, bandwidth))

    def _check_audio(self, audio: Tensor) -> Tensor:
        """``audio`` (n,) or (B, n) as float32 (B, n), or :class:`CodecError`."""
        if audio.dim() == 1:
            audio = audio.unsqueeze(0)
        if audio.dim() != 2:
            raise CodecError(f"audio must be (B, n), got shape {tuple(audio.shape)}")
        if audio.shape[-1] < 1:
            raise CodecError("audio is empty")
        return audio.to(dtype=torch.float32)

    def _checked_codes(self, codes: Tensor, n_books: int) -> Tensor:
        """``codes`` (B, n_q, T) as int64, or :class:`CodecError` for a bad shape, too many codebooks or
        out-of-range indices."""
        if codes.dim() != 3:
            raise CodecError(f"codes must be (B, n_q, T), got shape {tuple(codes.shape)}")
        if codes.shape[1] > n_books:
            raise CodecError(f"codes have {codes.shape[1]} codebooks, the codec has {n_books}")
        codes = codes.long()
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.cfg.codebook_size):
            raise CodecError(f"codes outside [0, {self.cfg.codebook_size})")
        return codes

    @property
    def sample_rate(self) -> int:
        return self.cfg.sampling_rate

    @property
    def hop_length(self) -> int:
        return self.cfg.hop_length

    @property
    def frame_rate(self) -> float:
        return self.cfg.frame_rate

    @property
    def n_q(self) -> int:
        """Codebooks per frame at ``cfg.bandwidth``."""
        return num_quantizers(self.cfg)

    def num_frames(self, n_samples: int) -> int:
        """Latent frames for ``n_samples`` of audio: ceil(n / hop)."""
        return -(-n_samples // self.hop_length)


class Codec(CodecGeometry, nn.Module):
    """EnCodec encoder + residual vector quantizer + decoder for mono audio at ``cfg.sampling_rate``.

    ``Codec(cfg)`` has random weights (codebooks drawn from N(0, 1) so that codes are informative before
    training); ``init=False`` leaves them uninitialised (only to load a state right after); use
    :meth:`from_state` to load weights. Inference methods run under ``torch.inference_mode``.
    """

    encoder: Any  # transformers' EncodecEncoder / EncodecResidualVectorQuantizer / EncodecDecoder
    quantizer: Any
    decoder: Any

    def __init__(self, cfg: CodecConfig, init: bool = True) -> None:
        super().__init__()
        if cfg.bandwidth not in cfg.target_bandwidths:
            raise CodecError(f"bandwidth {cfg.bandwidth} not in target_bandwidths {cfg.target_bandwidths}")
        from transformers import EncodecModel

        with contextlib.nullcontext() if init else _no_init_weights():
            hf = EncodecModel(encodec_config(cfg))
        self.cfg = cfg
        self.encoder = hf.encoder
        self.quantizer = hf.quantizer
        self.decoder = hf.decoder
        if init:
            with torch.no_grad():
                for layer in self.quantizer.layers:
                    layer.codebook.embed.normal_()
                    layer.codebook.embed_avg.copy_(layer.codebook.embed)
        self.fused = False
        self.eval()

    # ------------------------------------------------------------------ weights
    def fuse(self) -> Codec:
        """Fold weight norm into plain conv weights (inference only; irreversible). Returns ``self``."""
        from torch.nn.utils import parametrize

        for module in self.modules():
            if isinstance(module, nn.Conv1d | nn.ConvTranspose1d) and parametrize.is_parametrized(module):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        for module in self.modules():
            if isinstance(module, nn.LSTM):
                module.flatten_parameters()
        self.fused = True
        return self

    def load_state(self, state: Mapping[str, Tensor]) -> None:
        """Load any of the three spellings (see module docstring) strictly; raises :class:`CodecError`."""
        state = complete_state(_rename_legacy(state))
        fused_state = not any(k.endswith(_G) for k in state) and any(
            k.endswith(".conv.weight") for k in state
        )
        if fused_state and not self.fused:
            self.fuse()
        if not fused_state and self.fused:
            raise CodecError("cannot load a weight-norm state dict into a fused codec")
        try:
            self.load_state_dict(dict(state), strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise CodecError(" ".join(line.strip() for line in first[:3])) from None

    @classmethod
    def from_state(cls, cfg: CodecConfig, state: Mapping[str, Tensor]) -> Codec:
        """A codec with ``state`` loaded strictly (raises :class:`CodecError` on any mismatch)."""
        codec = cls(cfg, init=False)
        codec.load_state(state)
        return codec

    def export_state(self) -> dict[str, Tensor]:
        """Contiguous CPU copies of the state dict, ready for ``safetensors.torch.save_file``."""
        return {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}

    # ------------------------------------------------------------------ inference

    def embed(self, audio: Tensor) -> Tensor:
        """Continuous encoder output (B, 128, T) before quantization (autograd-friendly; for training)."""
        return self.encoder(self._check_audio(audio).unsqueeze(1))

    def quantize_codes(self, latent: Tensor, bandwidth: float | None = None) -> Tensor:
        """RVQ codes (B, n_q, T) int64 of a continuous latent (B, 128, T)."""
        n_q = num_quantizers(self.cfg, bandwidth)
        residual = latent
        codes = []
        for layer in self.quantizer.layers[:n_q]:
            idx = layer.encode(residual)
            residual = residual - layer.decode(idx)
            codes.append(idx)
        return torch.stack(codes, dim=1)

    def unembed(self, codes: Tensor) -> Tensor:
        """Codes (B, n_q, T) integer → quantized latent (B, 128, T) float32 (sum of the codebook vectors)."""
        codes = self._checked_codes(codes, len(self.quantizer.layers))
        with torch.inference_mode():
            return self.quantizer.decode(codes.transpose(0, 1))

    def decode(self, codes: Tensor) -> Tensor:
        """Codes (B, n_q, T) → audio (B, T * hop) float32 @ ``sample_rate``."""
        latent = self.unembed(codes)
        with torch.inference_mode():
            return self.decoder(latent).squeeze(1)


def _no_init_weights() -> contextlib.AbstractContextManager[Any]:
    """transformers' context that skips random weight init (weights are loaded right after)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights  # type: ignore[no-redef,attr-defined]
        except ImportError:
            return contextlib.nullcontext()
    return no_init_weights()


_EMA = (".codebook.embed_avg", ".codebook.cluster_size")  # training-only buffers of each codebook


def inference_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``state`` without the codebooks' EMA training buffers (``embed_avg``, ``cluster_size``): what a
    model pack stores (inference reads only ``embed``; for the official layout this halves the codebooks'
    share of the file). :func:`complete_state` restores them for loading and warm starts."""
    return {k: v for k, v in state.items() if not (k.startswith("quantizer.") and k.endswith(_EMA))}


def complete_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``state`` with the EMA buffers of every codebook that lacks *both* filled in consistently with its
    ``embed`` (``embed_avg = embed``, ``cluster_size = 1``); anything else missing is left missing, so a
    strict load still refuses it."""
    out = dict(state)
    for key, embed in state.items():
        if key.startswith("quantizer.") and key.endswith(".codebook.embed"):
            base = key[: -len(".embed")]
            avg, size = base + ".embed_avg", base + ".cluster_size"
            if avg not in state and size not in state:
                out[avg] = embed.clone()
                out[size] = torch.ones(embed.shape[0], dtype=embed.dtype)
    return out


def _rename_legacy(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``…weight_g`` / ``…weight_v`` (old ``torch.nn.utils.weight_norm``) → parametrization names."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            out[key[: -len(".weight_g")] + _G] = value
        elif key.endswith(".weight_v"):
            out[key[: -len(".weight_v")] + _V] = value
        else:
            out[key] = value
    return out
