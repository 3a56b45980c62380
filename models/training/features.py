"""Training data for the codec and the tagger: clip lists, augmentation, and the feature cache.

- :func:`corpus_clips` reads a corpus folder (``manifest.csv``: one row per clip, a file column, a
  ``split`` column and optionally ``source`` / ``licence``); :func:`shared_clips` lists the permissive
  ``train`` clips of ``../shared/data`` (never ``ravdess_speech``, which is evaluation only).
- :func:`augment` makes the k-th augmented version of a clip deterministically (gain, EQ tilt, noise,
  mixing with another clip), so the teacher and the codec always see the *same* audio.
- :func:`compose` turns clips of any length into fixed ``clip_s`` training clips (the "base" array).
- :func:`build_teacher_cache` stores the teacher's logits (float16) on 32 kHz audio of every augmented
  version (whole clip and ``seg_s`` segments); :func:`build_code_cache` stores the codec codes (int16)
  of the *same* augmented versions, keyed by the codec's hash (:func:`state_hash`).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.audio import load_audio, resample

log = logging.getLogger(__name__)

EVAL_ONLY_SETS = frozenset({"ravdess_speech"})
_FILE_COLUMNS = ("clip", "file", "path", "relpath", "filename")


@dataclass(frozen=True)
class Clip:
    """One audio file of the training material."""

    path: Path
    split: str  # "train" or a held-out split name
    source: str
    licence: str


def corpus_clips(corpus_dir: str | Path) -> list[Clip]:
    """Clips listed in ``corpus_dir/manifest.csv`` (paths relative to ``corpus_dir``)."""
    corpus_dir = Path(corpus_dir)
    manifest = corpus_dir / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no corpus manifest")
    with manifest.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{manifest}: empty manifest")
    col = next((c for c in _FILE_COLUMNS if c in rows[0]), None)
    if col is None:
        raise ValueError(f"{manifest}: no file column (one of {_FILE_COLUMNS})")
    out = []
    for r in rows:
        out.append(
            Clip(
                corpus_dir / r[col],
                (r.get("split") or "train").strip(),
                r.get("source") or r.get("dataset") or "",
                r.get("licence") or r.get("license") or "",
            )
        )
    return out


def shared_clips(data_dir: str | Path, split: str = "train") -> list[Clip]:
    """``split`` clips of every permissive set under ``data_dir`` (``../shared/data``)."""
    data_dir = Path(data_dir)
    out = []
    for labels in sorted(data_dir.glob("*/labels.csv")):
        name = labels.parent.name
        if name in EVAL_ONLY_SETS:
            continue
        with labels.open(newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                if r["split"] == split and "NC" not in r.get("license", ""):
                    out.append(Clip(labels.parent / r["file"], r["split"], name, r.get("license", "")))
    return out


def load_clips(clips: Sequence[Clip], sr: int, max_s: float | None = None) -> list[np.ndarray]:
    """Mono float32 audio at ``sr`` for each clip (unreadable files are logged and skipped as empty)."""
    out = []
    for c in clips:
        try:
            x = load_audio(c.path, sr)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop training
            log.warning("%s: skipped (%s)", c.path, exc)
            x = np.zeros(0, dtype=np.float32)
        if max_s is not None:
            x = x[: int(max_s * sr)]
        out.append(np.ascontiguousarray(x, dtype=np.float32))
    return out


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad ``x`` to ``n`` samples (short clips are looped once they are > 0.5 s)."""
    if len(x) >= n:
        return x[:n].copy()
    if len(x) > n // 20 and len(x) > 0:
        reps = int(np.ceil(n / len(x)))
        return np.tile(x, reps)[:n].copy()
    out = np.zeros(n, dtype=np.float32)
    out[: len(x)] = x
    return out


def augment(x: np.ndarray, k: int, seed: int, others: Sequence[np.ndarray]) -> np.ndarray:
    """The ``k``-th augmented version of ``x`` (float32, same length); ``k == 0`` is the clip itself.

    Deterministic in ``(seed, k)``: random gain (−12…+3 dB re. peak 0.9), spectral tilt/EQ (±6 dB
    smooth curve), additive white/pink noise at 15–40 dB SNR (p 0.5), mixing with another clip at
    −15…0 dB (p 0.5).
    """
    if k == 0:
        return x.astype(np.float32, copy=True)
    rng = np.random.default_rng([seed, k])
    n = len(x)
    y = x.astype(np.float64)
    spec = np.fft.rfft(y)
    f = np.linspace(0.0, 1.0, len(spec))
    knots = rng.uniform(-6, 6, size=5)
    curve_db = np.interp(f, np.linspace(0, 1, 5), knots)
    y = np.fft.irfft(spec * 10 ** (curve_db / 20), n=n)
    if others and rng.random() < 0.5:
        o = others[int(rng.integers(0, len(others)))]
        if len(o):
            o = fit_length(o, n).astype(np.float64)
            ro = np.sqrt(np.mean(o**2)) + 1e-8
            ry = np.sqrt(np.mean(y**2)) + 1e-8
            y = y + o * (ry / ro) * 10 ** (rng.uniform(-15, 0) / 20)
    if rng.random() < 0.5:
        noise = rng.standard_normal(n)
        if rng.random() < 0.5:  # pink: 1/sqrt(f) amplitude
            ns = np.fft.rfft(noise)
            ns[1:] /= np.sqrt(np.arange(1, len(ns)))
            noise = np.fft.irfft(ns, n=n)
        ry = np.sqrt(np.mean(y**2)) + 1e-8
        noise *= ry / (np.sqrt(np.mean(noise**2)) + 1e-12) * 10 ** (-rng.uniform(15, 40) / 20)
        y = y + noise
    peak = np.abs(y).max()
    if peak > 1e-6:
        y = y * (0.9 / peak) * 10 ** (rng.uniform(-12, 3) / 20)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def compose(
    clips: Sequence[np.ndarray], clip_s: float, sr: int, seed: int, max_per_clip: int = 3
) -> np.ndarray:
    """Fixed-length training clips ``(N, clip_s·sr)`` float32 from clips of any length, deterministically.

    Clips at least ``clip_s`` long give up to ``max_per_clip`` non-overlapping pieces; shorter ones are
    shuffled and concatenated (with 50–300 ms gaps) into composites, so no audio is looped.
    """
    n = int(clip_s * sr)
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    short = []
    for x in clips:
        if len(x) >= n:
            for j in range(min(max_per_clip, len(x) // n)):
                out.append(x[j * n : (j + 1) * n].astype(np.float32))
        elif len(x) > 0:
            short.append(x)
    order = rng.permutation(len(short))
    buf = np.zeros(n, dtype=np.float32)
    pos = 0
    for i in order:
        x = short[int(i)]
        if pos + len(x) > n:
            if pos > n // 2:
                out.append(buf)
            buf = np.zeros(n, dtype=np.float32)
            pos = 0
        buf[pos : pos + len(x)] = x
        pos += len(x) + int(rng.uniform(0.05, 0.3) * sr)
    if pos > n // 2:
        out.append(buf)
    return np.stack(out) if out else np.zeros((0, n), dtype=np.float32)


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """Short sha256 over a state dict's names and bytes (keys the code cache to the codec)."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class FeatureConfig:
    """What the feature caches hold (saved with them and in the pack's provenance)."""

    clip_s: float = 10.0
    n_aug: int = 4
    seg_s: float = 2.0
    seed: int = 1234


def _versions(base: np.ndarray, i: int, fcfg: FeatureConfig) -> np.ndarray:
    """The ``n_aug`` augmented versions ``(n_aug, n)`` of composite ``i`` of ``base`` ``(N, n)``."""
    others = [base[int(j)] for j in np.random.default_rng([fcfg.seed, i]).integers(0, len(base), 4)]
    return np.stack([augment(base[i], k, fcfg.seed * 100003 + i, others) for k in range(fcfg.n_aug)])


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")  # two workers may race on a chunk
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def _chunk_starts(n: int, chunk: int, reverse: bool) -> list[int]:
    """First indices of the ``chunk``-sized pieces of ``n`` items; last first for a ``reverse`` worker."""
    starts = list(range(0, n, chunk))
    return starts[::-1] if reverse else starts


def _join_parts(part_dir: Path, out: Path, keys: Sequence[str]) -> Path:
    """Concatenate the chunk files of ``part_dir`` (in index order) into ``out``, atomically."""
    parts = [np.load(p) for p in sorted(part_dir.glob("*.npz")) if not p.name.endswith(".tmp.npz")]
    _save_npz(out, **{k: np.concatenate([p[k] for p in parts]) for k in keys})
    return out


def build_teacher_cache(
    base: np.ndarray,
    teacher: torch.nn.Module,
    out: str | Path,
    fcfg: FeatureConfig,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 16,
    reverse: bool = False,
    seg_s: float | None = None,
    whole: bool = True,
    embeddings: bool = False,
) -> Path:
    """Teacher logits on 32 kHz audio of every augmented version of ``base`` ``(N, n)`` @ 24 kHz.

    ``out`` (``.npz``): ``logits`` float16 ``(N, n_aug, 527)`` (whole clip; left out when ``whole`` is
    false) and ``seg_logits`` float16 ``(N, n_aug, n_seg, 527)`` (each ``seg_s`` segment, default
    ``fcfg.seg_s``); with ``embeddings`` also ``seg_emb`` float16 ``(N, n_aug, n_seg, D)``, the teacher's
    embedding of each segment (laid out as its ``embedding_layout``). Resumable: partial results live
    in ``out.partial/`` chunk files; a second process with ``reverse`` shares the work.
    """
    out = Path(out)
    part_dir = out.with_name(out.name + ".partial")
    part_dir.mkdir(parents=True, exist_ok=True)
    sr = 24000
    n_seg = int(round(fcfg.clip_s / (fcfg.seg_s if seg_s is None else seg_s)))
    for c0 in _chunk_starts(len(base), chunk, reverse):
        part = part_dir / f"{c0:06d}.npz"
        if part.exists():
            continue
        logits, seg_logits, seg_emb = [], [], []
        for i in range(c0, min(c0 + chunk, len(base))):
            a32 = np.stack([resample(v, sr, 32000) for v in _versions(base, i, fcfg)]).astype(np.float32)
            seg = a32.shape[1] // n_seg
            with torch.inference_mode():
                if whole:
                    logits.append(teacher(torch.from_numpy(a32)).logits.numpy())
                segs = a32[:, : seg * n_seg].reshape(fcfg.n_aug * n_seg, seg)
                res = teacher(torch.from_numpy(segs))
                seg_logits.append(res.logits.numpy().reshape(fcfg.n_aug, n_seg, -1))
                if embeddings:
                    seg_emb.append(res.embedding.numpy().reshape(fcfg.n_aug, n_seg, -1))
        arrays = {"seg_logits": np.stack(seg_logits).astype(np.float16)}
        if whole:
            arrays["logits"] = np.stack(logits).astype(np.float16)
        if embeddings:
            arrays["seg_emb"] = np.stack(seg_emb).astype(np.float16)
        _save_npz(part, **arrays)
        if progress is not None:
            progress(min(c0 + chunk, len(base)), len(base))
    keys = ["logits"] * whole + ["seg_logits"] + ["seg_emb"] * embeddings
    return _join_parts(part_dir, out, keys)


def build_code_cache(
    base: np.ndarray,
    codec: torch.nn.Module,
    out: str | Path,
    fcfg: FeatureConfig,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 16,
    reverse: bool = False,
) -> Path:
    """Codec codes of every augmented version of ``base``: ``codes`` int16 ``(N, n_aug, n_q, T)`` in
    ``out`` (``.npz``); resumable like :func:`build_teacher_cache`; a second process with ``reverse``
    shares the work (each skips the chunks the other finished). ``codec`` is a
    ``models.codec.codec.Codec``."""
    out = Path(out)
    part_dir = out.with_name(out.name + ".partial")
    part_dir.mkdir(parents=True, exist_ok=True)
    for c0 in _chunk_starts(len(base), chunk, reverse):
        part = part_dir / f"{c0:06d}.npz"
        if part.exists():
            continue
        codes = []
        for i in range(c0, min(c0 + chunk, len(base))):
            v = torch.from_numpy(_versions(base, i, fcfg))
            codes.append(codec.encode(v).to(torch.int16).numpy())  # type: ignore[operator]
        _save_npz(part, codes=np.stack(codes))
        if progress is not None:
            progress(min(c0 + chunk, len(base)), len(base))
    return _join_parts(part_dir, out, ("codes",))
