"""Frozen configuration dataclasses shared by the engine, the packs and the app.

Every config is immutable, JSON-serialisable through :func:`to_dict` / ``from_dict`` and passed
explicitly; nothing here reads files or the environment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")

FrontendKind = Literal["mel", "latent_direct", "latent_proj"]


@dataclass(frozen=True)
class CodecConfig:
    """EnCodec layout (the fields of ``transformers.EncodecConfig`` that Encotag varies).

    The official 24 kHz model is ``CodecConfig()``: 32 filters, ratios (8, 5, 4, 2) → hop 320,
    75 frames/s, 128-dim latent, 1024-entry codebooks, 32 quantizers at 24 kbps.
    ``bandwidth`` (kbps) is the one Encotag encodes at.
    """

    sampling_rate: int = 24000
    num_filters: int = 32
    upsampling_ratios: tuple[int, ...] = (8, 5, 4, 2)
    hidden_size: int = 128
    codebook_size: int = 1024
    target_bandwidths: tuple[float, ...] = (1.5, 3.0, 6.0, 12.0, 24.0)
    bandwidth: float = 6.0
    num_lstm_layers: int = 2
    num_residual_layers: int = 1
    norm_type: str = "weight_norm"
    use_causal_conv: bool = True

    @property
    def hop_length(self) -> int:
        n = 1
        for r in self.upsampling_ratios:
            n *= r
        return n

    @property
    def frame_rate(self) -> float:
        return self.sampling_rate / self.hop_length


@dataclass(frozen=True)
class MelConfig:
    """EfficientAT's mel front end (METHOD.md): 32 kHz, pre-emphasis 0.97, n_fft 1024,
    symmetric Hann window of 800, hop 320, centred, power, 128 Kaldi mel bands, fmin 0,
    fmax = sr/2 - 1000, log(x + 1e-5), then (x + 4.5) / 5."""

    sample_rate: int = 32000
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None  # None → sample_rate / 2 - 1000
    preemphasis: float = 0.97


@dataclass(frozen=True)
class TaggerConfig:
    """MobileNetV3 tagger (EfficientAT ``mn`` family) and its front end.

    ``width`` is the width multiplier α (mn04 = 0.4). ``frontend`` picks the input:
    ``mel`` (teacher-style log-mel, 1 × 128 × T), ``latent_direct`` (codec latent 128 × T fed as a
    1-channel image) or ``latent_proj`` (the paper's small CNN projecting the latent to 3 × 224 × 224).
    ``embedding_blocks`` are the ``features`` indices pooled into the mid-level embedding.
    """

    width: float = 0.4
    num_classes: int = 527
    frontend: FrontendKind = "mel"
    input_dim: int = 128  # mel bands or latent dims
    embedding_blocks: tuple[int, ...] = (5, 11, 13, 15)
    head_type: str = "mlp"  # EfficientAT's classifier: pool → Linear → Hardswish → Dropout → Linear


@dataclass(frozen=True)
class WindowConfig:
    """Analysis windows for files and live streams, in seconds."""

    window_s: float = 1.0
    hop_s: float = 0.25


@dataclass(frozen=True)
class PackInfo:
    """What a loaded pack says about itself (from its manifest)."""

    name: str
    pack_id: str  # sha256 over the manifest's weight hashes: identifies the weights
    format_version: int
    sample_rate: int  # rate the engine consumes (24000 for codec packs, 32000 for mel)
    labels: tuple[str, ...]
    trusted: tuple[bool, ...]  # per label: was the pack trained/validated on it
    embedding_size: int
    embedding_layout: tuple[tuple[str, int], ...]  # (part name, size) in order
    licence: str
    provenance: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from ``data``, refusing unknown keys; lists become tuples."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    conv = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**conv)


def worker_threads() -> int:
    """Threads of the app's inference worker: half the cores (at most 4), leaving the rest to the GUI and
    audio. The bench's torch-free engine rows use it too: they measure the app's engine. (Here, not in
    ``models.tagging.engine``: the app asks for it before it knows whether it needs torch.)"""
    import os

    return max(1, min(4, (os.cpu_count() or 2) // 2))
