"""Teacher class coverage of a corpus (``encotag corpus coverage``).

The student learns a class only where the teacher fires on it, so a corpus is judged by how many AudioSet
classes the teacher is confident about, counted in the unit the student trains on: 2-s segments. This
module runs the teacher on every 2-s segment of every clip of a corpus manifest (10-s clips → 5 segments,
32 kHz audio, no augmentation) and caches the logits as float16 ``(n_clips, n_seg, 527)`` in chunk files
(resumable; a killed run loses at most one chunk). The same cache gives the class-balanced sampling
weights of the distillation (:func:`segment_weights`).

Counts: a class is *covered* at threshold ``t`` when at least ``min_segments`` training segments have a
teacher probability ≥ ``t``. The per-class table (training and held-out counts) and per-source class counts
go to Markdown (``docs/CORPUS.md``).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.audio import load_audio
from models.training.npy_cache import load_array, save_array

log = logging.getLogger(__name__)

SEG_S = 2.0
CLIP_S = 10.0
TEACHER_SR = 32000
N_CLASSES = 527


@dataclass(frozen=True)
class CorpusRow:
    """One manifest row: clip path relative to the corpus, source, domain and split."""

    clip: str
    source: str
    domain: str
    split: str
    origin: str = ""

    @property
    def held_out(self) -> bool:
        """A held-out clip: ``val`` split and not a mixture. A mixture's parts are drawn across sources,
        so one in ``val`` may hold recordings that are in training: it is neither trained on nor scored."""
        return self.split != "train" and self.origin != MIXTURE_ORIGIN


MIXTURE_ORIGIN = "mixture"  # the manifest's origin of mixed clips (corpus_render)


def read_manifest(corpus: Path) -> list[CorpusRow]:
    """The rows of ``corpus/manifest.csv`` (columns clip, source, domain, split, origin)."""
    with (corpus / "manifest.csv").open(newline="", encoding="utf-8") as f:
        return [
            CorpusRow(r["clip"], r["source"], r.get("domain", ""), r["split"], r.get("origin") or "")
            for r in csv.DictReader(f)
        ]


def _segments(x: np.ndarray, n_seg: int) -> np.ndarray:
    seg = int(SEG_S * TEACHER_SR)
    x = x[: seg * n_seg]
    if len(x) < seg * n_seg:
        x = np.pad(x, (0, seg * n_seg - len(x)))
    return x.reshape(n_seg, seg)


def teacher_segment_logits(
    corpus: Path,
    rows: Sequence[CorpusRow],
    teacher: torch.nn.Module,
    cache_dir: Path,
    chunk: int = 32,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    whole: Callable[[CorpusRow], bool] = lambda r: r.split != "train",
    reverse: bool = False,
) -> np.ndarray:
    """Teacher logits float16 ``(len(rows), 6, 527)``: rows 0-4 for the 2-s segments of each 10-s clip,
    row 5 for the whole clip (32 kHz audio, no augmentation). The whole clip costs as much as its five
    segments and only held-out clips need it (agreement on whole clips), so by default a training clip's
    row 5 is the element-wise max of its segment logits (does any 2-s part show the class).

    One ``.npy`` per clip under ``cache_dir`` (mirroring the clip's path), written atomically, so a
    growing corpus or a killed run recomputes only the clips without one. A second process with
    ``reverse`` works from the other end and skips what the first has written since it started."""
    n_seg = int(round(CLIP_S / SEG_S))
    paths = [cache_dir / (r.clip + ".npy") for r in rows]
    out = [load_array(p, (n_seg + 1, N_CLASSES)) for p in paths]
    todo = [i for i, o in enumerate(out) if o is None]
    if reverse:
        todo.reverse()
    for k in range(0, len(todo), chunk):
        if should_stop():
            raise KeyboardInterrupt("coverage cancelled")
        idx = []
        for i in todo[k : k + chunk]:  # another worker may have written it meanwhile
            if paths[i].exists() and (got := load_array(paths[i], (n_seg + 1, N_CLASSES))) is not None:
                out[i] = got
            else:
                idx.append(i)
        if not idx:
            continue
        batch = np.stack([_segments(load_audio(corpus / rows[i].clip, TEACHER_SR), n_seg) for i in idx])
        with torch.inference_mode():
            seg = teacher(torch.from_numpy(batch.reshape(-1, batch.shape[-1]))).logits.numpy()
            seg = seg.reshape(len(idx), n_seg, -1)
            full = seg.max(axis=1)
            need = [k for k, i in enumerate(idx) if whole(rows[i])]
            if need:
                full[need] = teacher(torch.from_numpy(batch[need].reshape(len(need), -1))).logits.numpy()
        both = np.concatenate([seg, full[:, None]], axis=1).astype(np.float16)
        for i, lg in zip(idx, both, strict=True):
            save_array(paths[i], lg)
            out[i] = lg
        if progress is not None:
            progress(min(k + chunk, len(todo)), len(todo))
    return np.stack(out) if out else np.zeros((0, n_seg + 1, N_CLASSES), np.float16)  # type: ignore[arg-type]


def probs(logits: np.ndarray) -> np.ndarray:
    """Sigmoid of (float16 or float32) logits, as float32."""
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float32)))


@dataclass(frozen=True)
class Coverage:
    """Segment counts per class at each threshold, for the training and the held-out split."""

    thresholds: tuple[float, ...]
    train_counts: np.ndarray  # (n_thresholds, n_classes) int
    held_counts: np.ndarray  # (n_thresholds, n_classes) int
    n_train_segments: int
    n_held_segments: int

    def covered(self, threshold: float, min_segments: int = 20) -> int:
        """Number of classes with ≥ ``min_segments`` training segments at p ≥ ``threshold``."""
        return int((self.train_counts[self.thresholds.index(threshold)] >= min_segments).sum())


def coverage(
    logits: np.ndarray, rows: Sequence[CorpusRow], thresholds: tuple[float, ...] = (0.3, 0.5)
) -> Coverage:
    """Per-class segment counts at each threshold (``logits``: ``(n_clips, n_seg, C)``)."""
    p = probs(logits)
    held = np.array([r.split != "train" for r in rows], bool)
    tc = np.stack([(p[~held] >= t).sum(axis=(0, 1)) for t in thresholds])
    hc = np.stack([(p[held] >= t).sum(axis=(0, 1)) for t in thresholds])
    return Coverage(thresholds, tc, hc, int((~held).sum() * p.shape[1]), int(held.sum() * p.shape[1]))


def segment_weights(logits: np.ndarray, threshold: float = 0.3, power: float = 0.5) -> np.ndarray:
    """Class-balanced sampling weights ``(n_clips, n_seg)``: each segment weighs the largest
    ``1 / frequency**power`` of the classes the teacher is confident about there (p ≥ ``threshold``),
    where frequency is that class's share of confident segments; segments with no confident class get
    the weight of the most frequent class. Normalised to mean 1."""
    p = probs(logits)
    conf = p >= threshold
    freq = conf.reshape(-1, conf.shape[-1]).sum(axis=0).astype(np.float64)
    inv = np.where(freq > 0, (freq.max() / np.maximum(freq, 1)) ** power, 0.0)
    w = (conf * inv).max(axis=-1)
    w = np.where(w > 0, w, 1.0)
    return (w / w.mean()).astype(np.float32)


def parse_boosts(specs: Sequence[str]) -> dict[str, float]:
    """``["fsdd=4", "speech-commands=4"]`` → ``{"fsdd": 4.0, "speech-commands": 4.0}``; raises ValueError
    naming the first spec that is not ``NAME=K`` with a finite K > 0 or that repeats a name."""
    out: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            k = float(value)
        except ValueError:
            k = float("nan")
        if not sep or not name or not np.isfinite(k) or k <= 0 or name in out:
            raise ValueError(f"--boost-source {spec!r}: expected NAME=K once per source, K a number > 0")
        out[name] = k
    return out


def source_boost(rows: Sequence[CorpusRow], boosts: dict[str, float]) -> np.ndarray:
    """Per-row sampling factor ``(len(rows),)`` float64: ``boosts[name]`` for the rows of source ``name``
    and of its derived sources (``name+aug``, ``name+train``), 1 elsewhere. Raises ValueError when a name
    matches no row (a misspelt source would otherwise change nothing)."""
    base = np.array([r.source.split("+", 1)[0] for r in rows])
    full = np.array([r.source for r in rows])
    factor = np.ones(len(rows))
    for name, k in boosts.items():
        hit = (base == name) | (full == name)
        if not hit.any():
            raise ValueError(f"--boost-source {name}: no training clip of that source")
        factor[hit] *= k
    return factor


def boost_weights(
    weights: np.ndarray, rows: Sequence[CorpusRow], boosts: dict[str, float]
) -> tuple[np.ndarray, float]:
    """Segment weights ``(N, n_seg)`` of ``rows`` times their :func:`source_boost` factor, normalised to
    mean 1, and the boosted sources' share of the draw (0 to 1)."""
    factor = source_boost(rows, boosts)
    w = weights * factor[:, None]
    w = w / w.mean()
    return w.astype(np.float32), float(w[factor != 1].sum() / w.sum())


def per_source_classes(
    logits: np.ndarray, rows: Sequence[CorpusRow], threshold: float = 0.3, min_segments: int = 5
) -> dict[str, tuple[int, int, float]]:
    """``{source: (segments, classes with ≥ min_segments segments at p ≥ threshold, share of segments
    whose top class is Speech or Music)}`` (class indices 0 and 137 are Speech and Music)."""
    p = probs(logits)
    src = np.array([r.source for r in rows])
    out = {}
    for s in sorted(set(src)):
        ps = p[src == s].reshape(-1, p.shape[-1])
        top = ps.argmax(axis=1)
        out[s] = (
            len(ps),
            int(((ps >= threshold).sum(0) >= min_segments).sum()),
            float(np.isin(top, (0, 137)).mean()),
        )
    return out


def coverage_markdown(
    cov: Coverage, labels: Sequence[str], per_source: dict[str, tuple[int, int, float]]
) -> str:
    """The coverage report: headline counts, per-source classes and the per-class table."""
    lines = [
        f"Training segments: {cov.n_train_segments}; held-out segments: {cov.n_held_segments} (2 s each).",
        "",
        "| threshold | classes with ≥ 20 training segments | with ≥ 5 held-out segments |",
        "|---:|---:|---:|",
    ]
    for i, t in enumerate(cov.thresholds):
        lines.append(
            f"| {t:g} | {int((cov.train_counts[i] >= 20).sum())} | {int((cov.held_counts[i] >= 5).sum())} |"
        )
    lines += ["", "| source | segments | classes (≥ 5 segments at p ≥ 0.3) | top class Speech or Music |"]
    lines += ["|---|---:|---:|---:|"]
    for s, (n, k, sm) in sorted(per_source.items(), key=lambda kv: -kv[1][1]):
        lines.append(f"| {s} | {n} | {k} | {100 * sm:.0f} % |")
    lines += ["", "| class | train p≥0.3 | train p≥0.5 | held-out p≥0.3 |", "|---|---:|---:|---:|"]
    order = np.argsort(-cov.train_counts[0])
    for c in order:
        if cov.train_counts[0][c] == 0 and cov.held_counts[0][c] == 0:
            continue
        lines.append(
            f"| {labels[c]} | {int(cov.train_counts[0][c])} | {int(cov.train_counts[-1][c])}"
            f" | {int(cov.held_counts[0][c])} |"
        )
    return "\n".join(lines) + "\n"
