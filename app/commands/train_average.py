"""``encotag train average``: the weighted mean of trained taggers of one lineage (a "model soup").

Reads the taggers (training folders or model packs, ``--tagger`` repeated), averages their weights
(:mod:`models.training.average`), scores the result on the held-out data of the feature arguments
(``--per-clip --corpus … --codec … --teacher …``, as ``encotag train tagger``) and writes a tagger folder
to ``--out`` whose record is the last tagger's plus the average; ``encotag train pack`` takes it.
"""

from __future__ import annotations

import argparse
import json
import sys


def run_average(args: argparse.Namespace) -> int:
    from app.commands.train_data import command_line
    from app.commands.train_tagger import prepare_features
    from models.config import to_dict
    from models.nets.tagger import Tagger
    from models.training.average import average_states
    from models.training.outputs import load_tagger_dir, save_tagger_dir
    from models.training.student_eval import evaluate_student

    taggers = list(args.tagger)
    weights = [float(w) for w in args.weights.split(",")] if args.weights else [1.0] * len(taggers)
    if len(taggers) < 2 or len(weights) != len(taggers):
        print("encotag train: average: two or more --tagger, one weight each", file=sys.stderr)
        return 2
    if any(args.out.resolve() == t.resolve() for t in taggers):
        print("encotag train: average: --out must differ from every --tagger", file=sys.stderr)
        return 2
    loaded = [load_tagger_dir(t) for t in taggers]
    cfgs = {json.dumps(to_dict(cfg), sort_keys=True) for cfg, _, _ in loaded}
    if len(cfgs) != 1:
        print("encotag train: average: the taggers have different configurations", file=sys.stderr)
        return 2
    cfg, _, info = loaded[-1]
    model = Tagger(cfg)
    model.load_state_dict(average_states([s for _, s, _ in loaded], weights), strict=True)
    train, held, table, feats = prepare_features(args)
    if train is None or held is None or table is None:
        print("encotag train: average: needs --codec and train and held-out clips", file=sys.stderr)
        return 2
    per_clip = bool(getattr(args, "per_clip", False))
    metrics = evaluate_student(
        model, train, held, table, augs=(0,), min_pos_trusted=5 if per_clip else 3, segments=per_clip
    )
    total = sum(weights)
    record = {
        "from": [str(t) for t in taggers],
        "weights": [w / total for w in weights],
        "command": command_line(args),
    }
    # the training data are the last tagger's; the held-out set is the one scored here
    scored = {
        k: v for k, v in (feats.get("data") or {}).items() if k in ("heldout_clips", "heldout_drawn_only")
    }
    data = dict(info.get("data") or {}) | scored
    save_tagger_dir(args.out, model, dict(info) | {"data": data, "metrics": metrics, "average": record})
    shown = {k: v for k, v in metrics.items() if not isinstance(v, list)}
    print(json.dumps({"average": record, "metrics": shown}, indent=1))
    return 0
