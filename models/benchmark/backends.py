"""Encoder backend candidates, side by side (issue 27): the same audio through each, timed, and checked
against the torch encoder (max latent difference, share of codes equal).

Candidates (codec packs with the transformers-free codec): torch with the bench's threads and with one
thread, torch with the LSTM quantized to int8 (dynamic quantization; torch has no dynamic int8 for
convolutions, so the 1×1 convolutions stay float), ONNX Runtime (``onnxruntime`` installed) with the
bench's threads and with one thread, and batching: four 2.5 s pieces in one call against four calls.
Rows: ``{"backend", "rtf" (the bench's clip), "window_ms" (one 1 s window), "max_diff", "codes_equal"}``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from models.benchmark.timing import time_call

log = logging.getLogger(__name__)


def _torch_int8_lstm(codec: Any) -> Any:
    import torch
    from torch import nn

    backend, codec.encoder_backend = codec.encoder_backend, None  # an ORT session does not copy
    try:
        q = copy.deepcopy(codec)
    finally:
        codec.encoder_backend = backend
    for module in list(q.modules()):
        if isinstance(getattr(module, "lstm", None), nn.LSTM):  # swaps the wrapper's child in place
            torch.ao.quantization.quantize_dynamic(module, {nn.LSTM}, dtype=torch.qint8, inplace=True)
    return q


def backend_rows(engine: Any, audio: np.ndarray, *, repeat: int, budget_s: float) -> list[dict[str, Any]]:
    """The candidates on ``audio`` (mono float32 at the engine's rate, a multiple of the hop long)."""
    import torch

    from models.codec.tagging_codec import TaggingCodec

    codec = engine.codec
    if not isinstance(codec, TaggingCodec):
        return []
    threads = torch.get_num_threads()
    hop = codec.hop_length
    n = (len(audio) // hop) * hop
    x = torch.from_numpy(np.ascontiguousarray(audio[:n]))[None, None]
    win = x[..., : engine.sample_rate]
    with torch.inference_mode():
        ref = codec._encode_layers(x)
        ref_codes = codec.quantize_codes(ref)
    dur = n / engine.sample_rate
    rows: list[dict[str, Any]] = []

    def add(name: str, fn: Callable[[Any], Any], set_threads: int | None = None) -> None:
        old = torch.get_num_threads()
        if set_threads is not None:
            torch.set_num_threads(set_threads)
        try:
            with torch.inference_mode():
                got = fn(x)
                t = time_call(lambda: fn(x), repeat=repeat, budget_s=budget_s)
                tw = time_call(lambda: fn(win), repeat=repeat, budget_s=budget_s / 2)
                diff = float((got - ref).abs().max())
                same = float((codec.quantize_codes(got) == ref_codes).float().mean())
        except Exception as exc:  # noqa: BLE001 - a candidate that fails is reported, not fatal
            rows.append({"backend": name, "error": str(exc).splitlines()[0] if str(exc) else repr(exc)})
            return
        finally:
            torch.set_num_threads(old)
        rows.append(
            {
                "backend": name,
                "rtf": t.rtf(dur),
                "window_ms": 1000 * tw.best,
                "max_diff": diff,
                "codes_equal": same,
            }
        )

    add(f"torch, {threads} threads", codec._encode_layers)
    if threads != 1:
        add("torch, 1 thread", codec._encode_layers, 1)
    q = _torch_int8_lstm(codec)
    add("torch, int8 dynamic LSTM, 1 thread", q._encode_layers, 1)
    del q
    piece = (n // 4 // hop) * hop
    pieces = [x[..., i * piece : (i + 1) * piece] for i in range(4)]
    if piece >= hop * 8:
        batched = torch.cat(pieces, dim=0)
        with torch.inference_mode():
            tb = time_call(lambda: codec._encode_layers(batched), repeat=repeat, budget_s=budget_s)
            ts = time_call(
                lambda: [codec._encode_layers(p) for p in pieces], repeat=repeat, budget_s=budget_s
            )
        rows.append({"backend": f"torch, {threads} threads, 4 pieces in one batch", "rtf": tb.rtf(dur)})
        rows.append({"backend": f"torch, {threads} threads, 4 pieces one by one", "rtf": ts.rtf(dur)})
    try:
        from models.codec.ort_encoder import OrtEncoder, _cached_model, cache_dir
    except ImportError:
        return rows
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        rows.append({"backend": "onnxruntime", "error": "onnxruntime not installed"})
        return rows
    model = _cached_model(codec, engine.codec_id, cache_dir())
    for th in sorted({threads, 1}, reverse=True):
        add(f"onnxruntime, {th} thread{'s' if th > 1 else ''}", OrtEncoder(model, th, codec))
    return rows


def backend_table(report: dict[str, Any]) -> str:
    """Markdown table of every subject's encoder backend rows (empty when none was measured)."""
    lines = [
        "| pack | encoder backend | clip (RTF) | one 1 s window | max latent difference | codes equal |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in report.get("results", []):
        for row in r.get("backends", []):
            name = r["subject"]["name"]
            if "error" in row:
                lines.append(f"| {name} | {row['backend']} | {row['error']} | | | |")
                continue
            ms = f"{row['window_ms']:.1f} ms" if "window_ms" in row else "–"
            diff = f"{row['max_diff']:.1e}" if "max_diff" in row else "–"
            same = f"{100 * row['codes_equal']:.2f} %" if "codes_equal" in row else "–"
            lines.append(f"| {name} | {row['backend']} | {row['rtf']:.1f}× | {ms} | {diff} | {same} |")
    return "\n".join(lines) if len(lines) > 2 else ""
