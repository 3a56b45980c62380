"""The synthesized pitch task (music domain): MIDI pitch of single notes rendered by fluidsynth.

Notes are rendered with the FluidR3 General MIDI soundfont (:mod:`models.training.fluid`, dry, velocity
100, held 0.75 s plus a 0.5 s release tail → 1.25 s clips at 32 kHz). The label is the MIDI pitch
(48–84: C3–C6, 37 classes). Instruments are split between train and test so the probe must generalise
across timbre: in each of the 12 melodic GM families (programs 0–95, 8 per family) the first program
(8f, even) is train and the second (8f+1, odd) test: 12 instruments each, 444 + 444 notes. The quick
variant uses 4 families (piano, organ, guitar, strings: programs 8f train, 8f+1 test) and pitches 60–71.

The rendered set is written once as FLAC + ``labels.csv`` (the shared-data layout, plus a ``program``
column) under a work folder outside the repository, atomically (temp folder + ``os.replace``), and
reused on later runs.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.evaluation.tasks import Task, load_task
from models.tagging.results import Progress

log = logging.getLogger(__name__)

SAMPLE_RATE = 32000
NOTE_S = 0.75
VELOCITY = 100
PROGRAMS_PER_CALL = 2  # one fluidsynth call renders 2 x 37 notes (a bounded time per call)
GAP_S = 0.1  # silence between notes in a render (each note starts with all-sound-off)
SILENT_RMS = 1e-4  # a program/pitch the soundfont renders as (near) silence is left out
LICENCE = "MIT"  # FluidR3_GM soundfont (Frank Wen), Debian fluid-soundfont-gm


@dataclass(frozen=True)
class PitchSpec:
    """Which notes make up the task: ``train_programs`` × pitches and ``test_programs`` × pitches."""

    name: str
    train_programs: tuple[int, ...]
    test_programs: tuple[int, ...]
    pitches: tuple[int, ...]


FULL = PitchSpec(
    "pitch-v1",
    train_programs=tuple(8 * f for f in range(12)),
    test_programs=tuple(8 * f + 1 for f in range(12)),
    pitches=tuple(range(48, 85)),
)
QUICK = PitchSpec(
    "pitch-quick-v1",
    train_programs=tuple(8 * f for f in (0, 2, 3, 5)),
    test_programs=tuple(8 * f + 1 for f in (0, 2, 3, 5)),
    pitches=tuple(range(60, 72)),
)


def pitch_unavailable() -> str | None:
    """None when fluidsynth and the GM soundfont are installed, else a one-line reason."""
    from models.training.fluid import fluid_missing

    return fluid_missing()


def build_pitch_set(
    out_root: Path, spec: PitchSpec = FULL, progress: Callable[[Progress], None] | None = None
) -> Path:
    """Render ``spec`` into ``out_root/<spec.name>/`` (FLAC + labels.csv) unless already there; return it."""
    import soundfile as sf

    from models.training.fluid import render_notes_batch

    target = Path(out_root) / spec.name
    if (target / "labels.csv").is_file():
        return target
    reason = pitch_unavailable()
    if reason:
        raise RuntimeError(f"pitch task: {reason}")
    Path(out_root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_root, prefix=f".{spec.name}-"))
    try:
        rows = []
        programs = [(p, "train") for p in spec.train_programs] + [(p, "test") for p in spec.test_programs]
        batches = [programs[i : i + PROGRAMS_PER_CALL] for i in range(0, len(programs), PROGRAMS_PER_CALL)]
        for b, batch in enumerate(batches):
            notes = [(prog, split, pitch) for prog, split in batch for pitch in spec.pitches]
            clips = render_notes_batch(
                [(prog, [p], VELOCITY, NOTE_S, False) for prog, _, p in notes], SAMPLE_RATE, gap_s=GAP_S
            )
            for (program, split, pitch), audio in zip(notes, clips, strict=True):
                if float(np.sqrt(np.mean(np.square(audio)))) < SILENT_RMS:
                    log.info("pitch task: program %d pitch %d renders silent; left out", program, pitch)
                    continue
                name = f"note_p{program:03d}_m{pitch:03d}.flac"
                sf.write(tmp / name, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
                rows.append(
                    {
                        "file": name,
                        "label": str(pitch),
                        "split": split,
                        "source_file": f"FluidR3_GM.sf2 program {program} note {pitch} velocity {VELOCITY}",
                        "license": LICENCE,
                        "program": str(program),
                    }
                )
            if progress is not None:
                progress(Progress(b + 1, len(batches), "pitch task: rendering notes"))
        rows.sort(key=lambda r: r["file"])
        with open(tmp / "labels.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def pitch_task(
    work_dir: Path, quick: bool = False, progress: Callable[[Progress], None] | None = None
) -> Task:
    """The pitch task (rendered on first use under ``work_dir``), domain ``music``."""
    root = build_pitch_set(work_dir, QUICK if quick else FULL, progress)
    return load_task(root, name="pitch", domain="music", min_per_class=2)
