"""Event trains: real short events re-timed into the rhythm of the activity that makes them.

Some sources hold single events of an activity the teacher only names from its rhythm: the key presses
and releases of a keyboard (``bucklespring-keys``) are "Tick" or "Wood block" to the teacher one at a
time, packed with pauses, and "Typing" / "Computer keyboard" (teacher probability 0.5-0.9) when they
follow each other at typing speed. ``<source>+train`` renders every packed unit of such a source again as
event trains:

- the unit's own files only (so a held-out recording never lends an event to a training clip), each
  event trimmed of silence; a *strike* is one event, or a press followed by its release when the style
  pairs files (``pair``: a regex and its replacement naming the partner file, used only when the partner
  is in the same unit);
- strikes at gamma-distributed inter-onset intervals (shape 4) around a mean drawn per render from
  ``ioi_s`` (half of it after a lone event of a paired style: a press or release whose partner is in
  another unit is half a strike), a pause of 0.3-1.2 s after 6 % of them, a gain of ±3 dB (normal)
  per strike, overlaps summed;
- then microphone-like EQ (p 0.5), room reverb (p 0.2) and a peak level of -20…-3 dBFS.

A render keeps the split of its unit (``split_key``, as the ``+aug`` copies do), and ``copies`` renders
of one unit are the same recording for the held-out rule (unit ids ``<uid>~t<k>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.training import augment as aug
from models.training.corpus_sources import Source, Unit

TRAIN_SUFFIX = "+train"
TRAIN_COPIES = 6  # renders of every packed unit
GAMMA_SHAPE = 4.0
PAUSE_P, PAUSE_S = 0.06, (0.3, 1.2)
GAIN_SD_DB = 3.0
REVERB_P = 0.2  # the teacher hears typing in a reverberant room (RT60 up to 1.2 s) as little else


@dataclass(frozen=True)
class TrainStyle:
    """How a source's events follow each other: mean inter-onset interval range (s), the partner rule
    (``pair``: regex on a path and its replacement, e.g. a key press ``-0.wav`` → its release ``-1.wav``),
    the delay of the partner after its event (s), and the length of a render (s)."""

    ioi_s: tuple[float, float]
    pair: tuple[str, str] | None = None
    hold_s: tuple[float, float] = (0.06, 0.14)
    length_s: float = 30.0


EVENT_TRAINS: dict[str, TrainStyle] = {
    # IBM Model M key presses (<scancode>-0.wav) and releases (-1.wav): 3.5-8 keys per second
    "bucklespring-keys": TrainStyle(ioi_s=(0.12, 0.28), pair=(r"-0\.wav$", "-1.wav")),
}


def _trim(x: np.ndarray, thresh: float = 1e-3) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x) > thresh)
    return x[idx[0] : idx[-1] + 1] if len(idx) else x[:0]


def strikes(paths: list[str], pair: tuple[str, str] | None) -> list[tuple[str, str | None]]:
    """``(event, partner or None)`` for ``paths``; a file that is some event's partner is not an event of
    its own. Without ``pair`` every file is an event without partner."""
    if pair is None:
        return [(p, None) for p in paths]
    present = set(paths)
    rx = re.compile(pair[0])
    out: list[tuple[str, str | None]] = []
    partners: set[str] = set()
    for p in paths:
        if rx.search(p):
            q = rx.sub(pair[1], p)
            out.append((p, q if q in present else None))
            if q in present:
                partners.add(q)
    out += [(p, None) for p in paths if not rx.search(p) and p not in partners]
    return out


def event_train(
    events: Sequence[tuple[np.ndarray, np.ndarray | None]],
    style: TrainStyle,
    sr: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``style.length_s`` seconds float32 at ``sr`` of ``events`` (``(event, partner or None)`` mono
    float32 arrays at ``sr``) re-timed as described in the module docstring; returns (audio, params)."""
    n = int(round(style.length_s * sr))
    out = np.zeros(n, np.float32)
    usable = [e for e in events if len(e[0])]
    if not usable:
        return out[:0], {}
    mean_ioi = float(rng.uniform(*style.ioi_s))
    t = float(rng.uniform(0.0, 0.3))
    count = 0
    while t < style.length_s:
        ev, partner = usable[int(rng.integers(len(usable)))]
        g = float(10 ** (rng.normal(0.0, GAIN_SD_DB) / 20))
        for part, at in ((ev, t), (partner, t + float(rng.uniform(*style.hold_s)))):
            if part is None:
                continue
            i = int(at * sr)
            m = min(len(part), n - i)
            if m > 0:
                out[i : i + m] += g * part[:m]
        count += 1
        step = mean_ioi if partner is not None or style.pair is None else mean_ioi / 2  # half a strike
        t += float(rng.gamma(GAMMA_SHAPE, step / GAMMA_SHAPE))
        if rng.random() < PAUSE_P:
            t += float(rng.uniform(*PAUSE_S))
    params: dict[str, Any] = {"ioi_s": round(mean_ioi, 3), "strikes": count}
    if rng.random() < 0.5:
        out, q = aug.random_eq(out, sr, rng)
        params |= q
    if rng.random() < REVERB_P:
        out, q = aug.random_reverb(out, sr, rng)
        params |= q
    peak = float(np.abs(out).max())
    level_db = float(rng.uniform(-20.0, -3.0))
    if peak > 0:
        out = out * np.float32(10 ** (level_db / 20) / peak)
    return out.astype(np.float32), params | {"peak_db": round(level_db, 1)}


def render_train(
    spec: dict[str, Any], sr: int, rng: np.random.Generator, load: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    """Audio of a ``train`` recipe (``paths``, ``style`` as a dict of :class:`TrainStyle` fields);
    ``load(path)`` decodes a file to mono float32 at ``sr``."""
    style = TrainStyle(
        ioi_s=tuple(spec["style"]["ioi_s"]),  # type: ignore[arg-type]
        pair=tuple(spec["style"]["pair"]) if spec["style"].get("pair") else None,  # type: ignore[arg-type]
        hold_s=tuple(spec["style"]["hold_s"]),  # type: ignore[arg-type]
        length_s=float(spec["style"]["length_s"]),
    )
    cache: dict[str, np.ndarray] = {}

    def get(p: str) -> np.ndarray:
        if p not in cache:
            cache[p] = _trim(load(p))
        return cache[p]

    events = [(get(p), get(q) if q else None) for p, q in strikes(list(spec["paths"]), style.pair)]
    x, params = event_train(events, style, sr, rng)
    return x, {"files": spec["paths"], "copy": spec["copy"], "train": params}


def train_source(base: Source, style: TrainStyle, copies: int) -> Source:
    """``copies`` event-train renders of every packed unit (``kind == "pack"``) of ``base``."""
    name = f"{base.name}{TRAIN_SUFFIX}"
    style_doc = {"ioi_s": list(style.ioi_s), "pair": list(style.pair) if style.pair else None,
                 "hold_s": list(style.hold_s), "length_s": style.length_s}  # fmt: skip

    def units(seed: int) -> Iterator[Unit]:
        for u in base.units(seed):
            if u.spec.get("kind") != "pack":
                continue
            for k in range(1, copies + 1):
                spec = {
                    "kind": "train",
                    "copy": k,
                    "paths": list(u.spec["paths"]),
                    "licence": u.spec["licence"],
                    "style": style_doc,
                    "split_key": [u.source, u.uid, "@" in base.origin],
                }
                yield Unit(name, f"{u.uid}~t{k}", style.length_s, spec)

    return Source(name, base.domain, base.origin, units, base.missing, note="event trains of real recordings")
