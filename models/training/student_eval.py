"""Scoring a distilled student against its teacher on held-out data, and the trusted labels.

Two units are scored. Whole clips (the ``(N, K, C)`` logits of :class:`DistillData`) give the clip-level
mAP and top-1 of the first pipeline. 2-s segments (``seg_logits``, ``(N, K, S, C)``) are the unit the
student trains on and the one close to the app's 1-s analysis windows; the student sees the matching
slice of each clip's codes (``T / S`` frames). A corpus whose clips are held out by recording (the
per-clip pipeline) has few whole-clip positives per class, so its trusted labels come from segments:
a label is trusted when the teacher gave ≥ 20 confident (p ≥ 0.5) training positives and the student
reaches AP ≥ 0.5 against the teacher on ≥ 5 held-out positives, all counted in the same unit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.training.distill import THRESHOLD, DistillData, latent_from_codes


def _probs(model: Any, codes: np.ndarray, table: Tensor, batch: int) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for i in range(0, len(codes), batch):
            x = latent_from_codes(torch.from_numpy(codes[i : i + batch].astype(np.int64)), table)
            out.append(torch.sigmoid(model(x).logits).numpy())
    return np.concatenate(out) if out else np.zeros((0, 527), np.float32)


def predict(model: Any, data: DistillData, table: Tensor, aug: int | None = 0, batch: int = 16) -> np.ndarray:
    """Student probabilities on whole clips: ``(N, C)`` for one augmentation, ``(N·K, C)`` for all."""
    model.eval()
    codes = data.codes[:, aug] if aug is not None else data.codes.reshape(-1, *data.codes.shape[2:])
    return _probs(model, codes, table, batch)


def segment_codes(codes: np.ndarray, n_seg: int) -> np.ndarray:
    """Clip codes ``(N, n_q, T)`` → segment codes ``(N·S, n_q, T // S)``, clip-major (clip 0's segments
    first), the layout of ``seg_logits[:, aug].reshape(-1, C)``."""
    n, nq, t = codes.shape
    sf = t // n_seg
    return (
        codes[:, :, : sf * n_seg].reshape(n, nq, n_seg, sf).transpose(0, 2, 1, 3).reshape(n * n_seg, nq, sf)
    )


def predict_segments(
    model: Any, data: DistillData, table: Tensor, aug: int = 0, batch: int = 64
) -> np.ndarray:
    """Student probabilities on the 2-s segments of augmentation ``aug``: ``(N·S, C)``."""
    model.eval()
    return _probs(model, segment_codes(data.codes[:, aug], data.n_seg), table, batch)


def teacher_probs(data: DistillData, aug: int | None = 0) -> np.ndarray:
    """Teacher probabilities on whole clips, laid out like :func:`predict`."""
    lg = data.logits[:, aug] if aug is not None else data.logits.reshape(-1, data.logits.shape[-1])
    return 1.0 / (1.0 + np.exp(-lg.astype(np.float32)))


def teacher_segment_probs(data: DistillData, aug: int | None = 0) -> np.ndarray:
    """Teacher probabilities on 2-s segments, laid out like :func:`predict_segments` (all augmentations
    stacked augmentation-major when ``aug`` is None)."""
    sl = data.seg_logits
    lg = sl[:, aug] if aug is not None else sl.transpose(1, 0, 2, 3)
    return 1.0 / (1.0 + np.exp(-lg.reshape(-1, sl.shape[-1]).astype(np.float32)))


def per_class_ap(student: np.ndarray, teacher: np.ndarray, min_pos: int) -> tuple[np.ndarray, np.ndarray]:
    """(AP per class, NaN where fewer than ``min_pos`` teacher positives; positives per class)."""
    from sklearn.metrics import average_precision_score

    labels = teacher >= THRESHOLD
    pos = labels.sum(axis=0)
    ap = np.full(teacher.shape[1], np.nan)
    for c in np.flatnonzero(pos >= min_pos):
        ap[c] = average_precision_score(labels[:, c], student[:, c])
    return ap, pos


def trusted_labels(
    train_pos: np.ndarray, held_ap: np.ndarray, min_train_pos: int = 20, min_ap: float = 0.5
) -> list[bool]:
    """A label is trusted when the teacher gave ≥ ``min_train_pos`` confident positives in training and
    the student reaches AP ≥ ``min_ap`` against the teacher on held-out clips."""
    return [
        bool(p >= min_train_pos and np.isfinite(a) and a >= min_ap)
        for p, a in zip(train_pos, held_ap, strict=True)
    ]


def _segment_metrics(model: Any, train: DistillData, held: DistillData, table: Tensor) -> dict[str, Any]:
    """Held-out APs on every augmentation's 2-s segments (pooled) and the training positives per class."""
    augs = range(held.codes.shape[1])
    ss = np.concatenate([predict_segments(model, held, table, a) for a in augs])
    ts = np.concatenate([teacher_segment_probs(held, a) for a in augs])
    ap, pos = per_class_ap(ss, ts, 5)
    train_pos = (train.seg_logits >= 0).sum(axis=(0, 1, 2))  # logit ≥ 0 ⇔ probability ≥ 0.5
    top1 = float(np.mean(ss.argmax(1) == ts.argmax(1))) if len(ss) else 0.0
    return {"ap": ap, "pos": pos, "train_pos": train_pos, "top1": top1, "n": int(len(ss))}


def evaluate_student(
    model: Any,
    train: DistillData,
    held: DistillData,
    table: Tensor,
    augs: tuple[int, ...] = (0, 1),
    min_pos_trusted: int = 3,
    segments: bool = False,
) -> dict[str, Any]:
    """Teacher agreement on held-out clips and the trusted labels.

    mAP/top-1 on the clean clips (augmentation 0, classes with ≥ 5 teacher positives); the clip-level
    trusted-label APs pool the held-out augmentations ``augs`` (classes with ≥ ``min_pos_trusted``
    positives). With ``segments`` the 2-s segments are scored too (``heldout_*_segments``) and the
    trusted labels come from them (≥ 20 training segments, AP ≥ 0.5 on ≥ 5 held-out segments).
    """
    augs = tuple(a for a in augs if a < held.codes.shape[1])
    preds = [predict(model, held, table, a) for a in augs]
    s0, t0 = preds[0], teacher_probs(held, 0)
    ap0, _ = per_class_ap(s0, t0, 5)
    sa = np.concatenate(preds)
    ta = np.concatenate([teacher_probs(held, a) for a in augs])
    apa, pos_a = per_class_ap(sa, ta, min_pos_trusted)
    train_pos = (teacher_probs(train, None) >= THRESHOLD).sum(axis=0)
    trusted = trusted_labels(train_pos, apa)
    top1 = float(np.mean(s0.argmax(1) == t0.argmax(1))) if len(s0) else 0.0
    out: dict[str, Any] = {
        "heldout_map_clean": float(np.nanmean(ap0)) if np.isfinite(ap0).any() else None,
        "heldout_classes_clean": int(np.isfinite(ap0).sum()),
        "heldout_map_augs": float(np.nanmean(apa)) if np.isfinite(apa).any() else None,
        "heldout_classes_augs": int(np.isfinite(apa).sum()),
        "heldout_augs": list(augs),
        "heldout_top1_clean": top1,
        "heldout_clips": int(len(s0)),
        "trusted_unit": "clip",
    }
    ap_out, pos_out = apa, pos_a
    if segments:
        seg = _segment_metrics(model, train, held, table)
        out |= {
            "heldout_map_segments": float(np.nanmean(seg["ap"])) if np.isfinite(seg["ap"]).any() else None,
            "heldout_classes_segments": int(np.isfinite(seg["ap"]).sum()),
            "heldout_top1_segments": seg["top1"],
            "heldout_segments": seg["n"],
            "trusted_unit": "2-s segment",
        }
        train_pos, ap_out, pos_out = seg["train_pos"], seg["ap"], seg["pos"]
        trusted = trusted_labels(train_pos, ap_out)
    return out | {
        "n_trusted": int(sum(trusted)),
        "trusted": trusted,
        "heldout_ap_augs": [None if not np.isfinite(a) else round(float(a), 4) for a in ap_out],
        "train_positives": [int(p) for p in train_pos],
        "heldout_positives_augs": [int(p) for p in pos_out],
    }


def broad_segment_score(model: Any, held: DistillData, table: Tensor, scored: np.ndarray) -> Any:
    """The broad held-out figures of ``encotag eval`` (classes with ≥ 5 teacher positives, mAP, top-1,
    top-5 overlap, Music/Speech-instead-of-neither rate; :func:`models.evaluation.agreement.score`) on the
    2-s segments of the held-out clips where ``scored`` (bool ``(N,)``) is true, augmentation 0.

    The segments are cut from each clip's cached codes (``T / S`` frames each), where ``encotag eval`` runs
    the pack's encoder on each 2-s piece of audio: the encoder's context at the segment edges differs, so
    the figures are close to, not the same as, the evaluation's. Returns an ``AgreementScore``.
    """
    from models.evaluation.agreement import score

    scored = np.asarray(scored, dtype=bool)
    if scored.shape != (held.codes.shape[0],):
        raise ValueError(f"scored mask of shape {scored.shape} for {held.codes.shape[0]} held-out clips")
    n, s = held.codes.shape[0], held.n_seg
    student = predict_segments(model, held, table, 0).reshape(n, s, -1)[scored]
    teacher = teacher_segment_probs(held, 0).reshape(n, s, -1)[scored]
    return score(student.reshape(-1, student.shape[-1]), teacher.reshape(-1, teacher.shape[-1]))
