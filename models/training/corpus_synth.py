"""Corpus sources that generate their audio: the speech synthesisers, General MIDI renders through
fluidsynth, DSP noise and events, and (``--mix``) mixtures of two other sources' units.

A synthesiser unit is a recipe (tool, index, program or sentence count) that
:mod:`models.training.corpus_render` turns into audio; the same seed and index always give the same
recipe. Generated audio carries the licence in :data:`SYNTH_LICENCE`. :func:`all_sources` lists every
source, the shared and Debian ones of :mod:`models.training.corpus_sources` and these.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from models.training import fluid, synth
from models.training.corpus_sources import DEBIAN, Source, Unit, debian_source, shared_sources, unit_rng

SYNTH_LICENCE = {  # licence of the generated audio (the tools' output is not covered by their code licences)
    "espeak-ng": "generated (espeak-ng GPL-3+ data; output unrestricted)",
    "festival": "generated (festival/festvox voices, BSD-like EST/CMU licences)",
    "flite": "generated (flite voices, BSD-like CMU licence)",
    "fluidsynth": "generated (FluidR3_GM soundfont, MIT)",
    "fluidsynth-solo": "generated (FluidR3_GM soundfont, MIT)",
    "dsp": "generated (CC0-1.0)",
}


def synth_unit(name: str, seed: int, index: int) -> Unit:
    """The ``index``-th recipe of synthesiser ``name`` (one of :data:`SYNTHS`)."""
    if name == "fluidsynth":
        prog = int(unit_rng(seed, "fluid-programs").permutation(129)[index % 129])
        return Unit(name, f"{index:06d}", 42.0, {"kind": "fluid", "index": index, "program": prog})
    if name == "fluidsynth-solo":  # one instrument alone; never a program of the pitch task
        order = unit_rng(seed, "fluid-solo-programs").permutation(len(fluid.SOLO_PROGRAMS))
        prog = fluid.SOLO_PROGRAMS[int(order[index % len(order)])]
        return Unit(name, f"{index:06d}", 40.0, {"kind": "fluid-solo", "index": index, "program": prog})
    if name == "dsp":
        return Unit(name, f"{index:06d}", 20.0, {"kind": "dsp", "index": index})
    kind = {"espeak-ng": "espeak"}.get(name, name)
    return Unit(name, f"{index:06d}", 30.0, {"kind": kind, "index": index, "sentences": 8})


def _counter(name: str) -> Callable[[int], Iterator[Unit]]:
    return lambda seed: (synth_unit(name, seed, i) for i in itertools.count())


SYNTHS = ("espeak-ng", "flite", "festival", "fluidsynth", "fluidsynth-solo", "dsp")


def synth_sources() -> list[Source]:
    def festival_missing() -> str | None:
        return synth.tool_missing("text2wave") or (
            None if synth.festival_voices() else "no festival voice installed"
        )

    return [
        Source(
            "espeak-ng", "speech", "espeak-ng", _counter("espeak-ng"), lambda: synth.tool_missing("espeak-ng")
        ),
        Source("flite", "speech", "flite", _counter("flite"), lambda: synth.tool_missing("flite")),
        Source("festival", "speech", "festival", _counter("festival"), festival_missing),
        Source(
            "fluidsynth",
            "music",
            "fluidsynth+fluid-soundfont-gm",
            _counter("fluidsynth"),
            fluid.fluid_missing,
        ),
        Source(
            "fluidsynth-solo",
            "music",
            "fluidsynth+fluid-soundfont-gm",
            _counter("fluidsynth-solo"),
            fluid.fluid_missing,
            opt_in=True,
        ),
        Source("dsp", "environment", "numpy", _counter("dsp")),
    ]


def mix_unit(
    name: str, i: int, fg: Unit, bg: Unit, rng: np.random.Generator, snr: tuple[float, float], **extra: Any
) -> Unit:
    """Mixture ``i`` of source ``name``: the recipes of ``fg`` and ``bg`` embedded, an SNR drawn from
    ``snr`` (dB) with ``rng``, and any ``extra`` recipe fields (e.g. a forced split)."""
    spec = {"kind": "mix", "index": i, "snr_db": round(float(rng.uniform(*snr)), 1), **extra}
    spec["fg"] = {"source": fg.source, "uid": fg.uid, **fg.spec}
    spec["bg"] = {"source": bg.source, "uid": bg.uid, **bg.spec}
    return Unit(name, f"{i:06d}", min(fg.est_s, 30.0), spec)


def mix_sources(pool: dict[str, list[Source]]) -> list[Source]:
    """Mixtures (``--mix``): speech over music, and events over noise/ambience. A mix unit embeds the
    recipes of its two parts (drawn by a seeded rng from ``pool`` sources), so it is rendered from scratch
    and is reproducible from its own manifest row."""

    def make(name: str, fg_names: list[str], bg_names: list[str], snr: tuple[float, float]) -> Source:
        def units(seed: int) -> Iterator[Unit]:
            fg_src = [s for s in pool["all"] if s.name in fg_names and not s.missing()]
            bg_src = [s for s in pool["all"] if s.name in bg_names and not s.missing()]
            if not fg_src or not bg_src:
                return
            lists: dict[str, list[Unit]] = {}

            def pick(src: Source, rng: np.random.Generator) -> Unit:
                if src.name in SYNTHS:  # a fresh recipe, far from the ones the plain source uses
                    return synth_unit(src.name, seed, int(rng.integers(10**6, 10**7)))
                if src.name not in lists:
                    lists[src.name] = list(src.units(seed))
                return lists[src.name][int(rng.integers(0, len(lists[src.name])))]

            for i in itertools.count():
                rng = unit_rng(seed, name, i)
                fg = pick(fg_src[int(rng.integers(0, len(fg_src)))], rng)
                bg = pick(bg_src[int(rng.integers(0, len(bg_src)))], rng)
                yield mix_unit(name, i, fg, bg, rng, snr)

        return Source(name, "speech" if name == "mix-speech-music" else "environment", "mixture", units)

    speech = ["espeak-ng", "flite", "hedgewars-voices", "fsdd", "speech-commands"]
    music = ["fluidsynth", "wesnoth-music", "warzone2100-music", "supertux-music", "hedgewars-music"]
    events = ["hedgewars-sfx", "supertux-sfx", "megaglest-sfx", "lincity-sfx", "mod-sounds", "etr-sfx"]
    noise = ["dsp", "megaglest-ambience"]
    return [
        make("mix-speech-music", speech, music, (0.0, 20.0)),
        make("mix-events-noise", events, noise, (0.0, 25.0)),
    ]


def all_sources(shared_root: Path, mix: bool = False) -> list[Source]:
    """Every known source (in a fixed order); with ``mix`` also the two mixture sources."""
    srcs = shared_sources(shared_root) + [debian_source(s) for s in DEBIAN] + synth_sources()
    if mix:
        srcs += mix_sources({"all": list(srcs)})
    return srcs
