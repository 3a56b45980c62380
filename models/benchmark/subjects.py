"""What the benchmarks measure: model packs ("subjects") and synthetic audio workloads.

Subjects are pack folders. Besides real packs (the default pack, the teacher pack), stand-in codec packs
with **random** weights of a given layout can be built: speed does not depend on the weights' values,
so a random EnCodec with the official 24 kHz layout (32 filters) or a leaner one (8 or 16 filters)
times the same as a trained one. Their tags are meaningless; they exist only for timing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subject:
    """A pack to benchmark: ``name`` (short, for tables), ``path`` (pack folder), ``kind`` (mel/codec)."""

    name: str
    path: Path
    kind: str


def random_codec_pack(
    out_dir: Path | str,
    *,
    num_filters: int = 32,
    lstm_layers: int = 2,
    codebook_size: int = 1024,
    bandwidth: float = 6.0,
    width: float = 0.4,
    frontend: str = "latent_direct",
    seed: int = 0,
) -> Path:
    """A codec pack with random weights (EnCodec 24 kHz / hop 320 / 128-dim, ``num_filters`` filters,
    ``lstm_layers`` LSTM layers, ``bandwidth`` kbps) and a random MobileNetV3 tagger of ``width``;
    reused if ``out_dir`` already holds one. For timing only."""
    import torch

    from models.codec.codec import Codec
    from models.config import CodecConfig, TaggerConfig, WindowConfig
    from models.nets.tagger import Tagger
    from models.packs.pack import save_pack
    from models.resources import audioset_labels

    out = Path(out_dir)
    if (out / "manifest.json").is_file():
        return out
    torch.manual_seed(seed)
    bws = tuple(b for b in (1.5, 3.0, 6.0, 12.0, 24.0) if b <= max(bandwidth, 6.0))
    codec_cfg = CodecConfig(
        num_filters=num_filters,
        num_lstm_layers=lstm_layers,
        codebook_size=codebook_size,
        target_bandwidths=bws,
        bandwidth=bandwidth,
    )
    codec = Codec(codec_cfg)
    tagger_cfg = TaggerConfig(width=width, frontend=frontend)  # type: ignore[arg-type]
    tagger = Tagger(tagger_cfg)
    labels = audioset_labels()
    return save_pack(
        out,
        name=f"random codec nf{num_filters} (timing only)",
        description="random weights: for benchmarks only, the tags mean nothing",
        tagger_cfg=tagger_cfg,
        tagger_state=tagger.state_dict(),
        codec_cfg=codec_cfg,
        codec_state=codec.state_dict(),
        labels=labels,
        trusted=[False] * len(labels),
        window=WindowConfig(),
        licence="MIT",
        provenance={"benchmark": True, "seed": seed},
    )


def make_signal(sr: int, seconds: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Synthetic audio ``(n, channels)`` float32 at ``sr``: tones, a sweep and noise bursts."""
    from models.benchmark.live import synthetic_signal

    x = synthetic_signal(sr, seconds, seed)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x[:, None]


def write_audio(path: Path, sr: int, seconds: float, *, channels: int = 1, seed: int = 0) -> Path:
    """Write ``seconds`` of :func:`make_signal` to ``path`` (format from the suffix; written in 60 s
    blocks, so an hour-long file never sits in memory); reused if it exists with the right length."""
    import soundfile as sf

    path = Path(path)
    n = int(round(sr * seconds))
    if path.is_file():
        try:
            if sf.info(str(path)).frames == n:
                return path
        except RuntimeError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    block = make_signal(sr, min(seconds, 60.0), channels, seed)
    subtype = "PCM_16"
    with sf.SoundFile(str(tmp), "w", sr, channels, subtype=subtype) as fh:
        left = n
        while left > 0:
            k = min(left, len(block))
            fh.write(block[:k])
            left -= k
    tmp.replace(path)
    return path


def short_files(folder: Path, count: int, sr: int = 16000, seed: int = 0) -> list[Path]:
    """``count`` short WAV files (0.5 to 5 s, deterministic lengths) in ``folder`` (reused if present)."""
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(0.5, 5.0, count)
    out = []
    for i, s in enumerate(lengths):
        out.append(write_audio(folder / f"clip_{i:04d}.wav", sr, math.floor(s * 100) / 100, seed=i))
    return out
