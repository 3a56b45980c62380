"""Distillation bundles: the training material of a per-clip distillation in a few portable files.

A per-clip distillation reads one ``.npy`` per clip from the corpus caches (codes and teacher logits,
:mod:`models.training.corpus_features`), which needs the corpus folder, the codec and the teacher. A bundle
holds exactly what :func:`models.training.distill.train_tagger` consumes, so a run can go to a machine that
has none of them (a GPU lent for minutes, with a cap on what travels):

- ``bundle.json``: format, shapes, dtypes, the parts (clip ranges, byte sizes, SHA-256) and the run's
  provenance (``info``: corpus, sources, licences, hours; the tagger's ``tagger.json`` keeps it);
- ``table.safetensors``: the codebook vectors float32 ``(n_q, codebook_size, D)``;
- ``part-NNN.safetensors``: for a range of training clips, ``codes`` int16 ``(n, n_q, T)``,
  ``seg_logits`` float16 ``(n, S, C)`` (the teacher's logits of the clip's 2-s segments) and
  ``seg_weights`` float32 ``(n, S)`` (class-balanced sampling weights, normalised over the whole split).

The whole-clip logits of training clips are the element-wise maximum of their segments' (that is how the
cache stores them), so they are rebuilt on reading rather than carried. Nothing is pickled; every part is
checked against ``bundle.json`` (size and hash before it is read, then names, dtypes and shapes) and a
bundle that does not match is refused whole. Parts are written atomically, the manifest last.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.safeio import InputFileError, atomic_write_bytes, read_regular
from models.training.distill import DistillData

FORMAT = "encotag-distill-bundle"
VERSION = 1
MANIFEST = "bundle.json"
TABLE = "table.safetensors"
MAX_PARTS = 4096
MAX_BYTES = 1 << 34  # 16 GiB: the most a bundle may claim before anything is allocated
_FIELDS = {"codes": "int16", "seg_logits": "float16", "seg_weights": "float32"}


class BundleError(ValueError):
    """A bundle that is missing, damaged or inconsistent (one line, naming the file)."""


@dataclass(frozen=True)
class Bundle:
    """What a bundle read back gives: the data, the codebook table and the provenance."""

    data: DistillData
    table: np.ndarray
    info: dict[str, Any]


def _save(arrays: dict[str, np.ndarray], path: Path) -> dict[str, Any]:
    """Write ``arrays`` as one safetensors file (atomically); its manifest entry (name, bytes, SHA-256)."""
    from safetensors.numpy import save

    data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, data)
    return {"file": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_bundle(
    out: Path, data: DistillData, table: np.ndarray, info: dict[str, Any], part_mb: float = 32.0
) -> Path:
    """Write ``data`` (``K = 1``, segment weights set) as a bundle in the folder ``out``; parts hold about
    ``part_mb`` MB each. Refuses an ``out`` that is not a folder or already holds a bundle manifest.
    Returns the manifest's path."""
    out = Path(out)
    if data.codes.ndim != 4 or data.codes.shape[1] != 1:
        raise ValueError("a bundle holds per-clip data (K = 1)")
    if data.seg_weights is None:
        raise ValueError("a bundle needs the segment sampling weights (--balance)")
    n, _, n_q, frames = data.codes.shape
    seg = data.seg_logits[:, 0]
    if not np.array_equal(data.logits[:, 0], seg.max(axis=1)):
        raise ValueError("the whole-clip logits are not the maximum of the segments' (not a training split)")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if (out / MANIFEST).exists():
        raise ValueError(f"{out}: already holds a bundle")
    out.mkdir(parents=True, exist_ok=True)
    per_clip = n_q * frames * 2 + seg.shape[1] * seg.shape[2] * 2 + seg.shape[1] * 4
    step = max(1, int(part_mb * 1e6 // per_clip))
    parts = []
    for k, a in enumerate(range(0, n, step)):
        b = min(n, a + step)
        entry = _save(
            {
                "codes": data.codes[a:b, 0].astype(np.int16),
                "seg_logits": seg[a:b].astype(np.float16),
                "seg_weights": data.seg_weights[a:b].astype(np.float32),
            },
            out / f"part-{k:03d}.safetensors",
        )
        parts.append({**entry, "start": a, "stop": b})
    table_entry = _save({"table": table.astype(np.float32)}, out / TABLE)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "clips": n,
        "n_q": n_q,
        "frames": frames,
        "segments": int(seg.shape[1]),
        "classes": int(seg.shape[2]),
        "table": {**table_entry, "shape": list(table.shape)},
        "parts": parts,
        "info": info,
    }
    atomic_write_bytes(out / MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))
    return out / MANIFEST


def _int(doc: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = doc.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise BundleError(f"{MANIFEST}: {key} must be an integer in [{lo}, {hi}]")
    return v


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        return read_regular(path, max_bytes)
    except InputFileError as exc:
        raise BundleError(str(exc)) from None


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.exists():
        raise BundleError(f"{root}: no {MANIFEST} (not a distillation bundle)")
    try:
        doc = json.loads(_read(path, 1 << 24).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError(f"{path}: not a distillation bundle")
    if doc.get("version") != VERSION:
        raise BundleError(f"{path}: bundle version {doc.get('version')!r}, this Encotag reads {VERSION}")
    return doc


def _load_checked(root: Path, entry: Any, what: str) -> tuple[Path, dict[str, np.ndarray]]:
    """The arrays of the file a manifest entry names, read once: its size and SHA-256 checked against
    the entry before the safetensors header is parsed."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise BundleError(f"{MANIFEST}: {what}: no file name")
    name, size = entry["file"], entry.get("bytes")
    if "/" in name or "\\" in name or name.startswith("."):
        raise BundleError(f"{MANIFEST}: {what}: bad file name {name!r}")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_BYTES:
        raise BundleError(f"{MANIFEST}: {what}: bytes must be a positive integer")
    path = root / name
    data = _read(path, size)
    if len(data) != size:
        raise BundleError(f"{path}: {len(data)} bytes, the manifest says {size}")
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise BundleError(f"{path}: damaged (SHA-256 differs from the manifest)")
    try:
        return path, load(data)
    except SafetensorError as exc:
        raise BundleError(f"{path}: not a safetensors file ({exc})") from None


def read_bundle(root: Path) -> Bundle:
    """Read and verify a bundle written by :func:`write_bundle`. Raises :class:`BundleError` (one line)
    when anything is missing, damaged or inconsistent; nothing is returned half-read."""
    root = Path(root)
    doc = _read_manifest(root)
    n = _int(doc, "clips", 1, 10_000_000)
    n_q = _int(doc, "n_q", 1, 64)
    frames = _int(doc, "frames", 1, 1_000_000)
    n_seg = _int(doc, "segments", 1, 1000)
    n_cls = _int(doc, "classes", 1, 100_000)
    parts = doc.get("parts")
    if not isinstance(parts, list) or not 1 <= len(parts) <= MAX_PARTS:
        raise BundleError(f"{MANIFEST}: parts must be a list of 1 to {MAX_PARTS}")
    need = n * (n_q * frames * 2 + n_seg * n_cls * 2 * 2 + n_seg * 4)  # codes, seg + whole logits, weights
    if need > MAX_BYTES:
        raise BundleError(f"{MANIFEST}: {need / 1e9:.1f} GB of data claimed, more than a bundle may hold")
    tpath, tarrays = _load_checked(root, doc.get("table"), "table")
    table = tarrays.get("table")
    if table is None or table.dtype != np.float32 or table.ndim != 3 or table.shape[0] < n_q:
        raise BundleError(f"{tpath}: no float32 codebook table (n_q, size, D)")
    codes = np.empty((n, 1, n_q, frames), np.int16)
    seg = np.empty((n, 1, n_seg, n_cls), np.float16)
    weights = np.empty((n, n_seg), np.float32)
    expect = 0
    for k, entry in enumerate(parts):
        path, arrays = _load_checked(root, entry, f"part {k}")
        a, b = entry.get("start"), entry.get("stop")
        if a != expect or not isinstance(b, int) or not a < b <= n:
            raise BundleError(f"{path}: clip range {a}..{b} does not follow {expect} (of {n})")
        shapes = {
            "codes": (b - a, n_q, frames),
            "seg_logits": (b - a, n_seg, n_cls),
            "seg_weights": (b - a, n_seg),
        }
        for key, dtype in _FIELDS.items():
            x = arrays.get(key)
            if x is None or x.dtype != np.dtype(dtype) or x.shape != shapes[key]:
                raise BundleError(f"{path}: {key} missing or not {dtype} {shapes[key]}")
        codes[a:b, 0] = arrays["codes"]
        seg[a:b, 0] = arrays["seg_logits"]
        weights[a:b] = arrays["seg_weights"]
        expect = b
    if expect != n:
        raise BundleError(f"{MANIFEST}: the parts hold {expect} clips, the manifest says {n}")
    if codes.min() < 0 or codes.max() >= table.shape[1]:
        raise BundleError(f"{root}: codes outside the codebook (0..{table.shape[1] - 1})")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise BundleError(f"{root}: sampling weights must be finite and non-negative")
    info: dict[str, Any] = doc["info"] if isinstance(doc.get("info"), dict) else {}
    data = DistillData(codes, seg.max(axis=2), seg, seg_weights=weights)
    return Bundle(data, table, info)
