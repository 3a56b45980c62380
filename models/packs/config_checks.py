"""Range and type checks of the configs a pack manifest declares, before anything is allocated.

A manifest is user-supplied: ``tagger.width: 50`` would build a 4.6 GB model before the weights' shapes
are compared, ``window_s: 300`` makes every window 2 GB of activations, a zero upsampling ratio divides
by zero. :func:`check_config` refuses each such value with a one-line ``ValueError`` naming the field.
Torch-free.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from models.config import CodecConfig, MelConfig, TaggerConfig, WindowConfig

MAX_WINDOW_S = 30.0

# field → (kind, low, high); kinds: int, num (finite int or float), bool, str, ints (tuple of int), nums
_RULES: dict[type, dict[str, tuple[str, float, float]]] = {
    TaggerConfig: {
        "width": ("num", 0.01, 4.0),
        "num_classes": ("int", 1, 10_000),
        "frontend": ("str", 0, 0),
        "input_dim": ("int", 1, 1024),
        "embedding_blocks": ("ints", 0, 16),
        "head_type": ("str", 0, 0),
    },
    MelConfig: {
        "sample_rate": ("int", 1000, 192_000),
        "n_fft": ("int", 16, 8192),
        "win_length": ("int", 1, 8192),
        "hop_length": ("int", 1, 8192),
        "n_mels": ("int", 1, 512),
        "fmin": ("num", 0.0, 96_000.0),
        "fmax": ("num?", 1.0, 96_000.0),
        "preemphasis": ("num", 0.0, 0.999),
    },
    CodecConfig: {
        "sampling_rate": ("int", 1000, 192_000),
        "num_filters": ("int", 1, 128),
        "upsampling_ratios": ("ints", 1, 32),
        "hidden_size": ("int", 1, 1024),
        "codebook_size": ("int", 2, 32_768),
        "target_bandwidths": ("nums", 0.1, 1000.0),
        "bandwidth": ("num", 0.1, 1000.0),
        "num_lstm_layers": ("int", 0, 8),
        "num_residual_layers": ("int", 1, 8),
        "norm_type": ("str", 0, 0),
        "use_causal_conv": ("bool", 0, 0),
    },
    WindowConfig: {
        "window_s": ("num", 0.01, MAX_WINDOW_S),
        "hop_s": ("num", 0.001, MAX_WINDOW_S),
    },
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_config(cfg: Any) -> None:
    """Raise ``ValueError`` ("<Class>.<field> …") for any field of the wrong type or out of range."""
    rules = _RULES[type(cfg)]
    name = type(cfg).__name__
    for f in dataclasses.fields(cfg):
        kind, lo, hi = rules[f.name]
        v = getattr(cfg, f.name)
        where = f"{name}.{f.name}"
        if kind == "str":
            ok = isinstance(v, str) and len(v) <= 64
        elif kind == "bool":
            ok = isinstance(v, bool)
        elif kind == "int":
            ok = _is_int(v) and lo <= v <= hi
        elif kind in ("num", "num?"):
            ok = (v is None and kind == "num?") or (_is_num(v) and lo <= v <= hi)
        else:  # a tuple of ints or numbers, 1 to 16 items
            test = _is_int if kind == "ints" else _is_num
            ok = isinstance(v, tuple) and 1 <= len(v) <= 16 and all(test(x) and lo <= x <= hi for x in v)
        if not ok:
            shown = repr(v)
            shown = shown if len(shown) <= 60 else shown[:59] + "…"
            raise ValueError(f"{where} must be {_describe(kind, lo, hi)}, not {shown}")
    if isinstance(cfg, WindowConfig) and cfg.hop_s > cfg.window_s:
        raise ValueError(f"WindowConfig.hop_s ({cfg.hop_s:g}) must not exceed window_s ({cfg.window_s:g})")
    if isinstance(cfg, MelConfig) and cfg.win_length > cfg.n_fft:
        raise ValueError("MelConfig.win_length must not exceed n_fft")
    if isinstance(cfg, CodecConfig) and math.prod(cfg.upsampling_ratios) > 4096:
        raise ValueError("CodecConfig.upsampling_ratios multiply to more than 4096")


def _describe(kind: str, lo: float, hi: float) -> str:
    if kind == "str":
        return "a string"
    if kind == "bool":
        return "true or false"
    what = {"int": "an integer", "num": "a number", "num?": "null or a number"}.get(kind)
    if what is None:
        what = f"a list of 1 to 16 {'integers' if kind == 'ints' else 'numbers'}, each"
    return f"{what} in [{lo:g}, {hi:g}]"
