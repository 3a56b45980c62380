"""Synthetic corpus material: DSP signals (numpy) and speech from espeak-ng, festival and flite.

Every generator takes a ``numpy.random.Generator`` and returns mono float32 audio at the requested
sample rate (the corpus uses 24 kHz) plus a JSON-able dict of the generation parameters, so a clip can
be regenerated from its manifest row. Speech synthesisers are external programs (Debian packages
``espeak-ng``, ``festival`` + ``festvox-*``, ``flite``); :func:`tool_missing` says why one cannot run.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

Params = dict[str, Any]

# ---------------------------------------------------------------------------------------------------------
# DSP signals
# ---------------------------------------------------------------------------------------------------------

DSP_KINDS = ("tone", "sweep", "noise", "dtmf", "hum", "clicks", "chirps")
_DTMF_LOW = {"1": 697, "2": 697, "3": 697, "A": 697, "4": 770, "5": 770, "6": 770, "B": 770}
_DTMF_LOW |= {"7": 852, "8": 852, "9": 852, "C": 852, "*": 941, "0": 941, "#": 941, "D": 941}
_DTMF_HIGH = {"1": 1209, "4": 1209, "7": 1209, "*": 1209, "2": 1336, "5": 1336, "8": 1336, "0": 1336}
_DTMF_HIGH |= {"3": 1477, "6": 1477, "9": 1477, "#": 1477, "A": 1633, "B": 1633, "C": 1633, "D": 1633}


def colored_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown); (n,) float32, peak 1."""
    white = rng.standard_normal(n)
    if exponent == 0:
        out = white
    else:
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        f[0] = f[1] if n > 1 else 1.0
        out = np.fft.irfft(spec / f ** (exponent / 2.0), n)
    out = out - out.mean()
    return (out / (np.abs(out).max() + 1e-9)).astype(np.float32)


def _wave(phase: np.ndarray, shape: str) -> np.ndarray:
    if shape == "sine":
        return np.sin(phase)
    frac = (phase / (2 * np.pi)) % 1.0
    if shape == "square":
        return np.where(frac < 0.5, 1.0, -1.0)
    if shape == "saw":
        return 2.0 * frac - 1.0
    return 2.0 * np.abs(2.0 * frac - 1.0) - 1.0  # triangle


def _envelope(n: int, sr: int, attack_s: float = 0.005, release_s: float = 0.01) -> np.ndarray:
    env = np.ones(n)
    a, r = min(n // 2, int(attack_s * sr)), min(n // 2, int(release_s * sr))
    if a:
        env[:a] = np.linspace(0, 1, a)
    if r:
        env[n - r :] = np.linspace(1, 0, r)
    return env


def dsp_signal(kind: str, duration_s: float, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """One DSP test signal of ``duration_s`` seconds: (n,) float32 @ sr, peak below 1, and its parameters.

    kinds: tone (sine/square/saw/triangle, steady or stepped), sweep (linear/log chirp), noise
    (white/pink/brown, optionally band-limited), dtmf (digit sequence), hum (50/60 Hz mains + harmonics over
    faint noise), clicks (impulse trains and random clicks), chirps (short tone bursts like beeps/alarms).
    """
    n = int(round(duration_s * sr))
    t = np.arange(n) / sr
    p: Params = {"kind": kind}
    if kind == "tone":
        shape = str(rng.choice(["sine", "square", "saw", "triangle"]))
        steps = int(rng.integers(1, 9))
        freqs = np.exp(rng.uniform(np.log(40), np.log(6000), steps))
        idx = np.minimum((np.arange(n) * steps) // max(n, 1), steps - 1)
        phase = 2 * np.pi * np.cumsum(freqs[idx]) / sr
        x = _wave(phase, shape)
        p |= {"shape": shape, "freqs_hz": [round(float(f), 1) for f in freqs]}
    elif kind == "sweep":
        f0, f1 = np.exp(rng.uniform(np.log(20), np.log(11000), 2))
        law = str(rng.choice(["linear", "log"]))
        reps = int(rng.integers(1, 6))
        tt = (t * reps / duration_s) % 1.0
        inst = f0 + (f1 - f0) * tt if law == "linear" else f0 * (f1 / f0) ** tt
        x = np.sin(2 * np.pi * np.cumsum(inst) / sr)
        p |= {"f0_hz": round(float(f0), 1), "f1_hz": round(float(f1), 1), "law": law, "repeats": reps}
    elif kind == "noise":
        colour = str(rng.choice(["white", "pink", "brown"]))
        x = colored_noise(n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[colour], rng).astype(np.float64)
        band = bool(rng.random() < 0.4)
        if band:
            lo = float(np.exp(rng.uniform(np.log(50), np.log(4000))))
            hi = min(lo * float(rng.uniform(1.5, 8.0)), sr / 2 - 100)
            spec = np.fft.rfft(x)
            f = np.fft.rfftfreq(n, 1 / sr)
            spec[(f < lo) | (f > hi)] = 0
            x = np.fft.irfft(spec, n)
            p |= {"band_hz": [round(lo, 1), round(hi, 1)]}
        p["colour"] = colour
    elif kind == "dtmf":
        keys = list(_DTMF_LOW)
        x = np.zeros(n)
        pos, digits = 0, []
        while pos < n:
            k = str(rng.choice(keys))
            on, off = int(rng.uniform(0.05, 0.25) * sr), int(rng.uniform(0.05, 0.3) * sr)
            seg = np.arange(min(on, n - pos)) / sr
            x[pos : pos + len(seg)] = (
                0.5
                * (np.sin(2 * np.pi * _DTMF_LOW[k] * seg) + np.sin(2 * np.pi * _DTMF_HIGH[k] * seg))
                * _envelope(len(seg), sr)
            )
            digits.append(k)
            pos += on + off
        p["digits"] = "".join(digits)
    elif kind == "hum":
        mains = int(rng.choice([50, 60]))
        amps = rng.uniform(0.05, 1.0, 8) / np.arange(1, 9) ** rng.uniform(0.3, 1.5)
        x = sum(
            a * np.sin(2 * np.pi * mains * (h + 1) * t + rng.uniform(0, 6.28)) for h, a in enumerate(amps)
        )
        x = np.asarray(x) + 0.02 * colored_noise(n, 1.0, rng)
        if rng.random() < 0.5:  # buzz: clipped hum
            x = np.clip(x * rng.uniform(1.5, 4.0), -1, 1)
            p["buzz"] = True
        p |= {"mains_hz": mains, "harmonics": 8}
    elif kind == "clicks":
        x = np.zeros(n)
        regular = bool(rng.random() < 0.5)
        if regular:
            rate = float(rng.uniform(1, 40))
            at = (np.arange(0, duration_s, 1 / rate) * sr).astype(int)
        else:
            rate = float(rng.uniform(2, 30))
            at = np.sort(rng.integers(0, n, int(rate * duration_s)))
        width = int(rng.integers(1, 48))
        for q in at:
            x[q : q + width] += (
                rng.uniform(0.3, 1.0) * rng.choice([-1, 1]) * np.hanning(width + 2)[1:-1][: n - q]
            )
        x += 10 ** rng.uniform(-4, -2) * rng.standard_normal(n)
        p |= {"regular": regular, "rate_hz": round(rate, 2), "width": width}
    elif kind == "chirps":
        x = np.zeros(n)
        fc = float(np.exp(rng.uniform(np.log(300), np.log(4000))))
        on_s, period = float(rng.uniform(0.03, 0.5)), float(rng.uniform(0.1, 1.5))
        period = max(period, on_s + 0.02)
        alt = float(rng.uniform(1.0, 1.5)) if rng.random() < 0.5 else 1.0
        for i, start in enumerate(np.arange(0, duration_s, period)):
            a0 = int(start * sr)
            seg = np.arange(min(int(on_s * sr), n - a0)) / sr
            ff = fc * (alt if i % 2 else 1.0)
            x[a0 : a0 + len(seg)] = np.sin(2 * np.pi * ff * seg) * _envelope(len(seg), sr)
        p |= {"freq_hz": round(fc, 1), "on_s": round(on_s, 3), "period_s": round(period, 3), "alternate": alt}
    else:
        raise ValueError(f"unknown DSP kind {kind!r}; expected one of {DSP_KINDS}")
    x = np.asarray(x, dtype=np.float64)
    gain_db = float(rng.uniform(-30, -3))
    x = x / (np.abs(x).max() + 1e-9) * 10 ** (gain_db / 20)
    p["peak_db"] = round(gain_db, 1)
    return x.astype(np.float32), p


# ---------------------------------------------------------------------------------------------------------
# Text for speech synthesis (generated here: no third-party text)
# ---------------------------------------------------------------------------------------------------------

_NOUNS = (
    "house river window garden teacher child morning city train letter mountain kitchen table doctor music"
    " water forest market bridge friend street winter summer evening story paper engine island village"
    " animal bird horse ship harbour school office machine picture number question answer country road"
    " family brother sister mother father farmer driver painter singer radio clock lamp door chair stone"
    " flower apple bread coffee rain snow wind cloud storm field valley lake ocean beach hill tower castle"
).split()
_ADJS = (
    "small large old young quiet loud bright dark warm cold green blue red yellow happy tired busy empty"
    " heavy light early late strong gentle careful sudden distant famous simple strange narrow wide"
).split()
_VERBS = (
    "opens closes carries finds watches follows builds paints visits remembers answers brings sends"
    " reads writes hears sees keeps leaves moves pulls pushes holds cleans fixes counts sells buys"
).split()
_PREPS = "near behind under over beside inside across through around before after".split()
_ADVS = "slowly quickly quietly suddenly often never always again together carefully".split()
_TEMPLATES = (
    "The {adj} {noun} {verb} the {noun2} {prep} the {noun3}.",
    "Yesterday my {noun} {verb} a {adj} {noun2}.",
    "Why does the {noun} {adv} watch the {adj} {noun2}?",
    "There are {num} {noun}s {prep} the {adj} {noun2}.",
    "On {day}, the {noun} left at {hour} o'clock and came back {adv}.",
    "Please bring {num} {adj} {noun}s to the {noun2}.",
    "Number {big}, {adj} {noun}, {num} {noun2}s.",
    "The {noun} {verb} the {noun2} {adv}, and the {noun3} {verb2} it {prep} the {noun4}.",
    "In {year} a {adj} {noun} {verb} every {noun2} in the {noun3}.",
)
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def make_text(rng: np.random.Generator, n_sentences: int) -> str:
    """``n_sentences`` random sentences from a built-in grammar, with numbers and years (which espeak-ng reads
    in the voice's own language, so non-English voices say real words too)."""
    out = []
    for _ in range(n_sentences):
        tpl = str(rng.choice(_TEMPLATES))
        out.append(
            tpl.format(
                adj=rng.choice(_ADJS),
                noun=rng.choice(_NOUNS),
                noun2=rng.choice(_NOUNS),
                noun3=rng.choice(_NOUNS),
                noun4=rng.choice(_NOUNS),
                verb=rng.choice(_VERBS),
                verb2=rng.choice(_VERBS),
                prep=rng.choice(_PREPS),
                adv=rng.choice(_ADVS),
                num=int(rng.integers(2, 20)),
                big=int(rng.integers(20, 100000)),
                day=rng.choice(_DAYS),
                hour=int(rng.integers(1, 13)),
                year=int(rng.integers(1500, 2030)),
            )
        )
    return " ".join(out)


# ---------------------------------------------------------------------------------------------------------
# External speech synthesisers
# ---------------------------------------------------------------------------------------------------------


def tool_missing(*tools: str) -> str | None:
    """None if every program is on PATH, else a one-line reason naming the first missing program."""
    for tool in tools:
        if shutil.which(tool) is None:
            return f"{tool} not installed (see docs/CORPUS.md for the apt packages)"
    return None


def _run_wav(cmd: list[str], sr: int, timeout: float = 120.0, stdin: bytes | None = None) -> np.ndarray:
    """Run ``cmd`` that writes a WAV to stdout; return it mono float32 resampled to ``sr``."""
    res = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    if res.returncode != 0 or len(res.stdout) < 100:
        err = res.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{cmd[0]} failed (exit {res.returncode}): {err[0]}")
    x, sr_in = sf.read(io.BytesIO(res.stdout), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return soxr.resample(x, sr_in, sr).astype(np.float32) if sr_in != sr else x


@functools.lru_cache(maxsize=1)
def espeak_voices() -> tuple[str, ...]:
    """Language codes of the installed espeak-ng voices (sorted; empty if espeak-ng is missing)."""
    if tool_missing("espeak-ng"):
        return ()
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=False).stdout
    langs = {line.split()[1] for line in out.splitlines()[1:] if len(line.split()) > 1}
    return tuple(sorted(langs))


@functools.lru_cache(maxsize=1)
def espeak_variants() -> tuple[str, ...]:
    """Names of espeak-ng's voice variants (``!v/<name>``; e.g. m3, f2, klatt, whisper), sorted."""
    if tool_missing("espeak-ng"):
        return ()
    out = subprocess.run(
        ["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=False
    ).stdout
    names = {
        f.split("/", 1)[1] for line in out.splitlines()[1:] for f in line.split()[4:5] if f.startswith("!v/")
    }
    return tuple(sorted(names))


def espeak_speech(rng: np.random.Generator, sr: int, n_sentences: int = 4) -> tuple[np.ndarray, Params]:
    """Random sentences spoken by espeak-ng with a random language, voice variant, rate (-s words/min),
    pitch (-p 0-99), amplitude (-a) and word gap (-g); (n,) float32 @ sr."""
    voices = espeak_voices()
    if not voices:
        raise RuntimeError("espeak-ng not installed")
    lang = str(rng.choice(voices))
    variants = espeak_variants()
    variant = str(rng.choice(variants)) if variants and rng.random() < 0.8 else ""
    voice = f"{lang}+{variant}" if variant else lang
    rate, pitch = int(rng.integers(110, 260)), int(rng.integers(10, 90))
    amp, gap = int(rng.integers(60, 160)), int(rng.integers(0, 15))
    text = make_text(rng, n_sentences)
    cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-a", str(amp), "-g", str(gap)]
    x = _run_wav([*cmd, "--stdout", text], sr)
    return x, {
        "tool": "espeak-ng",
        "voice": voice,
        "rate": rate,
        "pitch": pitch,
        "amp": amp,
        "gap": gap,
        "text": text,
    }


@functools.lru_cache(maxsize=1)
def festival_voices() -> tuple[str, ...]:
    """Installed festival voices (``voice_<name>`` dirs under /usr/share/festival/voices)."""
    if tool_missing("text2wave"):
        return ()
    root = Path("/usr/share/festival/voices")
    names = sorted(p.name for p in root.glob("*/*") if p.is_dir())
    return tuple(names)


def festival_speech(rng: np.random.Generator, sr: int, n_sentences: int = 4) -> tuple[np.ndarray, Params]:
    """Random sentences from festival's ``text2wave`` with a random installed voice and speaking rate
    (``Duration_Stretch``); (n,) float32 @ sr."""
    voices = festival_voices()
    if not voices:
        raise RuntimeError("festival voices not installed")
    voice = str(rng.choice(voices))
    stretch = round(float(rng.uniform(0.75, 1.4)), 2)
    text = make_text(rng, n_sentences)
    with tempfile.TemporaryDirectory(prefix="encotag_fest_") as tmp:
        txt = Path(tmp) / "in.txt"
        txt.write_text(text, encoding="utf-8")
        wav = Path(tmp) / "out.wav"
        cmd = [
            "text2wave",
            "-eval",
            f"(voice_{voice})",
            "-eval",
            f"(Parameter.set 'Duration_Stretch {stretch})",
            "-o",
            str(wav),
            str(txt),
        ]
        res = subprocess.run(cmd, capture_output=True, timeout=900, check=False)
        if res.returncode != 0 or not wav.exists():
            raise RuntimeError(
                f"text2wave failed (exit {res.returncode}): {res.stderr.decode(errors='replace')[-200:]}"
            )
        x, sr_in = sf.read(wav, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    x = soxr.resample(x, sr_in, sr).astype(np.float32) if sr_in != sr else x
    return x, {"tool": "festival", "voice": voice, "duration_stretch": stretch, "text": text}


FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")


def flite_speech(rng: np.random.Generator, sr: int, n_sentences: int = 4) -> tuple[np.ndarray, Params]:
    """Random sentences from flite with a random built-in voice and duration stretch."""
    if tool_missing("flite"):
        raise RuntimeError("flite not installed")
    voice = str(rng.choice(FLITE_VOICES))
    stretch = round(float(rng.uniform(0.75, 1.4)), 2)
    f0 = int(rng.integers(70, 220))
    text = make_text(rng, n_sentences)
    with tempfile.TemporaryDirectory(prefix="encotag_flite_") as tmp:
        wav = Path(tmp) / "out.wav"
        cmd = [
            "flite",
            "-voice",
            voice,
            "--setf",
            f"duration_stretch={stretch}",
            "--setf",
            f"int_f0_target_mean={f0}",
            "-t",
            text,
            "-o",
            str(wav),
        ]
        res = subprocess.run(cmd, capture_output=True, timeout=900, check=False)
        if res.returncode != 0 or not wav.exists():
            raise RuntimeError(
                f"flite failed (exit {res.returncode}): {res.stderr.decode(errors='replace')[-200:]}"
            )
        x, sr_in = sf.read(wav, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    x = soxr.resample(x, sr_in, sr).astype(np.float32) if sr_in != sr else x
    return x, {"tool": "flite", "voice": voice, "duration_stretch": stretch, "f0_mean": f0, "text": text}
