"""Per-clip feature caches for distillation over a whole corpus (``encotag train tagger --per-clip``).

The first feature pipeline (:mod:`models.training.features`) holds every base clip in memory and makes
``K`` augmented versions of each; that fits a few thousand clips, not a 40-hour corpus (14 GB of audio).
Here the corpus itself carries the augmentation (``encotag corpus build --stretch``), so each clip is
used as it is, once:

- codec codes int16 ``(n_q, T)`` per clip in ``CACHE/codes-<codec hash>/<clip>.npy``;
- teacher logits float16 ``(6, 527)`` per clip (five 2-s segments and the whole clip) in
  ``CORPUS/teacher_segments/<clip>.npy``, shared with ``encotag corpus coverage``.

Both are written one file per clip, atomically, so a killed run loses at most the batch in flight and a
growing corpus only adds files. :func:`load_distill_data` stacks them into
:class:`~models.training.distill.DistillData` with ``K = 1`` and the class-balanced segment weights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.audio import load_audio
from models.training.coverage import CorpusRow, segment_weights
from models.training.distill import DistillData
from models.training.npy_cache import load_array, save_array

log = logging.getLogger(__name__)

CODEC_SR = 24000
CLIP_S = 10.0


def code_cache_dir(cache_root: Path, codec_hash: str) -> Path:
    return cache_root / f"codes-{codec_hash}"


def build_codes(
    corpus: Path,
    rows: Sequence[CorpusRow],
    codec: Any,
    out_dir: Path,
    batch: int = 8,
    progress: Callable[[int, int], None] | None = None,
    reverse: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Encode every clip of ``rows`` without a cached code file; returns how many were encoded.
    ``codec``: a ``models.codec.codec.Codec``; clips are 10 s mono at 24 kHz (padded or cut to exactly 10 s).
    A second process with ``reverse`` works from the other end and skips what the first has written."""
    n = int(CLIP_S * CODEC_SR)
    order = list(range(len(rows)))[::-1] if reverse else list(range(len(rows)))
    # a code file is written whole or not at all (rename), so existence is enough here; its shape is
    # checked when it is loaded for training
    todo = [i for i in order if not (out_dir / (rows[i].clip + ".npy")).exists()]
    done = 0
    for k in range(0, len(todo), batch):
        if should_stop():
            raise KeyboardInterrupt("encoding cancelled")
        idx = [i for i in todo[k : k + batch] if not (out_dir / (rows[i].clip + ".npy")).exists()]
        if not idx:
            continue
        audio = np.stack([_fit(load_audio(corpus / rows[i].clip, CODEC_SR), n) for i in idx])
        with torch.inference_mode():
            codes = codec.encode(torch.from_numpy(audio)).to(torch.int16).numpy()
        for i, c in zip(idx, codes, strict=True):
            save_array(out_dir / (rows[i].clip + ".npy"), c)
        done += len(idx)
        if progress is not None:
            progress(min(k + batch, len(todo)), len(todo))
    return done


def codec_shape(codec: Any) -> tuple[int, int]:
    """(codebooks, frames) of a 10-s clip for ``codec`` (by encoding a short silence)."""
    with torch.inference_mode():
        probe = codec.encode(torch.zeros(1, int(CLIP_S * CODEC_SR)))
    return int(probe.shape[1]), int(probe.shape[2])


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


def load_distill_data(
    rows: Sequence[CorpusRow],
    logits: np.ndarray,
    code_dir: Path,
    n_q: int,
    n_frames: int,
    balance_power: float = 0.5,
    with_codes: bool = True,
) -> tuple[DistillData, np.ndarray]:
    """``(DistillData with K = 1, segment weights (N, 5))`` for ``rows``; ``logits``: their teacher logits
    ``(N, 6, 527)`` from :func:`models.training.coverage.teacher_segment_logits`. Raises
    FileNotFoundError naming the first clip whose codes are missing or damaged. Without ``with_codes`` the
    codes are an empty ``(N, 1, n_q, 0)`` array and no code file is read (for teacher-side counts only)."""
    codes = np.empty((len(rows), 1, n_q, n_frames if with_codes else 0), np.int16)
    for i, r in enumerate(rows if with_codes else ()):
        c = load_array(code_dir / (r.clip + ".npy"), (n_q, n_frames), np.int16)
        if c is None:
            raise FileNotFoundError(f"{code_dir / r.clip}.npy: no codes (run the encoding first)")
        codes[i, 0] = c
    seg, whole = logits[:, :-1], logits[:, -1]
    weights = (
        segment_weights(seg, power=balance_power) if balance_power > 0 else np.ones(seg.shape[:2], np.float32)
    )
    return DistillData(codes, whole[:, None], seg[:, None]), weights
