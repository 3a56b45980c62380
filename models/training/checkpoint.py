"""Training checkpoints without pickle: safetensors for every tensor, JSON for everything else.

A checkpoint is one ``.safetensors`` file whose metadata holds a JSON document (``"meta"``).
Nested state (model, optimizer, scheduler, RNG) is flattened: every tensor found in the nested
structure is stored under a path-like key and replaced in the JSON by ``{"__tensor__": key}``.
Writes are atomic (temp file + ``os.replace``), so a run killed mid-save keeps its previous checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

_TENSOR = "__tensor__"
_TUPLE = "__tuple__"


def _flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = prefix or "t"
        tensors[key] = obj.detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(obj, np.ndarray):
        return _flatten(torch.from_numpy(np.ascontiguousarray(obj)), prefix, tensors)
    if isinstance(obj, dict):
        return {
            "__dict__": [
                [_flatten(k, f"{prefix}.k{i}", tensors), _flatten(v, f"{prefix}.{i}", tensors)]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if isinstance(obj, tuple):
        return {_TUPLE: [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if _TUPLE in obj:
            return tuple(_unflatten(v, tensors) for v in obj[_TUPLE])
        return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (nested dicts/lists/tuples of tensors, arrays and JSON scalars)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    meta = _flatten(state, "s", tensors)
    if not tensors:
        tensors["_empty"] = torch.zeros(1)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"meta": json.dumps(meta)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle involved)."""
    from safetensors import safe_open

    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta_s = (f.metadata() or {}).get("meta")
    if meta_s is None:
        raise ValueError(f"{path}: not an Encotag training checkpoint (no meta)")
    tensors = load_file(str(path))
    return _unflatten(json.loads(meta_s), tensors)


def rng_state(gen: np.random.Generator) -> dict[str, Any]:
    """JSON-ready state of a numpy Generator plus torch's global CPU RNG."""
    return {"numpy": json.dumps(gen.bit_generator.state), "torch": torch.get_rng_state()}


def restore_rng(gen: np.random.Generator, state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    gen.bit_generator.state = json.loads(state["numpy"])
    torch.set_rng_state(state["torch"])


def report_step(
    logger: logging.Logger, what: str, rec: dict[str, float], on_log: Callable[[dict], Any] | None
) -> None:
    """Log one training record (``what key=value …``) and hand it to the optional ``on_log`` callback."""
    logger.info("%s %s", what, " ".join(f"{k}={v:.4g}" for k, v in rec.items()))
    if on_log is not None:
        on_log(rec)
