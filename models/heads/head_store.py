"""Where personal heads live: a folder of ``NAME.safetensors`` head files plus their example sets.

Example sets (``NAME.examples.safetensors``) keep the training examples as embeddings (``emb`` (N, D)
float32, ``label`` (N,) int64; the class names, each row's source, the :class:`PackStamp` of the pack
that made the embeddings and a sha256 ``checksum`` over all of it in the metadata), never raw audio, so
a head can be retrained with more examples later. Embeddings of different packs never mix: adding
examples of another pack, or training with another pack, is refused with a one-line message. Sets
saved before the pack was recorded (no ``format_version``) still load, with an unknown pack; they
cannot be added to or trained from until their examples are cleared and added again (the safe choice:
same-size embeddings of another pack would otherwise train a head that silently fails). Qt-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic import atomic_write_bytes
from models.heads.heads import Head, HeadCard, HeadError, layout_hash, load_head, read_card, save_head

_NAME_RE = re.compile(r"^[\w][\w .+-]{0,63}$")
EXAMPLES_SUFFIX = ".examples.safetensors"
EXAMPLES_FORMAT = "encotag-examples"
EXAMPLES_VERSION = "2"  # 1: no format fields, no pack record, no checksum (still read)
_RE_ADD = "clear the classes and add the examples again"


class ExamplePackError(ValueError):
    """Examples made by another model pack (or by an unknown one) where this pack's are needed."""


def check_name(name: str) -> str:
    """A head name safe as a file name (letters, digits, space, ``_ . + -``; ≤ 64 chars)."""
    name = name.strip()
    if not _NAME_RE.match(name) or name.endswith(".examples"):
        raise ValueError(f"invalid head name {name!r}: use letters, digits, spaces, _ . + - (max 64)")
    return name


@dataclass(frozen=True)
class StoredHead:
    name: str
    path: Path
    card: HeadCard | None  # None: the file is unreadable
    error: str = ""


@dataclass(frozen=True)
class PackStamp:
    """Which model pack made some embeddings: its ``pack_id`` (sha256 of the weights) and the hash of
    its embedding layout (``models.heads.heads.layout_hash``)."""

    pack_id: str
    layout_hash: str

    @staticmethod
    def of(info: Any) -> PackStamp:
        """The stamp of a ``models.config.PackInfo`` (``pack_id``, ``embedding_layout``)."""
        return PackStamp(str(info.pack_id), layout_hash(info.embedding_layout))

    def short(self) -> str:
        return f"pack {self.pack_id[:12]}, layout {self.layout_hash[:8]}"


@dataclass(frozen=True)
class ExampleSet:
    """Embeddings collected for a head's classes; ``pack`` made them (None: not recorded)."""

    classes: tuple[str, ...]
    emb: np.ndarray  # (N, D) float32
    label: np.ndarray  # (N,) int64 index into classes
    sources: tuple[str, ...] = ()  # (N,) where each example came from (file path, "live", "mic")
    pack: PackStamp | None = None

    def check_pack(self, pack: PackStamp | None) -> None:
        """Raise :class:`ExamplePackError` unless this set's examples (if any) were made by ``pack``."""
        if not len(self.label):
            return
        if self.pack is None:
            raise ExamplePackError(
                "the examples were saved without a record of the model pack that made them "
                f"(older Encotag); {_RE_ADD}"
            )
        if pack is None:
            raise ExamplePackError(
                f"the new examples have no model-pack record; they cannot join {self.pack.short()}"
            )
        if pack != self.pack:
            raise ExamplePackError(
                f"the examples were made by another model pack ({self.pack.short()}; current: "
                f"{pack.short()}); {_RE_ADD}, or switch back to that pack"
            )

    def add(
        self, class_name: str, emb: np.ndarray, source: str = "", pack: PackStamp | None = None
    ) -> ExampleSet:
        """This set plus rows ``emb`` (n, D) made by ``pack`` for ``class_name`` (created if new).

        An empty set takes ``pack``; otherwise it must match (:class:`ExamplePackError`)."""
        emb = np.atleast_2d(np.asarray(emb, np.float32))
        self.check_pack(pack)
        classes = self.classes if class_name in self.classes else (*self.classes, class_name)
        idx = classes.index(class_name)
        old = self.emb if len(self.emb) else np.zeros((0, emb.shape[1]), np.float32)
        if old.shape[1] != emb.shape[1]:
            raise ValueError(f"embedding size {emb.shape[1]} does not match the set's {old.shape[1]}")
        return ExampleSet(
            classes=classes,
            emb=np.concatenate([old, emb]),
            label=np.concatenate([self.label, np.full(len(emb), idx, np.int64)]),
            sources=(*self.sources, *([source] * len(emb))),
            pack=self.pack if len(self.label) else pack,
        )

    def counts(self) -> dict[str, int]:
        n = np.bincount(self.label, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, n, strict=True)}

    @staticmethod
    def empty(classes: Sequence[str] = ()) -> ExampleSet:
        return ExampleSet(tuple(classes), np.zeros((0, 0), np.float32), np.zeros(0, np.int64), ())


class HeadStore:
    """A folder of heads. All writes are atomic; unreadable files are listed with their error."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.safetensors"

    def examples_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}{EXAMPLES_SUFFIX}"

    def list(self) -> list[StoredHead]:
        if not self.root.is_dir():
            return []
        out = []
        for p in sorted(self.root.glob("*.safetensors")):
            if p.name.endswith(EXAMPLES_SUFFIX):
                continue
            name = p.name[: -len(".safetensors")]
            try:
                out.append(StoredHead(name, p, read_card(p)))
            except HeadError as exc:
                out.append(StoredHead(name, p, None, str(exc)))
        return out

    def save(self, head: Head, name: str | None = None) -> Path:
        return save_head(head, self.path(name or head.card.name))

    def load(self, name: str, *, pack_id: str | None = None, layout: object = None) -> Head:
        p = self.path(name)
        if not p.exists():
            raise HeadError(f"{p}: no head named {name!r} (see 'encotag head list')")
        return load_head(p, pack_id=pack_id, layout=layout)

    def delete(self, name: str) -> None:
        for p in (self.path(name), self.examples_path(name)):
            p.unlink(missing_ok=True)

    def rename(self, old: str, new: str) -> None:
        src, dst = self.path(old), self.path(new)
        if dst.exists():
            raise ValueError(f"a head named {new!r} already exists")
        if not src.exists():
            raise HeadError(f"{src}: no head named {old!r}")
        os.replace(src, dst)
        if self.examples_path(old).exists():
            os.replace(self.examples_path(old), self.examples_path(new))

    def import_file(self, src: str | os.PathLike[str], name: str | None = None) -> Path:
        """Verify ``src`` fully (refusing corrupt files) and copy it in atomically."""
        head = load_head(src)
        return self.save(head, name or head.card.name)

    def export(self, name: str, dst: str | os.PathLike[str]) -> Path:
        head = self.load(name)
        dst = Path(dst)
        return save_head(head, dst if dst.suffix == ".safetensors" else dst.with_suffix(".safetensors"))

    # ---------------------------------------------------------------- example sets

    def save_examples(self, name: str, examples: ExampleSet) -> Path:
        """Write ``examples`` atomically as ``NAME.examples.safetensors`` (format version 2)."""
        from safetensors.numpy import save

        emb = examples.emb if examples.emb.size else np.zeros((0, 0), np.float32)
        tensors: dict[str, np.ndarray] = {
            "emb": np.ascontiguousarray(emb, np.float32),
            "label": np.ascontiguousarray(examples.label, np.int64),
        }
        meta = {
            "format": EXAMPLES_FORMAT,
            "format_version": EXAMPLES_VERSION,
            "classes": json.dumps(list(examples.classes)),
            "sources": json.dumps(list(examples.sources)),
            "pack_id": examples.pack.pack_id if examples.pack else "",
            "layout_hash": examples.pack.layout_hash if examples.pack else "",
        }
        meta["checksum"] = _examples_digest(tensors, meta)
        path = self.examples_path(name)
        atomic_write_bytes(path, save(tensors, metadata=meta))
        return path

    def load_examples(self, name: str) -> ExampleSet:
        """The example set of head ``name`` (empty if none). Raises :class:`HeadError` (one line, naming
        the file) for a corrupt or tampered file; a version-1 file loads with ``pack`` None."""
        from safetensors.numpy import load

        path = self.examples_path(name)
        if not path.exists():
            return ExampleSet.empty()
        try:
            blob = path.read_bytes()
            tensors = load(blob)
            n = int.from_bytes(blob[:8], "little")
            meta = json.loads(blob[8 : 8 + n]).get("__metadata__") or {}
            pack = None
            if "format_version" in meta:
                if meta.get("format") != EXAMPLES_FORMAT or meta["format_version"] != EXAMPLES_VERSION:
                    raise ValueError(f"unsupported format {meta.get('format')!r} {meta['format_version']!r}")
                if meta.get("checksum") != _examples_digest(tensors, meta):
                    raise HeadError(
                        f"{path}: example set does not match its checksum (file tampered or damaged)"
                    )
                if meta.get("pack_id"):
                    pack = PackStamp(str(meta["pack_id"]), str(meta.get("layout_hash", "")))
            classes = tuple(str(c) for c in json.loads(meta["classes"]))
            sources = tuple(str(c) for c in json.loads(meta.get("sources", "[]")))
            emb, label = tensors["emb"], tensors["label"]
            if emb.ndim != 2 or label.ndim != 1 or emb.dtype != np.float32 or label.dtype != np.int64:
                raise ValueError("unexpected tensor shapes or types")
            if len(emb) != len(label) or (len(label) and (label.min() < 0 or label.max() >= len(classes))):
                raise ValueError("labels do not match the embeddings")
            if len(sources) > len(label):
                raise ValueError("more sources than examples")
        except HeadError:
            raise
        except Exception as exc:  # noqa: BLE001 - safetensors and json raise several types on corrupt input
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise HeadError(f"{path}: not a valid example set ({reason})") from None
        return ExampleSet(classes, emb, label, sources, pack)


def _examples_digest(tensors: dict[str, np.ndarray], meta: dict[str, str]) -> str:
    """sha256 over the tensors (name, dtype, shape, bytes) and every metadata field but the checksum."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = np.ascontiguousarray(tensors[key])
        h.update(f"{key}:{t.dtype.str}:{t.shape}".encode())
        h.update(t.tobytes())
    h.update(json.dumps({k: v for k, v in meta.items() if k != "checksum"}, sort_keys=True).encode())
    return h.hexdigest()
