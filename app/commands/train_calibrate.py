"""``encotag train calibrate``: label logit offsets of a trained tagger.

Reads the same cached features as ``encotag train tagger`` (``--per-clip --corpus … --codec …
--teacher …``), the tagger folder ``--tagger``, and writes a calibrated tagger folder to ``--out``
(:mod:`models.training.calibrate`). The fit uses training segments (``--fit-on train``), or with
``--per-clip --drawn-only --fit-on held-undrawn`` the held-out clips that the stable hash draw does not
hold out: recordings the tagger never trained on that are not the drawn set, which alone scores the
result. The held-out scoring of ``train tagger`` is redone on the result so ``encotag train pack``
records it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

import numpy as np


def _segment_logits(
    model: Any, data: Any, table: Any, max_segments: int, batch: int = 128
) -> tuple[Any, Any]:
    """(student logits, teacher probabilities) ``(M, C)`` of the 2-s segments of evenly spaced clips of
    ``data`` (at most ``max_segments``)."""
    import torch

    from models.training.distill import latent_from_codes
    from models.training.student_eval import segment_codes

    n, n_seg = data.codes.shape[0], data.n_seg
    keep = np.unique(np.linspace(0, n - 1, max(1, min(n, max_segments // n_seg))).round().astype(int))
    codes = segment_codes(data.codes[keep, 0], n_seg)
    teacher = data.seg_logits[keep, 0].reshape(-1, data.seg_logits.shape[-1]).astype(np.float32)
    out = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(codes), batch):
            x = latent_from_codes(torch.from_numpy(codes[i : i + batch].astype(np.int64)), table)
            out.append(model(x).logits.float().numpy())
    return np.concatenate(out), 1.0 / (1.0 + np.exp(-teacher))


def _drawn_and_undrawn(corpus: Any, held: Any) -> tuple[Any, Any]:
    """``held`` (every held-out clip, in :func:`per_clip_split` order) cut into the clips whose recording
    the stable hash draw holds out and the others; ``(drawn, None)`` when there are no others."""
    import dataclasses

    from models.training.corpus_split import drawn_clips, per_clip_split
    from models.training.coverage import read_manifest

    rows = read_manifest(corpus)
    drawn = drawn_clips(corpus)
    mask = np.array([rows[i].clip in drawn for i in per_clip_split(rows, None)["held"]], dtype=bool)

    def take(keep: np.ndarray) -> Any:
        return dataclasses.replace(
            held,
            **{
                f.name: getattr(held, f.name)[keep]
                for f in dataclasses.fields(held)
                if getattr(held, f.name) is not None
            },
        )

    return take(mask), (take(~mask) if (~mask).any() else None)


def run_calibrate(args: argparse.Namespace) -> int:
    from app.commands.train_data import command_line
    from app.commands.train_tagger import prepare_features
    from models.nets.tagger import Tagger
    from models.resources import audioset_labels
    from models.training.calibrate import apply_offsets, fit_label_offsets
    from models.training.outputs import load_tagger_dir, save_tagger_dir
    from models.training.student_eval import evaluate_student

    names = list(audioset_labels())
    wanted = [w.strip() for w in args.labels.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in names]
    if unknown or not wanted:
        print(f"encotag train: calibrate: unknown labels {unknown or wanted}", file=sys.stderr)
        return 2
    if args.out.resolve() == args.tagger.resolve():
        print("encotag train: calibrate: --out must differ from --tagger", file=sys.stderr)
        return 2
    undrawn = args.fit_on == "held-undrawn"
    if undrawn and not (args.per_clip and args.drawn_only):
        msg = "--fit-on held-undrawn needs --per-clip --drawn-only"
        print(f"encotag train: calibrate: {msg}", file=sys.stderr)
        return 2
    cap = None if args.max_instead is None else args.max_instead / 100.0
    if cap is not None and (len(wanted) > 2 or not 0.0 <= cap <= 1.0):
        print("encotag train: calibrate: --max-instead takes 0-100 and one or two labels", file=sys.stderr)
        return 2
    cfg, state, tinfo = load_tagger_dir(args.tagger)
    model = Tagger(cfg)
    model.load_state_dict(state, strict=True)
    fitting = None
    if undrawn:  # every held-out clip loaded once, then cut into the drawn (scoring) and undrawn (fitting)
        # sets; the training split's codes are neither read nor encoded (only its teacher logits are used)
        both = argparse.Namespace(**(vars(args) | {"train_codes": False, "drawn_only": False}))
        train, held, table, _ = prepare_features(both)
        if held is not None:
            held, fitting = _drawn_and_undrawn(args.corpus[0], held)
    else:
        train, held, table, _ = prepare_features(args)
    if train is None or held is None or table is None or (undrawn and fitting is None):
        print(
            "encotag train: calibrate: needs --codec and a corpus with train and held-out clips",
            file=sys.stderr,
        )
        return 2
    student, teacher = _segment_logits(model, fitting if undrawn else train, table, args.max_segments)
    fit = fit_label_offsets(student, teacher, [names.index(w) for w in wanted], max_instead=cap)
    model.load_state_dict(apply_offsets(model.state_dict(), fit), strict=True)
    per_clip = bool(getattr(args, "per_clip", False))
    metrics = evaluate_student(
        model, train, held, table, augs=(0,), min_pos_trusted=5 if per_clip else 3, segments=per_clip
    )
    record = dataclasses.asdict(fit) | {"label_names": wanted, "from": str(args.tagger)}
    record["fit_on"] = args.fit_on
    info = dict(tinfo) | {
        "metrics": metrics,
        "calibration": record | {"command": command_line(args)},
    }
    save_tagger_dir(args.out, model, info)
    shown = {k: v for k, v in metrics.items() if not isinstance(v, list)}
    print(json.dumps({"calibration": record, "metrics": shown}, indent=1))
    return 0
