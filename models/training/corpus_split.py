"""Held-out recordings in every source (``encotag corpus resplit``, and every manifest the builder writes).

The split is drawn per recording by a stable hash (:func:`models.training.corpus_stretch.split_for`: 12 % of
the real recordings, 5 % of the rest), so a source of a few recordings can end up with none held out, and
the broad held-out set then says nothing about it. :func:`cover_every_source` moves one recording of each
such source (of two or more recordings) to ``val``: the one with the smallest stable hash, with all its
clips and derived copies (``<source>+aug``, ``<source>+train``, same unit id before ``~``). A mixture is a
training clip only while none of its parts is a held-out recording: training mixtures holding a part of a
``val`` recording are left out of the manifest (they stay in the journal). The rule is deterministic, so a
rebuild writes the same manifest. A recording once held out stays held out (``keep_val``: the builder passes
the clips of its previous manifest's ``val`` split), so growing a corpus never moves a held-out recording
back into training when a new recording of its source is drawn for ``val``. :func:`widen_held_out` holds out
a larger share by the same hash (``encotag corpus resplit --held-out-percent P --out DIR``), nesting the draw.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Any

from models.training.corpus_sources import stable_hash
from models.training.corpus_stretch import split_for

AUG_SUFFIX = "+aug"
DERIVED_SUFFIXES = (AUG_SUFFIX, "+train")  # copies of a recording: augmented, or its events re-timed
MIXTURE = "mixture"


def _params(row: dict[str, Any]) -> dict[str, Any]:
    p = row.get("params") or {}
    if isinstance(p, str):
        try:
            p = json.loads(p) if p else {}
        except ValueError:
            return {}
    return p if isinstance(p, dict) else {}


def recording_of(row: dict[str, Any]) -> tuple[str, str]:
    """(source without ``+aug`` / ``+train``, unit id without the copy suffix) of a non-mixture row."""
    unit = str(_params(row).get("unit") or row["clip"])
    source = str(row["source"])
    for suffix in DERIVED_SUFFIXES:
        source = source.removesuffix(suffix)
    return source, unit.split("~")[0]


def drawn_by_hash(row: dict[str, Any]) -> bool:
    """Whether the stable hash draw (:func:`split_for`) holds out the recording of ``row`` (a non-mixture
    manifest row, or a copy of one), which it does in every build of every corpus edition; a recording
    held out only by :func:`cover_every_source` or ``keep_val`` depends on the build's history."""
    try:
        source, unit = recording_of(row)
    except KeyError:
        return False
    return split_for(source, unit, "@" in (row.get("origin") or "")) == "val"


def drawn_clips(corpus: Path) -> set[str]:
    """The ``clip`` paths of ``corpus/manifest.csv`` whose recording the stable hash draw holds out
    (:func:`drawn_by_hash`; mixtures never): the held-out set that is the same in every build."""
    with (corpus / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        return {
            str(r["clip"])
            for r in csv.DictReader(fh)
            if r.get("clip") and (r.get("origin") or "") != MIXTURE and drawn_by_hash(r)
        }


def per_clip_split(rows: list[Any], drawn: set[str] | None) -> dict[str, list[int]]:
    """Manifest row indices of the ``train`` clips and of the held-out ones (``val`` less mixtures; with
    ``drawn``, only those clips), in manifest order: the row order of ``encotag train``'s per-clip data."""
    return {
        "train": [i for i, r in enumerate(rows) if r.split == "train"],
        "held": [i for i, r in enumerate(rows) if r.held_out and (drawn is None or r.clip in drawn)],
    }


def files_of(row: dict[str, Any]) -> set[str]:
    """The source files a row was cut or mixed from (``file``/``files``, and a mixture's ``bg``/``fg``)."""
    p = _params(row)
    out: set[str] = set()
    for part in (p, p.get("bg") or {}, p.get("fg") or {}):
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("file"), str):
            out.add(part["file"])
        files = part.get("files")
        if isinstance(files, list):
            out.update(f for f in files if isinstance(f, str))
    return out


def cover_every_source(
    rows: list[dict[str, Any]], keep_val: Collection[str] = ()
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``rows`` (manifest dicts) with one held-out recording in every source of ≥ 2 recordings that had
    none, and without the training mixtures that hold a part of a held-out recording; returns
    (new rows, what changed: ``moved`` source → unit, ``mixtures_left_out``). Every recording with a clip
    in ``keep_val`` (clip paths held out before) is held out whole, whatever its drawn split."""
    units: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, r in enumerate(rows):
        if r.get("origin") != MIXTURE:
            src, uid = recording_of(r)
            units[src][uid].append(i)
    split = [str(r["split"]) for r in rows]
    kept = {recording_of(r) for r in rows if r.get("origin") != MIXTURE and r["clip"] in set(keep_val)}
    for src, uid in kept:
        for i in units[src][uid]:
            split[i] = "val"
    moved: dict[str, str] = {}
    for src, by_unit in sorted(units.items()):
        if len(by_unit) < 2 or any(split[i] != "train" for idx in by_unit.values() for i in idx):
            continue
        uid = min(by_unit, key=lambda u: (stable_hash("cover", src, u), u))
        for i in by_unit[uid]:
            split[i] = "val"
        moved[src] = uid
    held_files: set[str] = set()
    for i, r in enumerate(rows):
        if r.get("origin") != MIXTURE and split[i] != "train":
            held_files |= files_of(r)
    out, dropped = [], 0
    for i, r in enumerate(rows):
        if r.get("origin") == MIXTURE and split[i] == "train" and files_of(r) & held_files:
            dropped += 1
            continue
        out.append(r if split[i] == r["split"] else {**r, "split": split[i]})
    return out, {"moved": moved, "mixtures_left_out": dropped}


def widen_held_out(
    rows: list[dict[str, Any]], percent: int, keep_sources: Collection[str] = ()
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``rows`` re-split with a larger held-out share, by the same stable hash as the draw, so the draw's
    held-out recordings stay held out (``stable_hash("split", source, unit) % 100 < percent`` widens the
    draw's 12 % or 5 %). Sources in ``keep_sources`` keep the draw's share: the sources a warm-start model
    was trained on, whose other recordings must stay out of the held-out set. Every other recording is a
    training recording, including one held out before only by :func:`cover_every_source`; derived copies
    follow their recording, and training mixtures holding a part of a held-out recording are left out.
    Returns (new rows, counts: ``recordings``, ``held_out``, ``to_val``, ``to_train``,
    ``mixtures_left_out``)."""
    if not 0 <= percent <= 100:
        raise ValueError(f"held-out percent {percent} is not in 0-100")
    keep = set(keep_sources)

    def held(r: dict[str, Any]) -> bool:
        src, uid = recording_of(r)
        return drawn_by_hash(r) or (src not in keep and stable_hash("split", src, uid) % 100 < percent)

    split = ["" if r.get("origin") == MIXTURE else ("val" if held(r) else "train") for r in rows]
    held_files: set[str] = set()
    for r, s in zip(rows, split, strict=True):
        if s == "val":
            held_files |= files_of(r)
    out: list[dict[str, Any]] = []
    dropped = 0
    for r, s in zip(rows, split, strict=True):
        if not s:  # a mixture
            if r["split"] == "train" and files_of(r) & held_files:
                dropped += 1
                continue
            s = str(r["split"])
        out.append(r if s == r["split"] else {**r, "split": s})
    recs = {recording_of(r) for r in rows if r.get("origin") != MIXTURE}
    held_recs = {recording_of(r) for r, s in zip(rows, split, strict=True) if s == "val"}
    moved = [(r["split"], s) for r, s in zip(rows, split, strict=True) if s and s != r["split"]]
    return out, {
        "recordings": len(recs),
        "held_out": len(held_recs),
        "to_val": sum(new == "val" for _, new in moved),
        "to_train": sum(new == "train" for _, new in moved),
        "mixtures_left_out": dropped,
    }


def halve_training(rows: list[dict[str, Any]], halvings: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``rows`` with the training recordings thinned for a learning curve: a training recording is kept
    when ``stable_hash("half", source, unit) % 2**halvings == 0`` (about ``2**-halvings`` of them; each
    view nests in the one of fewer halvings). Its derived copies follow it; a training mixture is left out
    when it holds a file of a left-out recording; held-out rows are all kept, so the held-out set does not
    change. Returns (kept rows, counts: ``recordings``, ``kept_recordings``, ``rows_left_out``)."""
    if not 0 <= halvings <= 16:
        raise ValueError(f"halvings {halvings} is not in 0-16")
    step = 2**halvings
    # per row: its training recording and whether it is kept (None: a held-out row or a mixture)
    rec = [recording_of(r) if r["split"] == "train" and r.get("origin") != MIXTURE else None for r in rows]
    keep = [None if x is None else stable_hash("half", *x) % step == 0 for x in rec]
    dropped_files: set[str] = set()
    for r, k in zip(rows, keep, strict=True):
        if k is False:
            dropped_files |= files_of(r)
    out = [
        r
        for r, k in zip(rows, keep, strict=True)
        if k or (k is None and (r["split"] != "train" or not files_of(r) & dropped_files))
    ]
    kept = {x for x, k in zip(rec, keep, strict=True) if k}
    recs = {x for x in rec if x is not None}
    return out, {"recordings": len(recs), "kept_recordings": len(kept), "rows_left_out": len(rows) - len(out)}
