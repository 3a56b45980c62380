"""Turn one corpus :class:`~models.training.corpus_sources.Unit` recipe into 10 s FLAC clips.

Runs in worker processes: :func:`render_unit` is a pure function of (unit, seed, options), writes its clips
atomically under ``out_dir/clips/<source>/`` and returns their manifest rows. Audio is mono float32 at
24 kHz; a last piece shorter than 3 s is dropped, longer ones are zero-padded to 10 s; near-silent clips
(below -65 dBFS RMS) are dropped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from models.training import augment as aug
from models.training import fluid, synth
from models.training.corpus_sources import (
    CLIP_S,
    MAX_CLIPS_PER_FILE,
    Unit,
    check_licence,
    unit_rng,
)
from models.training.corpus_stretch import split_for, strong_augment
from models.training.corpus_synth import SYNTH_LICENCE
from models.training.corpus_trains import render_train

SR = 24000
MIN_LAST_S = 3.0
SILENT_DB = -65.0
MANIFEST_COLUMNS = ("clip", "source", "origin", "domain", "licence", "duration", "split", "params")

Piece = tuple[np.ndarray, dict[str, Any], str]  # (audio @ 24 kHz, params, licence)


def unit_split(unit: Unit, origin: str) -> str:
    """The split of ``unit``: forced by its recipe (real mixtures: ``train``), inherited from the original
    recording (augmented copies: ``split_key``), or by a stable hash; recordings from a repository
    snapshot (origin ``owner/name@commit``) hold out 12 %, the rest 5 % as before."""
    if unit.spec.get("split") in ("train", "val"):
        return str(unit.spec["split"])
    key = unit.spec.get("split_key")
    if key:
        return split_for(str(key[0]), str(key[1]), bool(key[2]))
    return split_for(unit.source, unit.uid, "@" in origin)


def load_mono(path: str, sr: int = SR) -> np.ndarray:
    """Decode ``path`` (any soundfile format incl. Ogg Vorbis/MP3) to mono float32 @ sr."""
    x, sr_in = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr_in != sr:
        x = soxr.resample(x, sr_in, sr)
    return np.nan_to_num(x).astype(np.float32)


def _trim(x: np.ndarray, thresh: float = 1e-3) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x) > thresh)
    return x[idx[0] : idx[-1] + 1] if len(idx) else x[:0]


def render_spec(spec: dict[str, Any], source: str, uid: str, seed: int) -> Piece:
    """Audio for one recipe (recursively for mixtures) with its parameters and licence."""
    rng = unit_rng(seed, source, uid)
    kind = spec["kind"]
    if kind == "file":
        x = load_mono(spec["path"])
        n_clip = int(CLIP_S * SR)
        if len(x) > MAX_CLIPS_PER_FILE * n_clip:  # evenly spaced 10 s windows over the whole file
            starts = np.linspace(0, len(x) - n_clip, MAX_CLIPS_PER_FILE).astype(int)
            x = np.concatenate([x[s : s + n_clip] for s in starts])
            return x, {"file": spec["path"], "windows_s": [round(s / SR, 2) for s in starts]}, spec["licence"]
        return x, {"file": spec["path"]}, spec["licence"]
    if kind == "pack":
        parts: list[np.ndarray] = []
        for p in spec["paths"]:
            parts.append(_trim(load_mono(p)))
            parts.append(np.zeros(int(rng.uniform(0.1, 0.8) * SR), np.float32))
        return np.concatenate(parts), {"files": spec["paths"]}, spec["licence"]
    if kind == "train":  # real events re-timed into the rhythm of their activity (corpus_trains)
        x, p = render_train(spec, SR, rng, load_mono)
        return x, p, spec["licence"]
    if kind == "dsp":
        x, p = synth.dsp_signal(synth.DSP_KINDS[spec["index"] % len(synth.DSP_KINDS)], 20.0, SR, rng)
        return x, p, SYNTH_LICENCE["dsp"]
    if kind == "espeak":
        x, p = synth.espeak_speech(rng, SR, spec.get("sentences", 8))
        return x, p, SYNTH_LICENCE["espeak-ng"]
    if kind == "flite":
        x, p = synth.flite_speech(rng, SR, spec.get("sentences", 8))
        return x, p, SYNTH_LICENCE["flite"]
    if kind == "festival":
        x, p = synth.festival_speech(rng, SR, spec.get("sentences", 8))
        return x, p, SYNTH_LICENCE["festival"]
    if kind == "fluid":
        x, p = fluid.render_random_piece(int(spec["program"]), 40.0, SR, rng)
        return x, p, SYNTH_LICENCE["fluidsynth"]
    if kind == "fluid-solo":
        x, p = fluid.render_solo_piece(int(spec["program"]), 40.0, SR, rng)
        return x, p, SYNTH_LICENCE["fluidsynth-solo"]
    if kind == "variant":  # a strongly augmented copy of a real recording (corpus_stretch)
        base = dict(spec["base"])
        x, p, licence = render_spec(base, base.pop("source"), base.pop("uid"), seed)
        x, ap = strong_augment(x, SR, rng)
        return x, {**p, "copy": spec["copy"], "augment": ap}, licence
    if kind == "mix":
        fg_spec, bg_spec = dict(spec["fg"]), dict(spec["bg"])
        fg, fp, fl = render_spec(fg_spec, fg_spec.pop("source"), fg_spec.pop("uid"), seed)
        bg, bp, bl = render_spec(bg_spec, bg_spec.pop("source"), bg_spec.pop("uid"), seed)
        fg = fg[: int(30 * SR)]
        if len(bg) == 0 or len(fg) == 0:
            return fg, {"fg": fp, "bg": bp}, fl
        x = aug.mix_at_snr(fg, bg, float(spec["snr_db"]), rng)
        if spec.get("reverb") and rng.random() < 0.5:  # a room and a microphone for the whole scene
            x, _ = aug.random_reverb(x, SR, rng)
            x, _ = aug.random_eq(x, SR, rng)
        licence = fl if fl == bl else f"{fl} AND {bl}"
        return (
            x,
            {
                "snr_db": spec["snr_db"],
                "fg": {"source": spec["fg"]["source"], **fp},
                "bg": {"source": spec["bg"]["source"], **bp},
            },
            licence,
        )
    raise ValueError(f"{source}/{uid}: unknown recipe kind {kind!r}")


def cut_clips(x: np.ndarray, sr: int = SR, clip_s: float = CLIP_S) -> list[tuple[np.ndarray, float, float]]:
    """Cut into ``clip_s`` pieces: (clip (n,) float32, offset_s, content_s); a last piece < 3 s is dropped,
    a longer one zero-padded; near-silent clips are dropped."""
    n = int(clip_s * sr)
    out = []
    for a in range(0, len(x), n):
        seg = x[a : a + n]
        if len(seg) < MIN_LAST_S * sr:
            break
        content = len(seg) / sr
        if len(seg) < n:
            seg = np.pad(seg, (0, n - len(seg)))
        if aug.rms_db(seg) < SILENT_DB:
            continue
        out.append((seg.astype(np.float32), a / sr, content))
    return out


def write_flac(path: Path, x: np.ndarray, sr: int = SR) -> None:
    """Write 16-bit FLAC atomically (temp file in the same folder + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    sf.write(tmp, np.clip(x, -1.0, 1.0), sr, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


def render_unit(
    unit: Unit, out_dir: str, seed: int, domain: str, origin: str, do_augment: bool = False
) -> list[dict[str, Any]]:
    """Render ``unit``, write its clips under ``out_dir/clips/<source>/<uid>_<k>.flac``, return manifest
    rows (columns :data:`MANIFEST_COLUMNS`; ``params`` is a JSON string). Raises on a bad recipe/input."""
    x, params, licence = render_spec(dict(unit.spec), unit.source, unit.uid, seed)
    check_licence(licence, f"{unit.source}/{unit.uid}")
    x = aug.limit_peak(np.nan_to_num(x))
    if do_augment and len(x):
        x, ap = aug.augment(x, SR, unit_rng(seed, "augment", unit.source, unit.uid))
        if ap:
            params = {**params, "augment": ap}
    rows = []
    split = unit_split(unit, origin)
    for k, (clip, offset, content) in enumerate(cut_clips(x)):
        rel = f"clips/{unit.source}/{unit.uid}_{k:02d}.flac"
        write_flac(Path(out_dir) / rel, clip)
        row_params = {
            "unit": unit.uid,
            "offset_s": round(offset, 2),
            "content_s": round(content, 2),
            **params,
        }
        rows.append(
            {
                "clip": rel,
                "source": unit.source,
                "origin": origin,
                "domain": domain,
                "licence": licence,
                "duration": round(len(clip) / SR, 3),
                "split": split,
                "params": json.dumps(row_params, sort_keys=True, ensure_ascii=False),
            }
        )
    return rows
