"""The evaluation report: a Markdown page (``docs/EVALUATION.md``) and a JSON dump of the same figures.

Rows are embedders, columns the tasks' accuracies, per-domain averages (mean over that domain's tasks),
the overall average (mean over all tasks), the embedding size, seconds of compute per hour of audio and,
for tagging packs, teacher agreement (mAP, top-1 rate). A second table compares the teacher and the
mel-statistics baseline with the independently measured reference figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.evaluation.agreement import AgreementScore, ClassAgreement
from models.evaluation.runner import EmbedderResult
from models.evaluation.tasks import DOMAINS, Task
from models.resources import audioset_labels

# Independently measured (StandardScaler + logistic regression, C in {0.01, 0.1, 1, 10} by 5-fold CV on the
# train part, whole-clip embeddings); the harness must land within ±REFERENCE_TOLERANCE. The teacher's
# figures describe EfficientAT's own clip embedding (pooled last feature map: the teacher's
# "final features" row), the baseline's the mean and std of the 128-band log-mel.
REFERENCE: dict[str, dict[str, float]] = {
    "teacher": {"fsdd_digits": 0.90, "fsdd_speaker": 0.97, "speech_commands": 0.55, "ravdess_emotion": 0.53},
    "melstats": {"fsdd_digits": 0.96, "fsdd_speaker": 1.00, "speech_commands": 0.52, "ravdess_emotion": 0.38},
}
REFERENCE_TOLERANCE = 0.03


@dataclass(frozen=True)
class ReportMeta:
    """Context printed above the tables."""

    date: str
    commit: str
    command: str
    machine: str
    quick: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def domain_scores(row: EmbedderResult, tasks: list[Task]) -> dict[str, float | None]:
    """Per-domain mean accuracy (None if the domain has no probed task) and ``average`` over all tasks."""
    out: dict[str, float | None] = {}
    for dom in DOMAINS:
        accs = [row.probes[t.name].accuracy for t in tasks if t.domain == dom and t.name in row.probes]
        out[dom] = float(np.mean(accs)) if accs else None
    accs = [row.probes[t.name].accuracy for t in tasks if t.name in row.probes]
    out["average"] = float(np.mean(accs)) if accs else None
    vals = [v for t in tasks if t.name in row.probes and (v := row.probes[t.name].val_accuracy) is not None]
    out["validation_average"] = float(np.mean(vals)) if vals and len(vals) == len(accs) else None
    return out


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _results_table(rows: list[EmbedderResult], tasks: list[Task]) -> list[str]:
    doms = [d for d in DOMAINS if any(t.domain == d for t in tasks)]
    head = [
        "embedder",
        "D",
        "CPU s / h audio",
        *[t.name for t in tasks],
        *doms,
        "average",
        "teacher mAP",
        "top-1",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for row in rows:
        scores = domain_scores(row, tasks)
        if row.is_teacher:
            agree = ["(reference)", "(reference)"]
        elif row.agreement is not None:
            agree = [_f(row.agreement.overall.map), _f(row.agreement.overall.top1)]
        else:
            agree = ["—", "—"]
        cells = [
            row.name,
            str(row.embedding_size),
            "—" if row.seconds_per_hour is None else f"{row.seconds_per_hour:.0f}",
            *[_f(row.probes[t.name].accuracy) if t.name in row.probes else "—" for t in tasks],
            *[_f(scores[d]) for d in doms],
            _f(scores["average"]),
            *agree,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _validation_table(rows: list[EmbedderResult], tasks: list[Task]) -> list[str]:
    """Inner cross-validation accuracy on each task's train part (rows that have it for every task)."""
    keep = [r for r in rows if r.probes and all(v.val_accuracy is not None for v in r.probes.values())]
    if not keep:
        return []
    names = [t.name for t in tasks]
    lines = ["| embedder | " + " | ".join(names) + " | average |", "|---|" + "---:|" * (len(names) + 1)]
    for row in keep:
        vals = [row.probes[n].val_accuracy if n in row.probes else None for n in names]
        lines.append(
            f"| {row.name} | "
            + " | ".join(_f(v) for v in vals)
            + f" | {_f(domain_scores(row, tasks)['validation_average'])} |"
        )
    return lines


def _reference_table(rows: list[EmbedderResult]) -> list[str]:
    lines = [
        "| embedder | task | reference | measured | difference | within ±0.03 |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        kind = row.reference
        if kind is None or kind not in REFERENCE:
            continue
        for task, ref in REFERENCE[kind].items():
            if task not in row.probes:
                continue
            got = row.probes[task].accuracy
            ok = "yes" if abs(got - ref) <= REFERENCE_TOLERANCE + 1e-9 else "**no**"
            lines.append(f"| {row.name} | {task} | {ref:.2f} | {got:.3f} | {got - ref:+.3f} | {ok} |")
    return lines if len(lines) > 2 else []


def _agreement_tables(rows: list[EmbedderResult]) -> list[str]:
    out: list[str] = []
    for row in rows:
        if row.agreement is None:
            continue
        out += [
            f"**{row.name}**",
            "",
            "| source | clips | classes ≥ 5 positives | mAP | top-1 |",
            "|---|---:|---:|---:|---:|",
        ]
        items = [*row.agreement.per_source.items(), ("**overall**", row.agreement.overall)]
        for src, s in items:
            out.append(f"| {src} | {s.n_clips} | {s.n_classes} | {_f(s.map)} | {_f(s.top1)} |")
        out.append("")
        b, bs = row.agreement.broad, row.agreement.broad_segments
        if b is not None:
            out += [
                "Broad held-out set (the corpus `val` split: recordings held out from every source; whole"
                " 10-s clips, and the same clips as 2-s segments tagged one by one):",
                "",
                "| unit | items | classes ≥ 5 positives | mAP | top-1 | top-5 overlap"
                " | Music/Speech instead of neither | Music/Speech ≥ 0.3 where the teacher has neither |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
                _broad_row("10-s clips", b),
                *([_broad_row("2-s segments", bs)] if bs is not None else []),
                "",
            ]
            if row.agreement.broad_segments_per_class:
                out += _class_table(row.agreement.broad_segments_per_class, "broad held-out 2-s segment")
            elif row.agreement.broad_per_class:
                out += _class_table(row.agreement.broad_per_class, "broad held-out")
        if row.agreement.per_class:
            out += _class_table(row.agreement.per_class)
    return out


def _broad_row(unit: str, b: AgreementScore) -> str:
    ms, above = ("—" if v is None else f"{100 * v:.1f} %" for v in (b.ms_instead, b.ms_above))
    figures = f"{_f(b.map)} | {_f(b.top1)} | {_f(b.top5)} | {ms} | {above}"
    return f"| {unit} | {b.n_clips} | {b.n_classes} | {figures} |"


def _class_table(per_class: tuple[ClassAgreement, ...], which: str = "overall") -> list[str]:
    """The classes of one mAP, weakest first."""
    labels = audioset_labels()
    out = [
        f"Per class (the classes of the {which} mAP, weakest first):",
        "",
        "| class | teacher positives | AP | most positives from |",
        "|---|---:|---:|---|",
    ]
    for c in sorted(per_class, key=lambda c: (c.ap, c.index)):
        name = labels[c.index] if c.index < len(labels) else str(c.index)
        out.append(f"| {name} | {c.positives} | {c.ap:.3f} | {c.top_source} ({c.top_source_positives}) |")
    return [*out, ""]


def _task_table(tasks: list[Task]) -> list[str]:
    lines = ["| task | domain | folder | clips | protocol |", "|---|---|---|---:|---|"]
    for t in tasks:
        lines.append(f"| {t.name} | {t.domain} | `{t.root.name}` | {len(t)} | {t.describe()} |")
    return lines


def render_markdown(rows: list[EmbedderResult], tasks: list[Task], meta: ReportMeta, protocol: str) -> str:
    """The whole report page as Markdown (``protocol``: the fixed description of the method, appended)."""
    lines = [
        "# Evaluation",
        "",
        f"Generated by `encotag eval` on {meta.date}, commit `{meta.commit}`"
        + (" — **quick mode** (subsampled; not comparable with full runs)." if meta.quick else "."),
        "",
        "```",
        meta.command,
        "```",
        "",
        f"Machine: {meta.machine}.",
        "",
        "## Linear-probe accuracy",
        "",
        *_results_table(rows, tasks),
        "",
        "Columns: probe test accuracy per task; domain columns are the mean over that domain's tasks, "
        "`average` the mean over all tasks; `D` the embedding size; `CPU s / h audio` the embedding compute "
        "time in CPU seconds per hour of audio (decoding and resampling excluded), measured while embedding; "
        "`teacher mAP` and `top-1` the teacher agreement of tagging packs on held-out clips (below).",
        "",
    ]
    val = _validation_table(rows, tasks)
    if val:
        lines += [
            "## Probe validation accuracy",
            "",
            *val,
            "",
            "The inner cross-validation accuracy of each probe's chosen `C` on the task's train part: it "
            "never sees the test clips, so candidates can be compared on it without spending the test set.",
            "",
        ]
    ref = _reference_table(rows)
    if ref and not meta.quick:
        lines += ["## Reference figures", "", *ref, ""]
    agree = _agreement_tables(rows)
    if agree:
        lines += ["## Teacher agreement per source and class", "", *agree]
    lines += ["## Tasks", "", *_task_table(tasks), ""]
    if meta.notes:
        lines += ["## Notes on this run", "", *[f"- {n}" for n in meta.notes], ""]
    lines += [protocol.strip(), ""]
    return "\n".join(lines)


def results_json(rows: list[EmbedderResult], tasks: list[Task], meta: ReportMeta) -> str:
    """All figures as JSON (for CI and comparisons between runs)."""
    data = {
        "meta": {"date": meta.date, "commit": meta.commit, "command": meta.command, "quick": meta.quick},
        "tasks": [
            {"name": t.name, "domain": t.domain, "folder": str(t.root), "clips": len(t)} for t in tasks
        ],
        "rows": [
            {
                "name": r.name,
                "id": r.id,
                "embedding_size": r.embedding_size,
                "seconds_per_hour": r.seconds_per_hour,
                "accuracy": {k: v.accuracy for k, v in r.probes.items()},
                "chosen_c": {k: list(v.chosen_c) for k, v in r.probes.items()},
                "validation_accuracy": {k: v.val_accuracy for k, v in r.probes.items()},
                "failed_clips": r.failed,
                "domains": domain_scores(r, tasks),
                "agreement": None
                if r.agreement is None
                else {
                    "overall": vars(r.agreement.overall),
                    "per_source": {k: vars(v) for k, v in r.agreement.per_source.items()},
                    "per_class": [vars(c) for c in r.agreement.per_class],
                    "broad": None if r.agreement.broad is None else vars(r.agreement.broad),
                    "broad_per_class": [vars(c) for c in r.agreement.broad_per_class],
                    "broad_segments": None
                    if r.agreement.broad_segments is None
                    else vars(r.agreement.broad_segments),
                    "broad_segments_per_class": [vars(c) for c in r.agreement.broad_segments_per_class],
                },
            }
            for r in rows
        ],
    }
    return json.dumps(data, indent=2)


BEGIN_MARK = "<!-- encotag eval: generated section begins; edit outside these markers -->"
END_MARK = "<!-- encotag eval: generated section ends -->"


def merge_report(existing: str | None, generated: str) -> str:
    """Put ``generated`` between the markers of ``existing`` (text outside them is kept, hand-written);
    a page without markers (or no page) becomes just the generated section."""
    block = f"{BEGIN_MARK}\n{generated.rstrip()}\n{END_MARK}\n"
    if existing and BEGIN_MARK in existing and END_MARK in existing:
        head, rest = existing.split(BEGIN_MARK, 1)
        tail = rest.split(END_MARK, 1)[1]
        return head + block + tail.lstrip("\n")
    return block


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` safely (``models.safeio.atomic_write_bytes``)."""
    from models.safeio import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8"))


PROTOCOL = """
## Protocol

- **Embeddings** are frozen and whole-clip: each clip is decoded (soundfile), averaged to mono and resampled
  with soxr (HQ) to the embedder's rate. Packs (the teacher included) see the whole clip, unpadded, in one
  forward pass — the tagger pools over time; the engine zero-pads only clips under 50 ms
  (`--pad-to-window` pads clips shorter than the pack's 1 s window instead). A pack's row uses its scene
  embedding (mid-level blocks 5, 11, 13, 15 + low-level per-band means). The teacher has two rows: its
  pack scene embedding (320 dims), comparable with other packs, and **final features** — the global
  average of its last feature map (384 dims, EfficientAT's own clip embedding), captured in the same pass;
  the reference figures were measured on the latter. The **mel-statistics baseline** is the mean and
  standard deviation over time of the teacher's 128-band log-mel (`models.nets.frontends.MelFrontend`,
  32 kHz): 256 dims.
- **Probe** (HARES protocol): StandardScaler + multinomial logistic regression (lbfgs, up to 5000
  iterations); C from {0.01, 0.1, 1, 10} by seeded stratified 5-fold cross-validation on the train part
  (ties → smaller C), refit on the whole train part, accuracy on the test part. Splits come from each set's
  own `split` column; a set without a test split (mod_sounds) is scored by seeded stratified 5-fold
  cross-validation (mean accuracy over the folds, C chosen inside each fold's train part); a `fold` column,
  where a set has one, defines the folds instead. The **validation accuracy** is the chosen C's mean
  accuracy in that inner cross-validation: it never sees the test part, so candidates are compared on it
  and the test accuracy is kept for the final figure.
- **Tasks and domains.** Speech: FSDD digits (label) and FSDD speaker (`speaker` column; every speaker is
  in both splits), Speech Commands keywords, RAVDESS emotion. Environment: donateacry (reason of the
  infant cry), mod_sounds (classes with ≥ 5 examples only: 8 classes, 49 clips). Music: pitch — single
  notes rendered by fluidsynth with the FluidR3 GM soundfont, label = MIDI pitch 48–84, even GM programs
  of the 12 melodic families train, odd programs test (`models/evaluation/pitch.py`). Too small for a
  probe and left out: sms_tools_sounds (35 clips, 26 classes) and librosa_data (10 clips, 10 classes).
  `--task DIR` adds any folder with a `labels.csv` in the shared layout. Domain columns average their
  tasks; `average` is the mean over all tasks.
- **Teacher agreement** (tagging packs other than the teacher): on held-out clips — the corpus `val`
  split plus the shared sets' test splits — teacher labels are teacher probability ≥ 0.5; mAP is the mean
  of `average_precision_score` over classes with ≥ 5 teacher positives; top-1 is the fraction of clips
  where the pack's and the teacher's highest-scoring classes agree; per source and overall, and the AP of
  each class of the overall mAP with the source that holds most of its positives. The **broad held-out
  set** is the corpus `val` split alone (recordings held out by recording from every source, their
  augmented copies left out), scored on whole 10-s clips and on 2-s segments (each clip cut into
  non-overlapping 2-s segments that the pack and the teacher tag one by one: the unit the student is
  distilled on), with top-5 overlap (share of the teacher's top 5 in the pack's top 5) and the share of
  items whose top tag is Music or Speech while the teacher's is neither.
- **Speed** is the embedding compute time in process CPU seconds (decoding and resampling excluded; CPU
  time rather than wall time because the machine is shared) per hour of audio with the number of torch
  threads shown above, measured when the embedding was computed (cached embeddings keep
  the time measured then).
- **Determinism**: sorted clip lists, seeded folds and solvers, single-threaded torch by default;
  embeddings are cached by embedder id (pack id + recipe) and file sha256, so re-runs reproduce the
  table. `--quick` (CI) probes FSDD digits, FSDD speaker, Speech Commands, donateacry and a small pitch
  set with at most 100 clips per task: its figures are not comparable with full runs.
"""
