"""``encotag train export``: a per-clip distillation carried to another machine (docs/TRAINING.md,
"Training elsewhere").

It reads the per-clip caches of one corpus (building what is missing, as ``train features`` does) and
writes the training split as a bundle (:mod:`models.training.bundle`); ``encotag train tagger --bundle``
(:mod:`app.commands.train_tagger`) trains from such a bundle alone, without the corpus, the codec or the
teacher.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def run_export(args: argparse.Namespace) -> int:
    from app.commands.train_tagger import prepare_features

    if not getattr(args, "per_clip", False):
        raise ValueError("export takes a per-clip corpus (--per-clip)")
    if args.balance <= 0:
        raise ValueError("export needs class-balanced weights (--balance > 0)")
    from models.training.bundle import write_bundle

    train, _, table, info = prepare_features(args)
    info = {
        **info,
        "corpus": [str(c) for c in args.corpus],
        "teacher": str(args.teacher),
        "codec": str(args.codec),
    }
    path = write_bundle(Path(args.out), train, table.numpy(), info, part_mb=args.part_mb)
    size = sum(p.stat().st_size for p in path.parent.iterdir() if p.is_file())
    print(f"bundle written to {path.parent}: {len(train.codes)} training clips, {size / 1e6:.1f} MB")
    return 0
