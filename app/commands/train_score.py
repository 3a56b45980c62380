"""``encotag train score``: taggers scored side by side against the teacher from the per-clip caches.

The broad held-out figures of ``encotag eval`` (classes, mAP, top-1, top-5, Music/Speech-instead-of-neither)
on the 2-s segments of the held-out recordings the evaluation scores (no derived copies, no mixtures;
``--drawn-only`` as there), and the trusted labels of ``encotag train tagger``, for each ``--tagger``
(training folder or pack) in minutes: the codes and teacher logits are read from the caches that
``encotag train features --per-clip`` wrote, where ``encotag eval`` runs every pack on the audio. With
``--fit-clips N`` the same figures on N evenly spaced original training clips too (the fit; far above the
held-out figures when a tagger learns its training recordings rather than the classes). Writes
``OUT/score.md`` and ``OUT/score.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _row(name: str, sc: Any, n_trusted: int) -> dict[str, Any]:
    return {
        "tagger": name,
        "segments": sc.n_clips,
        "classes": sc.n_classes,
        "map": sc.map,
        "top1": sc.top1,
        "top5": sc.top5,
        "ms_instead": sc.ms_instead,
        "trusted": n_trusted,
    }


def _fit_subset(train: Any, train_rows: list[Any], n: int) -> Any:
    """The training data of ``n`` evenly spaced original training clips (no derived copies, no mixtures):
    the clips the fit is scored on."""
    import dataclasses

    import numpy as np

    from models.evaluation.agreement import DERIVED_SUFFIXES
    from models.training.coverage import MIXTURE_ORIGIN

    orig = [
        i
        for i, r in enumerate(train_rows)
        if not r.source.endswith(DERIVED_SUFFIXES) and r.origin != MIXTURE_ORIGIN
    ]
    # at most one point per unit step of the index: evenly spaced and distinct
    sel = np.asarray(orig, dtype=np.int64)[np.linspace(0, len(orig) - 1, min(n, len(orig))).astype(np.int64)]
    return dataclasses.replace(
        train,
        codes=train.codes[sel],
        logits=train.logits[sel],
        seg_logits=train.seg_logits[sel],
        short_logits=None,
        seg_emb=None,
        seg_weights=None,
    )


def _table(rows: list[dict[str, Any]], corpus: str, drawn_only: bool) -> str:
    def f(x: float | None, pct: bool = False) -> str:
        if x is None:
            return "—"
        return f"{100 * x:.1f} %" if pct else f"{x:.3f}"

    head = rows[0] if rows else {"segments": 0, "classes": 0}
    lines = [
        f"Broad held-out 2-s segments of {corpus}{' (--drawn-only)' if drawn_only else ''}, from the caches: "
        f"{head['segments']} segments, {head['classes']} classes with >= 5 teacher positives.",
        "",
        "| tagger | classes | mAP | top-1 | top-5 | Music/Speech instead | trusted |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['tagger']} | {r['classes']} | {f(r['map'])} | {f(r['top1'])} | {f(r['top5'])} "
            f"| {f(r['ms_instead'], True)} | {r['trusted']} |"
        )
    fits = [r["fit"] for r in rows if "fit" in r]
    if fits:
        lines += [
            "",
            f"The fit: {fits[0]['segments']} 2-s segments of original training clips (recordings it "
            f"trained on), {fits[0]['classes']} classes with >= 5 teacher positives.",
            "",
            "| tagger | classes | mAP | top-1 | top-5 | Music/Speech instead |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            g = r["fit"]
            lines.append(
                f"| {r['tagger']} | {g['classes']} | {f(g['map'])} | {f(g['top1'])} | {f(g['top5'])} "
                f"| {f(g['ms_instead'], True)} |"
            )
    return "\n".join(lines) + "\n"


def run_score(args: argparse.Namespace) -> int:
    import numpy as np

    from app.commands.train_tagger import prepare_features
    from models.atomic import atomic_write_text
    from models.evaluation.agreement import DERIVED_SUFFIXES
    from models.nets.tagger import Tagger
    from models.training.corpus_split import drawn_clips, per_clip_split
    from models.training.coverage import read_manifest
    from models.training.outputs import load_tagger_dir
    from models.training.student_eval import broad_segment_score, evaluate_student

    if not getattr(args, "per_clip", False) or len(args.corpus) != 1:
        print("encotag train: score: needs --per-clip and one --corpus", file=sys.stderr)
        return 2
    if args.fit_clips < 0:
        print("encotag train: score: --fit-clips needs a count >= 0", file=sys.stderr)
        return 2
    loaded = [(t, *load_tagger_dir(t)) for t in args.tagger]  # refuse a bad tagger before the data load
    train, held, table, _ = prepare_features(args)
    if train is None or held is None or table is None or held.codes.shape[0] == 0:
        print("encotag train: score: needs --codec and training and held-out clips", file=sys.stderr)
        return 2
    corpus = args.corpus[0]
    rows = read_manifest(corpus)
    drawn = drawn_clips(corpus) if args.drawn_only else None
    split = per_clip_split(rows, drawn)  # the row order of the train and held data
    scored = np.array([not rows[i].source.endswith(DERIVED_SUFFIXES) for i in split["held"]], dtype=bool)
    train_rows = [rows[i] for i in split["train"]]
    fit = _fit_subset(train, train_rows, args.fit_clips) if args.fit_clips else None
    out = []
    for path, cfg, state, _ in loaded:
        model = Tagger(cfg)
        model.load_state_dict(state, strict=True)
        sc = broad_segment_score(model, held, table, scored)
        ev = evaluate_student(model, train, held, table, augs=(0,), min_pos_trusted=5, segments=True)
        out.append(_row(str(path), sc, int(ev["n_trusted"])))
        if fit is not None:  # the same figures on recordings the tagger trained on: the train-held gap
            fs = broad_segment_score(model, fit, table, np.ones(fit.codes.shape[0], dtype=bool))
            out[-1]["fit"] = {
                k: v for k, v in _row(str(path), fs, 0).items() if k not in ("tagger", "trusted")
            }
    text = _table(out, str(corpus), bool(args.drawn_only))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "score.md", text)
    record = {"corpus": str(corpus), "drawn_only": bool(args.drawn_only), "rows": out}
    atomic_write_text(args.out / "score.json", json.dumps(record, indent=1) + "\n")
    print(text, end="")
    return 0
