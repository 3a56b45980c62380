"""Head files: one ``.safetensors`` file per head, read strictly, written atomically.

Tensors ``mean``, ``scale``, ``thresholds`` and the model's parameters (``w``, ``b`` for logreg; ``w1``,
``b1``, ``w2``, ``b2`` for the MLP), all float32; the header metadata holds ``format``
(``"encotag-head"``) and ``card`` (JSON, :class:`models.heads.HeadCard`). A head store may add its
example set to the same file (tensors ``examples.*`` and an ``examples`` metadata entry with its own
checksum, see :mod:`models.heads.head_store`), so a head and its examples are always written as one unit.

Card format 2 (written now): ``weights_sha256`` covers every head tensor *and* every other card field,
so an edited card (classes renamed, pack id blanked) is refused like an edited weight. Format 1 files
(older Encotag) still load; their checksum covers the weights only.

Reading never trusts the file: only a regular file of at most :data:`MAX_HEAD_BYTES` is read (a FIFO or
``/dev/zero`` is refused without blocking), the safetensors header size is checked against the file size,
the card's fields are type- and range-checked, every tensor's shape must match the card, weights must be
finite and scales positive, and a head for another pack or embedding size is refused when the pack is
known. Every failure is a one-line :class:`models.heads.HeadError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic import atomic_write_bytes
from models.heads.heads import FORMAT_VERSION, Head, HeadCard, HeadError, layout_hash
from models.safeio import InputFileError, printable, read_regular

MAX_HEAD_BYTES = 256 << 20  # a head is KiBs; its kept examples at most a few hundred thousand windows
MAX_HEADER_BYTES = 16 << 20
MAX_CLASSES = 1000
MAX_DIM = 1 << 16
EXAMPLES_PREFIX = "examples."
# card fields added after format 2, with their defaults (left out of the checksum while at them)
LATE_FIELDS: dict[str, Any] = {
    "cv_grouping": "",
    "calibration": "",
    "class_precision": (),
    "class_recall": (),
}
_KIND_KEYS = {"logreg": {"w", "b"}, "mlp": {"w1", "b1", "w2", "b2"}}


def _tensors(head: Head) -> dict[str, np.ndarray]:
    out = {"mean": head.mean, "scale": head.scale, "thresholds": head.thresholds}
    out.update(head.params)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def _digest(tensors: dict[str, np.ndarray], card: HeadCard | None = None) -> str:
    """sha256 of the tensors; with ``card`` (format 2) also of every card field but the checksum."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(str(tensors[key].shape).encode())
        h.update(tensors[key].tobytes())
    if card is not None:
        fields = {**asdict(card), "weights_sha256": ""}
        for key, default in LATE_FIELDS.items():  # cards written before these fields existed still verify
            if fields[key] == default:
                del fields[key]
        h.update(json.dumps(fields, sort_keys=True).encode())
    return h.hexdigest()


def head_payload(head: Head) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata of ``head``'s file (card format 2, checksum filled in)."""
    tensors = _tensors(head)
    card = replace(head.card, format_version=FORMAT_VERSION, weights_sha256="")
    card = replace(card, weights_sha256=_digest(tensors, card))
    return tensors, {"card": card.to_json(), "format": "encotag-head"}


def save_head(
    head: Head,
    path: str | os.PathLike[str],
    extra_tensors: dict[str, np.ndarray] | None = None,
    extra_meta: dict[str, str] | None = None,
) -> Path:
    """Write ``head`` (plus a store's ``examples.*`` tensors and metadata) to ``path`` atomically."""
    from safetensors.numpy import save

    tensors, meta = head_payload(head)
    blob = save({**tensors, **(extra_tensors or {})}, metadata={**meta, **(extra_meta or {})})
    return atomic_write_bytes(path, blob)


def safetensors_header(blob: bytes) -> dict[str, Any]:
    """The JSON header of a safetensors blob, its size checked against the blob before parsing."""
    if len(blob) < 8:
        raise ValueError("file too short")
    n = int.from_bytes(blob[:8], "little")
    if n > min(len(blob) - 8, MAX_HEADER_BYTES):
        raise ValueError(f"header of {n} bytes does not fit the file")
    header = json.loads(blob[8 : 8 + n])
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return header


def _check_card(card: HeadCard) -> None:
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    checks = (
        (isinstance(card.name, str) and len(card.name) <= 200, "name"),
        (1 <= len(card.classes) <= MAX_CLASSES and all(isinstance(c, str) and len(c) <= 200
                                                        for c in card.classes), "classes"),
        (card.kind in _KIND_KEYS, "kind"),
        (all(isinstance(n, int) and not isinstance(n, bool) for n in card.example_counts), "example_counts"),
        (number(card.cv_accuracy) and number(card.c), "cv_accuracy / c"),
        (isinstance(card.pack_id, str) and isinstance(card.layout_hash, str), "pack_id / layout_hash"),
        (isinstance(card.embedding_size, int) and 1 <= card.embedding_size <= MAX_DIM, "embedding_size"),
        (isinstance(card.created, str) and isinstance(card.weights_sha256, str), "created"),
        (card.false_alarm_rate is None or number(card.false_alarm_rate), "false_alarm_rate"),
        (all(isinstance(n, str) for n in card.notes), "notes"),
        (isinstance(card.cv_grouping, str) and isinstance(card.calibration, str), "cv_grouping"),
        (all(len(v) in (0, len(card.classes)) and all(number(p) for p in v)
             for v in (card.class_precision, card.class_recall)), "class_precision / class_recall"),
    )  # fmt: skip
    for ok, what in checks:
        if not ok:
            raise ValueError(f"bad card field {what}")


def read_head_file(
    path: Path,
) -> tuple[HeadCard, dict[str, np.ndarray], dict[str, Any], dict[str, np.ndarray]]:
    """``(card, head tensors, metadata, examples tensors)`` of a head file, checksum verified."""
    from safetensors.numpy import load

    try:
        blob = read_regular(path, MAX_HEAD_BYTES)
    except InputFileError as exc:
        raise HeadError(f"{printable(path)}: cannot read head file ({exc.reason})") from None
    try:
        meta = safetensors_header(blob).get("__metadata__") or {}
        if not isinstance(meta, dict) or meta.get("format") != "encotag-head":
            raise ValueError("not an Encotag head file")
        if "card" not in meta:
            raise ValueError("no card in the file")
        card = HeadCard.from_json(meta["card"])
        _check_card(card)
        tensors = load(blob)
    except Exception as exc:  # noqa: BLE001 - json, safetensors and the card raise several types on corrupt input
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HeadError(f"{printable(path)}: not a valid head file ({printable(reason, 200)})") from None
    head_t = {k: v for k, v in tensors.items() if not k.startswith(EXAMPLES_PREFIX)}
    ex_t = {k[len(EXAMPLES_PREFIX) :]: v for k, v in tensors.items() if k.startswith(EXAMPLES_PREFIX)}
    if any(t.dtype != np.float32 for t in head_t.values()):
        raise HeadError(f"{printable(path)}: head tensors must be float32")
    expected = _digest(head_t, card if card.format_version >= 2 else None)
    if expected != card.weights_sha256:
        raise HeadError(
            f"{printable(path)}: weights or card do not match their checksum (file tampered or damaged)"
        )
    return card, head_t, meta, ex_t


def read_card(path: str | os.PathLike[str]) -> HeadCard:
    """The verified card of a head file."""
    return read_head_file(Path(path))[0]


def _check_tensors(path: Path, card: HeadCard, t: dict[str, np.ndarray]) -> None:
    where = printable(path)
    keys = _KIND_KEYS[card.kind]
    if set(t) != keys | {"mean", "scale", "thresholds"}:
        raise HeadError(f"{where}: unexpected tensors for a {card.kind!r} head")
    k, d = len(card.classes), card.embedding_size
    if card.kind == "logreg":
        shapes = {"w": (k, d), "b": (k,)}
    else:
        h = t["w1"].shape[0] if t["w1"].ndim == 2 else -1
        shapes = {"w1": (h, d), "b1": (h,), "w2": (k, h), "b2": (k,)}
        if not 1 <= h <= 4096:
            raise HeadError(f"{where}: hidden layer size {h} out of range")
    shapes.update(mean=(d,), scale=(d,), thresholds=(k,))
    for key, shape in shapes.items():
        if t[key].shape != shape:
            raise HeadError(
                f"{where}: tensor shapes do not match the card ({k} classes, {d}-dim embeddings; "
                f"{key} is {t[key].shape})"
            )
    if not all(np.isfinite(v).all() for v in t.values()):
        raise HeadError(f"{where}: weights contain NaN or infinity")
    if (t["scale"] <= 0).any() or ((t["thresholds"] < 0) | (t["thresholds"] > 1)).any():
        raise HeadError(f"{where}: scales must be > 0 and thresholds in [0, 1]")


def load_head(path: str | os.PathLike[str], *, pack_id: str | None = None, layout: Any = None) -> Head:
    """Load and verify a head. With ``pack_id``/``layout`` given, a head made for another pack (or one
    that records none) or for another embedding size is refused."""
    path = Path(path)
    card, tensors, _, _ = read_head_file(path)
    _check_tensors(path, card, tensors)
    where = printable(path)
    if pack_id is not None and card.pack_id != pack_id:
        made = f"another model pack ({card.pack_id[:12]})" if card.pack_id else "no recorded model pack"
        raise HeadError(
            f"{where}: head '{printable(card.name)}' was made for {made}; retrain it with the current pack "
            f"({pack_id[:12]})"
        )
    if layout is not None:
        if card.layout_hash != layout_hash(layout):
            raise HeadError(f"{where}: head '{printable(card.name)}' expects a different embedding layout")
        size = sum(int(s) for _, s in layout)
        if card.embedding_size != size:
            raise HeadError(
                f"{where}: head '{printable(card.name)}' takes {card.embedding_size}-dim embeddings; "
                f"this pack makes {size}-dim ones"
            )
    params = {key: v for key, v in tensors.items() if key not in ("mean", "scale", "thresholds")}
    return Head(card=card, mean=tensors["mean"], scale=tensors["scale"], params=params,
                thresholds=tensors["thresholds"])  # fmt: skip
