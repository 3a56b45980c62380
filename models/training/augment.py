"""Corpus augmentation and mixing: gain, EQ (biquad shelves/peaks), a simple synthetic reverb, SNR mixing.

All functions take and return mono float32 arrays at the given sample rate and a JSON-able parameter dict,
and draw every random choice from the ``numpy.random.Generator`` passed in (so a clip is reproducible).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import fftconvolve, lfilter

Params = dict[str, Any]


def rms_db(x: np.ndarray) -> float:
    """RMS level of ``x`` in dBFS (-200 for silence)."""
    r = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return 20 * np.log10(r) if r > 1e-10 else -200.0


def limit_peak(x: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Scale ``x`` down so its absolute peak is at most ``peak`` (never up)."""
    m = float(np.abs(x).max()) if len(x) else 0.0
    return (x * (peak / m)).astype(np.float32) if m > peak else x.astype(np.float32)


def biquad(kind: str, f0: float, gain_db: float, q: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """RBJ-cookbook biquad coefficients (b, a) for ``lowshelf``, ``highshelf`` or ``peak``."""
    a_lin = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / sr
    cw, sw = np.cos(w0), np.sin(w0)
    alpha = sw / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a_lin, -2 * cw, 1 - alpha * a_lin]
        a = [1 + alpha / a_lin, -2 * cw, 1 - alpha / a_lin]
    else:
        sq = 2 * np.sqrt(a_lin) * alpha
        if kind == "lowshelf":
            b = [
                a_lin * ((a_lin + 1) - (a_lin - 1) * cw + sq),
                2 * a_lin * ((a_lin - 1) - (a_lin + 1) * cw),
                a_lin * ((a_lin + 1) - (a_lin - 1) * cw - sq),
            ]
            a = [
                (a_lin + 1) + (a_lin - 1) * cw + sq,
                -2 * ((a_lin - 1) + (a_lin + 1) * cw),
                (a_lin + 1) + (a_lin - 1) * cw - sq,
            ]
        elif kind == "highshelf":
            b = [
                a_lin * ((a_lin + 1) + (a_lin - 1) * cw + sq),
                -2 * a_lin * ((a_lin - 1) + (a_lin + 1) * cw),
                a_lin * ((a_lin + 1) + (a_lin - 1) * cw - sq),
            ]
            a = [
                (a_lin + 1) - (a_lin - 1) * cw + sq,
                2 * ((a_lin - 1) - (a_lin + 1) * cw),
                (a_lin + 1) - (a_lin - 1) * cw - sq,
            ]
        else:
            raise ValueError(f"unknown biquad kind {kind!r}")
    b_arr, a_arr = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
    return b_arr / a_arr[0], a_arr / a_arr[0]


def random_eq(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """1-3 random biquad bands (±12 dB) applied in series; (n,) float32 @ sr."""
    bands = []
    y = x.astype(np.float64)
    for _ in range(int(rng.integers(1, 4))):
        kind = str(rng.choice(["lowshelf", "highshelf", "peak"]))
        f0 = float(np.exp(rng.uniform(np.log(80), np.log(min(8000, sr / 2 - 500)))))
        g, q = float(rng.uniform(-12, 12)), float(rng.uniform(0.5, 4.0))
        b, a = biquad(kind, f0, g, q, sr)
        y = lfilter(b, a, y)
        bands.append({"type": kind, "f0": round(f0, 1), "gain_db": round(g, 1), "q": round(q, 2)})
    return y.astype(np.float32), {"eq": bands}


def random_reverb(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Convolution with a synthetic room response (exponentially decaying noise, RT60 0.2-2.0 s, a few
    early reflections, low-passed tail) at a random wet/dry ratio; output has the input's length."""
    rt60 = float(rng.uniform(0.2, 2.0))
    wet = float(rng.uniform(0.1, 0.6))
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir = lfilter([0.3], [1, -0.7], ir)  # darker tail
    for _ in range(int(rng.integers(2, 7))):
        ir[int(rng.uniform(0.002, 0.05) * sr)] += float(rng.uniform(0.2, 1.0))
    ir /= np.sqrt(np.sum(ir**2)) + 1e-9
    y = fftconvolve(x.astype(np.float64), ir)[: len(x)]
    out = (1 - wet) * x + wet * y * (np.sqrt(np.mean(x**2)) / (np.sqrt(np.mean(y**2)) + 1e-9))
    return out.astype(np.float32), {"reverb": {"rt60_s": round(rt60, 2), "wet": round(wet, 2)}}


def random_gain(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Gain of -18..+6 dB (then peak-limited to 0.99)."""
    g = float(rng.uniform(-18, 6))
    return limit_peak(x * 10 ** (g / 20)), {"gain_db": round(g, 1)}


def augment(x: np.ndarray, sr: int, rng: np.random.Generator, p: float = 0.5) -> tuple[np.ndarray, Params]:
    """Each of EQ, reverb and gain applied independently with probability ``p``; peak-limited output
    (n,) float32 @ sr and the parameters of what was applied (empty dict when nothing was)."""
    params: Params = {}
    use_eq, use_rev, use_gain = (bool(rng.random() < p) for _ in range(3))
    if use_eq:
        x, q = random_eq(x, sr, rng)
        params |= q
    if use_rev:
        x, q = random_reverb(x, sr, rng)
        params |= q
    if use_gain:
        x, q = random_gain(x, rng)
        params |= q
    return limit_peak(x), params


def mix_at_snr(fg: np.ndarray, bg: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``fg`` over ``bg`` (looped or cut at a random offset to fg's length) at ``snr_db`` dB RMS ratio;
    peak-limited mono float32 of fg's length."""
    n = len(fg)
    if len(bg) < n:
        bg = np.tile(bg, int(np.ceil(n / max(len(bg), 1))))
    off = int(rng.integers(0, len(bg) - n + 1))
    seg = bg[off : off + n].astype(np.float64)
    f_db, b_db = rms_db(fg), rms_db(seg)
    if b_db > -150 and f_db > -150:
        seg = seg * 10 ** ((f_db - snr_db - b_db) / 20)
    return limit_peak(fg + seg)
