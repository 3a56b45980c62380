"""Stretch real recordings further (``encotag corpus build --snapshots ROOT --stretch K``).

Two kinds of derived sources, both built from the real-recording sources of
:mod:`models.training.corpus_snapshots` (and the shared sets' real recordings):

- ``<source>+aug``: every unit of the source again, ``K`` times, each copy through a stronger random chain
  than ``--augment``: a small speed-and-pitch change (resampling by 0.92-1.08), microphone-like EQ, room
  reverb and gain. A copy keeps the *split of its original recording* (``split_key``), so a held-out
  recording never has a training copy.
- ``mix-real-events`` (real events over real ambiences, 0-20 dB SNR) and ``mix-speech-ambience`` (speech
  over real ambiences, 0-20 dB): only units of training recordings are drawn, and the mixture is always
  ``train``, so nothing of the held-out recordings leaks into training.
- ``<source>+train`` (:mod:`models.training.corpus_trains`): the short events of a source whose class
  lives in its rhythm (key strokes) re-timed into that rhythm, keeping the split of their recording.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import soxr

from models.training import augment as aug
from models.training.corpus_sources import Source, Unit, stable_hash, unit_rng
from models.training.corpus_synth import mix_unit
from models.training.corpus_trains import EVENT_TRAINS, TRAIN_COPIES, train_source

VAL_PERCENT = 5  # every other source, as in the first edition
VAL_PERCENT_REAL = 12  # real recordings: a larger held-out share, so the broad held-out set covers classes
REAL_SHARED = ("donateacry", "mod-sounds", "librosa-environment", "sms-tools-environment")
AMBIENCE = ("yellowstone", "redeclipse-ambience", "blanket", "sonic-pi-ambience")
SPEECH_FG = ("espeak-ng", "flite", "fsdd", "speech-commands", "hedgewars-voices")


def is_real(src: Source) -> bool:
    return src.note == "real recordings" or src.name in REAL_SHARED


def split_for(source: str, uid: str, real: bool) -> str:
    """``val`` for a stable share of recordings (by a stable hash of source and uid: 12 % of snapshot
    recordings, 5 % of the rest), else ``train``; all clips of a unit share its split."""
    pct = VAL_PERCENT_REAL if real else VAL_PERCENT
    return "val" if stable_hash("split", source, uid) % 100 < pct else "train"


def strong_augment(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Speed/pitch change (resampling by a factor in 0.92-1.08, so both move together), then EQ (p 0.8),
    reverb (p 0.5) and gain (p 0.7); peak-limited mono float32 @ ``sr``."""
    params: dict[str, Any] = {}
    factor = float(rng.uniform(0.92, 1.08))
    if len(x) > 16:
        x = soxr.resample(x, sr, int(round(sr / factor))).astype(np.float32)
        params["speed"] = round(factor, 3)
    if rng.random() < 0.8:
        x, q = aug.random_eq(x, sr, rng)
        params |= q
    if rng.random() < 0.5:
        x, q = aug.random_reverb(x, sr, rng)
        params |= q
    if rng.random() < 0.7:
        x, q = aug.random_gain(x, rng)
        params |= q
    return aug.limit_peak(x), params


def variant_source(base: Source, copies: int) -> Source:
    """``copies`` strongly augmented copies of every unit of ``base`` (same domain and origin)."""
    name = f"{base.name}+aug"

    def units(seed: int) -> Iterator[Unit]:
        for u in base.units(seed):
            for k in range(1, copies + 1):
                spec = {
                    "kind": "variant",
                    "copy": k,
                    "split_key": [u.source, u.uid, "@" in base.origin],
                    "base": {"source": u.source, "uid": u.uid, **u.spec},
                }
                yield Unit(name, f"{u.uid}~a{k}", u.est_s, spec)

    return Source(name, base.domain, base.origin, units, base.missing, note="augmented real recordings")


def mix_source(
    name: str, domain: str, fgs: list[Source], bgs: list[Source], snr: tuple[float, float]
) -> Source:
    """Foregrounds of ``fgs`` over backgrounds of ``bgs``, drawn only from training recordings."""

    def units(seed: int) -> Iterator[Unit]:
        fg_ok = [s for s in fgs if not s.missing()]
        bg_ok = [s for s in bgs if not s.missing()]
        if not fg_ok or not bg_ok:
            return
        lists: dict[str, list[Unit]] = {}

        def train_units(src: Source) -> list[Unit]:
            if src.name not in lists:
                real = "@" in src.origin
                first = itertools.islice(src.units(seed), 5000)
                lists[src.name] = [u for u in first if split_for(u.source, u.uid, real) == "train"]
            return lists[src.name]

        for i in itertools.count():
            rng = unit_rng(seed, name, i)
            fg_list = train_units(fg_ok[int(rng.integers(0, len(fg_ok)))])
            bg_list = train_units(bg_ok[int(rng.integers(0, len(bg_ok)))])
            if not fg_list or not bg_list:
                continue
            fg = fg_list[int(rng.integers(0, len(fg_list)))]
            bg = bg_list[int(rng.integers(0, len(bg_list)))]
            yield mix_unit(name, i, fg, bg, rng, snr, reverb=True, split="train")
            if i > 10**6:
                return

    return Source(name, domain, "mixture", units, note="mixture of real recordings")


def stretch_sources(srcs: list[Source], copies: int) -> list[Source]:
    """The ``+aug`` copies of every real source in ``srcs``, the ``+train`` event trains of those with a
    :data:`~models.training.corpus_trains.EVENT_TRAINS` style, and the two real-ambience mixtures."""
    real = [s for s in srcs if is_real(s)]
    out = [variant_source(s, copies) for s in real] if copies > 0 else []
    out += [train_source(s, EVENT_TRAINS[s.name], TRAIN_COPIES) for s in real if s.name in EVENT_TRAINS]
    events = [s for s in real if s.domain == "environment" and s.name not in AMBIENCE]
    amb = [s for s in real if s.name in AMBIENCE]
    speech = [s for s in srcs if s.name in SPEECH_FG]
    out.append(mix_source("mix-real-events", "environment", events, amb, (0.0, 20.0)))
    out.append(mix_source("mix-speech-ambience", "speech", speech, amb, (0.0, 20.0)))
    return out
