"""Where personal heads live: a folder of ``NAME.safetensors`` files, each a head plus its example set.

A trained head and its examples are one file, written in one atomic replace under the store's lock;
a head not trained yet keeps its examples in ``NAME.examples.safetensors`` (a draft; older Encotag kept
every set there, and a head file without an ``examples`` record still reads it). Example sets keep
the training examples as embeddings (``emb`` (N, D)
float32, ``label`` (N,) int64; the class names, each row's source, the :class:`PackStamp` of the pack
that made the embeddings and a sha256 ``checksum`` over all of it in the metadata), never raw audio, so
a head can be retrained with more examples later. Embeddings of different packs never mix: adding
examples of another pack, or training with another pack, is refused with a one-line message. Sets
saved before the pack was recorded (no ``format_version``) still load, with an unknown pack; they
cannot be added to or trained from until their examples are cleared and added again (the safe choice:
same-size embeddings of another pack would otherwise train a head that silently fails). Qt-free.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic import atomic_write_bytes
from models.heads.head_file import (
    EXAMPLES_PREFIX,
    MAX_HEAD_BYTES,
    load_head,
    read_head_file,
    safetensors_header,
    save_head,
)
from models.heads.heads import Head, HeadCard, HeadError, layout_hash
from models.safeio import InputFileError, clean_stale_temps, printable, read_regular

log = logging.getLogger(__name__)

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


class _Keep:
    """The default of :meth:`HeadStore.save`'s ``examples``: keep the head's stored examples."""


KEEP = _Keep()
LOCK_FILE = ".lock"


class HeadStore:
    """A folder of heads: ``NAME.safetensors`` holds a trained head *and* its example set (one file, so
    the two are always written together); ``NAME.examples.safetensors`` holds the examples of a head
    not trained yet (a draft). Every write takes an exclusive lock on ``.lock`` in the folder (so two
    trainings or an import racing an edit cannot interleave), removes temp files a killed writer left,
    and replaces one file atomically. Unreadable files are listed with their error."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.safetensors"

    def examples_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}{EXAMPLES_SUFFIX}"

    def _exists(self, p: Path) -> bool:
        return p.exists() or p.is_symlink()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's write lock (blocking until other writers are done); cleans stale temps."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            clean_stale_temps(self.root)
            yield
        finally:
            os.close(fd)  # releases the lock

    def list(self) -> list[StoredHead]:
        """Every head file, fully verified (a corrupt or tampered head is listed with its error)."""
        if not self.root.is_dir():
            return []
        out = []
        for p in sorted(self.root.glob("*.safetensors")):
            if p.name.endswith(EXAMPLES_SUFFIX) or p.name.startswith("."):
                continue
            name = p.name[: -len(".safetensors")]
            try:
                out.append(StoredHead(name, p, load_head(p).card))
            except HeadError as exc:
                out.append(StoredHead(name, p, None, str(exc)))
        return out

    def _write(self, name: str, head: Head, examples: ExampleSet | None) -> Path:
        """Write head + examples as one file (caller holds the lock), then drop the draft sidecar."""
        if examples is None:
            extra_t: dict[str, np.ndarray] = {}
            extra_m = {"examples": "none"}
        else:
            tensors, meta = _examples_payload(examples)
            extra_t = {EXAMPLES_PREFIX + k: v for k, v in tensors.items()}
            extra_m = {"examples": json.dumps(meta, sort_keys=True)}
        path = save_head(head, self.path(name), extra_t, extra_m)
        self.examples_path(name).unlink(missing_ok=True)
        return path

    def save(self, head: Head, name: str | None = None, examples: ExampleSet | _Keep | None = KEEP) -> Path:
        """Save ``head`` as ``name`` with ``examples`` in the same file: by default the examples stored for
        that name now (the draft's or the previous head's); None drops them (a head trained elsewhere
        must not be retrained later from examples of its predecessor)."""
        name = check_name(name or head.card.name)
        with self.locked():
            if isinstance(examples, _Keep):
                try:
                    kept: ExampleSet | None = self._load_examples(name)
                except HeadError as exc:
                    log.warning("%s; not kept with the new head", exc)
                    kept = None
                examples = kept if kept is not None and (len(kept.label) or kept.classes) else None
            return self._write(name, head, examples)

    def load(self, name: str, *, pack_id: str | None = None, layout: object = None) -> Head:
        p = self.path(name)
        if not self._exists(p):
            raise HeadError(f"{printable(p)}: no head named {name!r} (see 'encotag head list')")
        return load_head(p, pack_id=pack_id, layout=layout)

    def delete(self, name: str) -> None:
        """Remove head ``name`` and its examples; :class:`HeadError` if there is no such head."""
        with self.locked():
            paths = [p for p in (self.path(name), self.examples_path(name)) if self._exists(p)]
            if not paths:
                raise HeadError(f"no head named {name!r} (see 'encotag head list')")
            for p in paths:
                p.unlink(missing_ok=True)

    def rename(self, old: str, new: str) -> None:
        with self.locked():
            pairs = [(self.path(old), self.path(new)), (self.examples_path(old), self.examples_path(new))]
            if any(self._exists(dst) for _, dst in pairs):
                raise ValueError(f"a head named {new!r} already exists")
            if not any(self._exists(src) for src, _ in pairs):
                raise HeadError(f"{printable(self.path(old))}: no head named {old!r}")
            for src, dst in pairs:
                if self._exists(src):
                    os.replace(src, dst)

    def import_file(self, src: str | os.PathLike[str], name: str | None = None, force: bool = False) -> Path:
        """Verify ``src`` fully (refusing corrupt files) and add it; an existing head of that name is
        replaced (examples dropped) only with ``force``."""
        head = load_head(src)
        name = check_name(name or head.card.name)
        with self.locked():
            if not force and (self._exists(self.path(name)) or self._exists(self.examples_path(name))):
                raise HeadError(
                    f"a head named {name!r} already exists: choose another name (or replace it: --force)"
                )
            return self._write(name, head, None)

    def export(self, name: str, dst: str | os.PathLike[str]) -> Path:
        """Write head ``name`` (without its examples, which name the user's files) to ``dst``."""
        head = self.load(name)
        dst = Path(dst)
        return save_head(head, dst if dst.suffix == ".safetensors" else dst.with_suffix(".safetensors"))

    # ---------------------------------------------------------------- example sets

    def save_examples(self, name: str, examples: ExampleSet) -> Path:
        """Store ``examples`` for ``name``: inside the head file when the head exists (one file, one
        atomic write), else as the draft ``NAME.examples.safetensors``."""
        from safetensors.numpy import save

        with self.locked():
            p = self.path(name)
            if self._exists(p):
                return self._write(name, load_head(p), examples)
            tensors, meta = _examples_payload(examples)
            path = self.examples_path(name)
            atomic_write_bytes(path, save(tensors, metadata=meta))
            return path

    def load_examples(self, name: str) -> ExampleSet:
        """The example set of head ``name`` (empty if none). Raises :class:`HeadError` (one line, naming
        the file) for a corrupt or tampered file; a version-1 set loads with ``pack`` None."""
        return self._load_examples(name) or ExampleSet.empty()

    def _load_examples(self, name: str) -> ExampleSet | None:
        from safetensors.numpy import load

        p = self.path(name)
        if self._exists(p):
            _, _, meta, ex_t = read_head_file(p)
            marker = meta.get("examples")
            if marker == "none":
                return None
            if marker is not None:  # examples kept inside the head file
                try:
                    ex_meta = json.loads(marker)
                    if not isinstance(ex_meta, dict):
                        raise ValueError("examples metadata is not an object")
                except (ValueError, RecursionError) as exc:
                    raise HeadError(f"{printable(p)}: not a valid example set ({exc})") from None
                return _examples_from(ex_t, ex_meta, p)
            # a head written before examples moved into it: its sidecar, if any, is its set
        path = self.examples_path(name)
        if not self._exists(path):
            return None
        try:
            blob = read_regular(path, MAX_HEAD_BYTES)
            meta = safetensors_header(blob).get("__metadata__") or {}
            tensors = load(blob)
        except InputFileError as exc:
            raise HeadError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - safetensors and json raise several types on corrupt input
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise HeadError(
                f"{printable(path)}: not a valid example set ({printable(reason, 200)})"
            ) from None
        return _examples_from(tensors, meta, path)


def _examples_payload(examples: ExampleSet) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors and metadata (format version 2, with checksum) of an example set."""
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
    return tensors, meta


def _examples_from(tensors: dict[str, np.ndarray], meta: Any, path: Path) -> ExampleSet:
    """An :class:`ExampleSet` from its tensors and metadata, every field checked (:class:`HeadError`)."""
    try:
        if not isinstance(meta, dict):
            raise ValueError("metadata is not an object")
        pack = None
        if "format_version" in meta:
            if meta.get("format") != EXAMPLES_FORMAT or meta["format_version"] != EXAMPLES_VERSION:
                raise ValueError(f"unsupported format {meta.get('format')!r} {meta['format_version']!r}")
            if meta.get("checksum") != _examples_digest(tensors, meta):
                raise HeadError(
                    f"{printable(path)}: example set does not match its checksum (file tampered or damaged)"
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
        if len(label) and not np.isfinite(emb).all():
            raise ValueError("embeddings contain NaN or infinity")
    except HeadError:
        raise
    except Exception as exc:  # noqa: BLE001 - json and numpy raise several types on corrupt input
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HeadError(f"{printable(path)}: not a valid example set ({printable(reason, 200)})") from None
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
