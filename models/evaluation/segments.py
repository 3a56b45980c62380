"""Teacher agreement on 2-s segments of the broad held-out set.

The corpus clips are 10 s long and held out by recording, so a class the teacher hears in one held-out
recording has few whole-clip positives. Segments of 2 s are the unit the student is distilled on (and
the one close to the app's 1-s analysis windows): scoring them counts each confident teacher segment as
a positive. Each held-out clip is cut into ``floor(duration / 2 s)`` non-overlapping segments (one
zero-padded segment for a shorter clip), and the teacher and every tagging pack tag each segment as an
input of its own (``Engine.infer`` on a batch of segments), so both see exactly the same audio.

Segment probabilities are cached in the evaluation cache under the view id plus :data:`RECIPE`: the
entry's ``probs`` holds the ``(k, 527)`` matrix flattened, its ``embedding`` the count ``k``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.evaluation.agreement import BROAD_PREFIX, AgreementScore, ClassAgreement, score, score_per_class
from models.evaluation.cache import EmbeddingCache, Entry
from models.evaluation.embedders import ClipError, load_clip
from models.tagging.results import Progress

log = logging.getLogger(__name__)

SEGMENT_S = 2.0
RECIPE = "segments-v1:2.0s"


def cut_segments(audio: np.ndarray, sample_rate: int, seg_s: float = SEGMENT_S) -> np.ndarray:
    """Mono ``(n,)`` → ``(k, L)`` float32 non-overlapping segments of ``L = seg_s · sample_rate``
    samples, ``k = max(1, n // L)`` (a clip shorter than one segment is zero-padded to one)."""
    seg = int(round(seg_s * sample_rate))
    x = np.asarray(audio, np.float32)
    if x.shape[0] < seg:
        x = np.pad(x, (0, seg - x.shape[0]))
    k = x.shape[0] // seg
    return x[: k * seg].reshape(k, seg)


def segment_probs(
    embedder: Any,
    paths: list[Path],
    cache: EmbeddingCache,
    progress: Callable[[Progress], None] | None = None,
) -> dict[Path, np.ndarray | None]:
    """path → ``(k, 527)`` float32 probabilities of ``embedder`` (a PackEmbedder: ``engine``,
    ``sample_rate``, ``views``) on the clip's 2-s segments; None for a clip that cannot be read."""
    vid = f"{embedder.views[0].id}:{RECIPE}"
    out: dict[Path, np.ndarray | None] = {}
    for i, path in enumerate(paths):
        hit = cache.get(vid, path)
        if hit is not None and hit.probs is not None and hit.embedding.shape == (1,):
            k = int(hit.embedding[0])
            if k >= 1 and hit.probs.size == k * 527:
                out[path] = hit.probs.reshape(k, 527)
                continue
        try:
            audio = load_clip(path, embedder.sample_rate)
        except ClipError as exc:
            log.error("%s", exc)
            out[path] = None
            continue
        segs = cut_segments(audio, embedder.sample_rate)
        t0 = time.process_time()
        probs, _ = embedder.engine.infer(segs)
        probs = np.asarray(probs, np.float32)
        entry = Entry(np.asarray([len(segs)], np.float32), probs.reshape(-1), time.process_time() - t0, 0.0)
        cache.put(vid, path, entry)
        out[path] = probs
        if progress is not None:
            progress(Progress(i + 1, len(paths), f"{embedder.views[0].name}: 2-s segments"))
    return out


def broad_segment_agreement(
    pack: Any,
    teacher: Any,
    heldout: list[tuple[Path, str]],
    cache: EmbeddingCache,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[AgreementScore, tuple[ClassAgreement, ...]] | None:
    """Agreement of ``pack`` with ``teacher`` on the 2-s segments of the broad held-out clips (sources
    starting with ``corpus:``); None when there are none."""
    broad = [(p, s) for p, s in heldout if s.startswith(BROAD_PREFIX)]
    if not broad:
        return None
    paths = [p for p, _ in broad]
    tp = segment_probs(teacher, paths, cache, progress)
    pp = segment_probs(pack, paths, cache, progress)
    pack_rows, teach_rows, src = [], [], []
    for p, s in broad:
        a, b = pp.get(p), tp.get(p)
        if a is None or b is None or a.shape != b.shape:
            continue
        pack_rows.append(a)
        teach_rows.append(b)
        src += [s] * len(a)
    if not pack_rows:
        return None
    pk, tk, sa = np.concatenate(pack_rows), np.concatenate(teach_rows), np.asarray(src)
    return score(pk, tk), score_per_class(pk, tk, sa)
