"""Where personal heads live: a folder of ``NAME.safetensors`` head files plus their example sets.

Example sets (``NAME.examples.safetensors``) keep the training examples as embeddings (``emb`` (N, D)
float32, ``label`` (N,) int64, ``start``/``end`` seconds, and the class names and sources in the
metadata), never raw audio, so a head can be retrained with more examples later. Qt-free.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.atomic import atomic_write_bytes
from models.heads import Head, HeadCard, HeadError, load_head, read_card, save_head

_NAME_RE = re.compile(r"^[\w][\w .+-]{0,63}$")
EXAMPLES_SUFFIX = ".examples.safetensors"


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
class ExampleSet:
    """Embeddings collected for a head's classes."""

    classes: tuple[str, ...]
    emb: np.ndarray  # (N, D) float32
    label: np.ndarray  # (N,) int64 index into classes
    sources: tuple[str, ...] = ()  # (N,) where each example came from (file path, "live", "mic")

    def add(self, class_name: str, emb: np.ndarray, source: str = "") -> ExampleSet:
        emb = np.atleast_2d(np.asarray(emb, np.float32))
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
        from safetensors.numpy import save

        meta = {"classes": json.dumps(list(examples.classes)), "sources": json.dumps(list(examples.sources))}
        emb = examples.emb if examples.emb.size else np.zeros((0, 0), np.float32)
        blob = save(
            {
                "emb": np.ascontiguousarray(emb, np.float32),
                "label": np.ascontiguousarray(examples.label, np.int64),
            },
            metadata=meta,
        )
        path = self.examples_path(name)
        atomic_write_bytes(path, blob)
        return path

    def load_examples(self, name: str) -> ExampleSet:
        from safetensors.numpy import load

        path = self.examples_path(name)
        if not path.exists():
            return ExampleSet.empty()
        blob = path.read_bytes()
        try:
            tensors = load(blob)
            n = int.from_bytes(blob[:8], "little")
            meta = json.loads(blob[8 : 8 + n]).get("__metadata__", {})
            classes = tuple(json.loads(meta["classes"]))
            sources = tuple(json.loads(meta.get("sources", "[]")))
            emb, label = tensors["emb"], tensors["label"]
            if len(emb) != len(label) or (len(label) and (label.min() < 0 or label.max() >= len(classes))):
                raise ValueError("labels do not match the embeddings")
        except Exception as exc:
            raise HeadError(f"{path}: not a valid example set ({exc})") from None
        return ExampleSet(classes, emb, label, sources)
