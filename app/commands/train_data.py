"""The training data choices that ``encotag train``, ``train-tagger`` and ``corpus`` share: which clips
of a corpus train and which are held out, an evenly spaced subset, a per-source summary and the command
line recorded in the outputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def clips_for(corpus: Path) -> tuple[list[Any], list[Any]]:
    """(train clips, held-out clips) of a corpus folder or a shared data folder."""
    from models.training.features import corpus_clips, shared_clips

    if (corpus / "manifest.csv").is_file():
        clips = corpus_clips(corpus)
        return [c for c in clips if c.split == "train"], [c for c in clips if c.split != "train"]
    if any(corpus.glob("*/labels.csv")):
        return shared_clips(corpus, "train"), shared_clips(corpus, "test")
    raise FileNotFoundError(f"{corpus}: neither a corpus (manifest.csv) nor a data folder (*/labels.csv)")


def evenly_spaced(items: list[Any], n: int, phase: float = 0.0) -> list[Any]:
    """``n`` items spread evenly over the whole list (all of them when it is no longer than ``n``).

    ``phase`` in [0, 1) shifts every pick by that fraction of the spacing: the picks for phases
    ``j/K`` (``j < K``) are disjoint when the list holds at least ``K·n`` items, and phase 0 is the
    plain selection, so adding shards never changes (or re-computes) the first one.
    """
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[min(int((i + phase) * step), len(items) - 1)] for i in range(n)]


def data_summary(clips: list[Any], audio: list[Any], sr: int) -> dict[str, Any]:
    """Hours and licences per source."""
    out: dict[str, Any] = {}
    for c, a in zip(clips, audio, strict=True):
        s = out.setdefault(c.source or "unknown", {"clips": 0, "hours": 0.0, "licences": []})
        s["clips"] += 1
        s["hours"] += len(a) / sr / 3600
        if c.licence and c.licence not in s["licences"]:
            s["licences"].append(c.licence)
    for s in out.values():
        s["hours"] = round(s["hours"], 4)
    return out


def command_line(args: argparse.Namespace) -> str:
    """The command as given to the CLI (``args.argv``; ``sys.argv`` when called without ``app.cli``)."""
    return " ".join(getattr(args, "argv", sys.argv[1:]))
