"""The training corpus builder behind ``encotag corpus build``.

Builds 10 s mono 24 kHz FLAC clips from the sources in :mod:`models.training.corpus_sources` into
``OUT/clips/<source>/``, with ``OUT/manifest.csv`` (clip, source, origin, domain, licence, duration, split,
params) and ``OUT/summary.md`` (hours per source and domain, licences).

Balance and order: the build runs in rounds towards milestones (3 h, 10 h, then the target). Each round
plans units so that, at every point of the plan, the domain with the fewest hours (speech, music,
environment) gets the next unit, and inside a domain the source with the fewest hours, up to
``max_hours_per_source``; a domain whose sources are exhausted leaves its share to the others. So any
prefix of the build is roughly balanced, and ``READY_<h>h`` marker files appear as milestones are passed.

Determinism and resume: every unit is rendered from (seed, source, uid) alone, and a round's plan depends
only on the results of earlier rounds, so the same seed gives the same corpus. Finished units are appended
to ``OUT/journal.jsonl``; a re-run skips them (and re-renders units whose clips went missing). The
manifest is rewritten atomically every few units, so a partial corpus is always usable.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing as mp
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.training.corpus_render import MANIFEST_COLUMNS, render_unit
from models.training.corpus_sources import DOMAINS, Source, Unit
from models.training.corpus_split import cover_every_source
from models.training.corpus_synth import SYNTHS, all_sources

log = logging.getLogger(__name__)

MILESTONES_H = (3.0, 10.0)
GROUPS = {"shared": "shared/", "synth": "synth", "mix": "mix"}


@dataclass(frozen=True)
class BuildOptions:
    """Options of one build (see ``encotag corpus build --help``)."""

    out_dir: Path
    shared_root: Path
    hours: float = 20.0
    max_hours_per_source: float = 2.0
    sources: tuple[str, ...] = ()  # empty = all available
    seed: int = 0
    jobs: int = 2
    mix: bool = False
    augment: bool = False
    manifest_every: int = 25
    source_caps: dict[str, float] = field(default_factory=dict)  # per-source cap overrides (hours)
    snapshots: Path | None = None  # repository snapshots of real recordings (corpus_snapshots)
    stretch: int = 0  # augmented copies of every real recording, plus real-ambience mixtures
    domain_weights: dict[str, float] = field(default_factory=dict)  # share of each domain (default equal)


def corpus_sources(opts: BuildOptions) -> list[Source]:
    """Every source this build can draw from: the built-in ones (with the Debian archives, extracted into
    ``out_dir/archives``), the repository snapshots under
    ``opts.snapshots`` and, with ``opts.stretch``, their augmented copies and real-ambience mixtures."""
    from models.training.corpus_archives import ARCHIVES, archive_source

    srcs = all_sources(opts.shared_root, opts.mix)
    srcs += [archive_source(a, opts.out_dir / "archives") for a in ARCHIVES]
    if opts.snapshots is not None:
        from models.training.corpus_snapshots import snapshot_sources
        from models.training.corpus_stretch import stretch_sources

        srcs += snapshot_sources(opts.snapshots, opts.shared_root)
        if opts.stretch > 0:
            srcs += stretch_sources(srcs, opts.stretch)
    return srcs


def select_sources(all_srcs: list[Source], wanted: Iterable[str]) -> list[Source]:
    """Sources named in ``wanted`` (names, or groups: shared, debian, synth, mix); all if empty. An
    ``opt_in`` source is taken only when named itself."""
    wanted = [w.strip() for w in wanted if w.strip()]
    if not wanted:
        return [s for s in all_srcs if not s.opt_in]
    out = []
    for s in all_srcs:
        if s.opt_in:
            if s.name in wanted:
                out.append(s)
            continue
        is_shared = s.origin.startswith("shared/")
        is_mix = s.origin == "mixture"
        group = (
            "shared"
            if is_shared
            else "mix"
            if is_mix
            else "synth"
            if s.name in SYNTHS
            else "real"
            if "@" in s.origin
            else "debian"
        )
        if s.name in wanted or group in wanted or s.origin in wanted:
            out.append(s)
    unknown = (
        set(wanted) - {s.name for s in all_srcs} - {s.origin for s in all_srcs} - {*GROUPS, "debian", "real"}
    )
    if unknown:
        raise ValueError(f"unknown source(s): {', '.join(sorted(unknown))}")
    return out


class Journal:
    """``journal.jsonl``: one JSON line per finished unit (round, source, uid, rows or error)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    e = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash: that unit is simply redone
                    continue
                self.entries[(e["source"], e["uid"])] = e

    def valid(self, out_dir: Path, key: tuple[str, str]) -> bool:
        e = self.entries.get(key)
        if e is None or "error" in e:  # failed units are retried by the next run
            return False
        return all((out_dir / r["clip"]).is_file() for r in e.get("rows", []))

    def add(self, entry: dict[str, Any]) -> None:
        self.entries[(entry["source"], entry["uid"])] = entry
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def rows(self) -> list[dict[str, Any]]:
        return sorted((r for e in self.entries.values() for r in e.get("rows", [])), key=lambda r: r["clip"])


def _hours(rows: Iterable[dict[str, Any]], key: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for r in rows:
        out[r[key]] += float(r["duration"]) / 3600
    return out


def plan_round(
    srcs: list[Source], opts: BuildOptions, target_h: float, journal: Journal, round_no: int
) -> list[Unit]:
    """Units for one round: fill the domain with the fewest hours first (source with the fewest hours
    inside it, up to its cap) until the total reaches ``target_h``; earlier rounds count as done."""
    earlier = [e for e in journal.entries.values() if e["round"] < round_no]
    done_keys = {(e["source"], e["uid"]) for e in earlier}
    by_src = _hours((r for e in earlier for r in e.get("rows", [])), "source")
    src_h = {s.name: by_src.get(s.name, 0.0) for s in srcs}
    dom_h = {
        d: sum(h for n, h in src_h.items() if next(s for s in srcs if s.name == n).domain == d)
        for d in DOMAINS
    }
    iters: dict[str, Iterator[Unit]] = {}
    open_srcs = {s.name for s in srcs}
    plan: list[Unit] = []
    while sum(dom_h.values()) < target_h:
        doms = [d for d in DOMAINS if any(s.domain == d and s.name in open_srcs for s in srcs)]
        if not doms:
            break
        weight = {d: max(opts.domain_weights.get(d, 1.0), 1e-6) for d in DOMAINS}
        dom = min(doms, key=lambda d: (dom_h[d] / weight[d], DOMAINS.index(d)))
        cands = [s for s in srcs if s.domain == dom and s.name in open_srcs]
        src = min(cands, key=lambda s: (src_h[s.name], srcs.index(s)))
        cap = opts.source_caps.get(src.name, opts.max_hours_per_source)
        if src_h[src.name] >= cap:
            open_srcs.discard(src.name)
            continue
        it = iters.setdefault(src.name, src.units(opts.seed))
        unit = next((u for u in it if (u.source, u.uid) not in done_keys), None)
        if unit is None:
            open_srcs.discard(src.name)
            continue
        plan.append(unit)
        src_h[src.name] += unit.est_s / 3600
        dom_h[dom] += unit.est_s / 3600
    return plan


def write_outputs(opts: BuildOptions, journal: Journal, srcs: list[Source], final: bool = False) -> float:
    """Atomically rewrite manifest.csv and summary.md, write READY markers; return total hours."""
    rows = [r for r in journal.rows() if (opts.out_dir / r["clip"]).is_file()]
    before = previous_splits(opts.out_dir / "manifest.csv")
    # a held-out recording in every source (held-out ones stay so as the corpus grows); no leaking mixtures
    rows, _ = cover_every_source(rows, keep_val={c for c, s in before.items() if s != "train"})
    for r in rows:  # a clip whose split changed loses its teacher cache (held-out clips cache whole clips)
        if r["clip"] in before and before[r["clip"]] != r["split"]:
            (opts.out_dir / "teacher_segments" / (r["clip"] + ".npy")).unlink(missing_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    _atomic_write(opts.out_dir / "manifest.csv", buf.getvalue())
    _atomic_write(opts.out_dir / "summary.md", summary_markdown(rows, srcs, opts, final))
    total = sum(float(r["duration"]) for r in rows) / 3600
    for m in sorted({*MILESTONES_H, opts.hours}):
        marker = opts.out_dir / f"READY_{m:g}h"
        if total >= m and not marker.exists():
            _atomic_write(
                marker, f"{total:.2f} hours, {len(rows)} clips, {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
            )
    return total


def previous_splits(manifest: Path) -> dict[str, str]:
    """clip → split of an existing manifest (empty when there is none or it cannot be read)."""
    try:
        with manifest.open(newline="", encoding="utf-8") as fh:
            return {
                str(r["clip"]): str(r["split"])
                for r in csv.DictReader(fh)
                if r.get("clip") and r.get("split")
            }
    except (OSError, UnicodeDecodeError, csv.Error, KeyError):
        return {}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def summary_markdown(rows: list[dict[str, Any]], srcs: list[Source], opts: BuildOptions, final: bool) -> str:
    """Hours and clips per source and per domain, with each source's origin and licences."""
    per: dict[str, dict[str, Any]] = {}
    for r in rows:
        p = per.setdefault(
            r["source"], {"domain": r["domain"], "origin": r["origin"], "clips": 0, "h": 0.0, "lic": set()}
        )
        p["clips"] += 1
        p["h"] += float(r["duration"]) / 3600
        p["lic"].add(r["licence"])
    dom = _hours(rows, "domain")
    split = _hours(rows, "split")
    total = sum(dom.values())
    lines = [
        f"# Corpus summary ({'complete' if final else 'in progress'})",
        "",
        f"{len(rows)} clips, {total:.2f} hours"
        f" (train {split.get('train', 0):.2f} h, val {split.get('val', 0):.2f} h);"
        f" seed {opts.seed}, target {opts.hours:g} h, max {opts.max_hours_per_source:g} h per source,"
        f" mix {'on' if opts.mix else 'off'}, augment {'on' if opts.augment else 'off'}.",
        "",
        "| domain | hours | share |",
        "|---|---:|---:|",
    ]
    for d in DOMAINS:
        lines.append(f"| {d} | {dom.get(d, 0):.2f} | {100 * dom.get(d, 0) / max(total, 1e-9):.0f} % |")
    lines += ["", "| source | domain | origin | clips | hours | licence(s) |", "|---|---|---|---:|---:|---|"]
    for name in sorted(per, key=lambda n: (DOMAINS.index(per[n]["domain"]), n)):
        p = per[name]
        lics = "; ".join(sorted(p["lic"]))
        lines.append(f"| {name} | {p['domain']} | {p['origin']} | {p['clips']} | {p['h']:.2f} | {lics} |")
    lic_h = _hours(rows, "licence")
    lines += ["", "| licence | hours |", "|---|---:|"]
    lines += [f"| {lic} | {h:.2f} |" for lic, h in sorted(lic_h.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


def _job(args: tuple[Unit, str, int, str, str, bool]) -> tuple[Unit, list[dict[str, Any]] | None, str]:
    unit = args[0]
    try:
        return unit, render_unit(*args), ""
    except Exception as exc:  # noqa: BLE001 - one bad unit never stops the build
        return unit, None, f"{type(exc).__name__}: {exc}"


def build(opts: BuildOptions, progress: Callable[[str], None] | None = None) -> float:
    """Build (or resume) the corpus; returns the total hours in the manifest."""
    say = progress or (lambda msg: log.info("%s", msg))
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    srcs = []
    for s in select_sources(corpus_sources(opts), opts.sources):
        reason = s.missing()
        if reason:
            say(f"skipping source {s.name}: {reason}")
        else:
            srcs.append(s)
    if not srcs:
        raise ValueError("no source available")
    journal = Journal(opts.out_dir / "journal.jsonl")
    info = {s.name: (s.domain, s.origin) for s in srcs}
    milestones = [m for m in MILESTONES_H if m < opts.hours] + [opts.hours]
    total = write_outputs(opts, journal, srcs)
    t0 = time.time()
    pool = mp.get_context("spawn").Pool(min(max(opts.jobs, 1), 2)) if opts.jobs > 1 else None
    try:
        round_no, targets = 0, list(milestones)
        while targets:
            target = targets.pop(0)
            plan = plan_round(srcs, opts, target, journal, round_no)
            todo = [u for u in plan if not journal.valid(opts.out_dir, (u.source, u.uid))]
            say(f"round {round_no}: target {target:g} h, {len(plan)} units planned, {len(todo)} to render")
            args = [(u, str(opts.out_dir), opts.seed, *info[u.source], opts.augment) for u in todo]
            results = pool.imap(_job, args, chunksize=1) if pool else map(_job, args)
            for k, (unit, rows, err) in enumerate(results, 1):
                entry: dict[str, Any] = {"round": round_no, "source": unit.source, "uid": unit.uid}
                if rows is None:
                    say(f"warning: {unit.source}/{unit.uid}: {err}")
                    entry["error"] = err
                else:
                    entry["rows"] = rows
                journal.add(entry)
                if k % opts.manifest_every == 0 or k == len(todo):
                    total = write_outputs(opts, journal, srcs)
                    dom = _hours(journal.rows(), "domain")
                    say(
                        f"round {round_no}: {k}/{len(todo)} units, {total:.2f} h ("
                        + ", ".join(f"{d} {dom.get(d, 0):.2f}" for d in DOMAINS)
                        + f"), {time.time() - t0:.0f} s"
                    )
            total = write_outputs(opts, journal, srcs)
            round_no += 1
            if not targets and total < opts.hours and plan and round_no < len(milestones) + 5:
                targets.append(opts.hours)  # estimates fell short: top up
    finally:
        if pool:
            pool.close()
            pool.join()
    total = write_outputs(opts, journal, srcs, final=True)
    say(f"done: {total:.2f} h in {time.time() - t0:.0f} s")
    return total
