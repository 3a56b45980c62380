"""The installed model packs and what each is, read from the manifests alone (no weights loaded).

Installed packs are the one shipped with Encotag (``resources/packs/default``), every pack folder in the
user's packs folder (``<user data>/packs/*``: where fetched packs are built) and any other folder named
(the pack chosen in the settings). :func:`summarize` reads a manifest (bounded, checked like
``load_pack`` does) into a :class:`PackSummary`: kind (codec tokens or mel), size on disk, licence,
label and trusted-label counts and the evaluation figures recorded in the manifest's provenance. A pack
whose manifest cannot be read is listed with its one-line error, never skipped silently.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.packs.pack_manifest import MANIFEST, PackError, check_manifest, one_line

log = logging.getLogger(__name__)

MAX_MANIFEST_BYTES = 4 << 20
#: provenance keys whose numeric values are evaluation figures (first found first)
FIGURE_KEYS = ("evaluation", "tagger_metrics", "metrics")
MAX_FIGURES = 6
OFFICIAL_CODEC_BYTES = 93_000_000  # model.safetensors of facebook/encodec_24khz, fetched on first use


@dataclass(frozen=True)
class PackSummary:
    """What a pack is, from its manifest; ``error`` is set (and the rest empty) when it is unreadable."""

    path: Path
    name: str = ""
    kind: str = ""  # "codec tokens" | "mel"
    codec_source: str | None = None  # "pack" | "official" | None (mel)
    size_bytes: int = 0
    licence: str = ""
    n_labels: int = 0
    n_trusted: int = 0
    figures: tuple[tuple[str, float], ...] = ()
    shipped: bool = False
    error: str = ""

    @property
    def needs_official_codec(self) -> bool:
        return self.codec_source == "official"

    @property
    def size_text(self) -> str:
        text = f"{self.size_bytes / 1e6:.1f} MB"
        return text + " + 93 MB official codec" if self.needs_official_codec else text

    @property
    def figures_text(self) -> str:
        return ", ".join(f"{k} {v:g}" if v.is_integer() else f"{k} {v:.3f}" for k, v in self.figures) or (
            "none recorded"
        )

    def describe(self) -> str:
        """One line: name, kind, size, licence, trusted labels, evaluation figures."""
        if self.error:
            return f"{self.path}: unreadable ({self.error})"
        return (
            f"{self.name}: {self.kind}, {self.size_text}, licence {self.licence}, "
            f"{self.n_trusted} of {self.n_labels} labels trusted; evaluation: {self.figures_text}"
        )


def _figures(provenance: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(provenance, dict):
        return ()
    for key in FIGURE_KEYS:
        block = provenance.get(key)
        if isinstance(block, dict):
            out = [
                (str(k), float(v))
                for k, v in block.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            ]
            if out:
                return tuple(out[:MAX_FIGURES])
    return ()


def _n_trusted(trusted: list[Any], n: int) -> int:
    if len(trusted) == n and all(isinstance(t, bool) for t in trusted):
        return sum(trusted)
    return len({t for t in trusted if isinstance(t, int) and not isinstance(t, bool) and 0 <= t < n})


def summarize(folder: Path | str, *, shipped: bool = False) -> PackSummary:
    """The :class:`PackSummary` of the pack folder ``folder`` (never raises for a bad pack)."""
    from models.safeio import InputFileError, printable, read_regular

    root = Path(folder)
    mp = root / MANIFEST
    try:
        m = json.loads(read_regular(mp, MAX_MANIFEST_BYTES).decode("utf-8"))
        check_manifest(m, mp)
        n = int(m["tagger"].get("num_classes", 0))
        if not isinstance(m["tagger"].get("num_classes"), int) or not 0 < n <= 10_000:
            raise PackError(f"{mp}: tagger.num_classes must be a positive integer")
        size = mp.stat().st_size
        for name in m["files"]:
            item = root / name
            size += item.stat().st_size if item.is_file() else 0
    except (InputFileError, PackError) as exc:
        return PackSummary(root, shipped=shipped, error=printable(one_line(exc)))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        return PackSummary(root, shipped=shipped, error=printable(f"{mp}: {one_line(exc)}"))
    codec = m["codec"]
    return PackSummary(
        path=root,
        name=printable(m["name"], 200),
        kind="mel" if codec is None else "codec tokens",
        codec_source=None if codec is None else str(codec["source"]),
        size_bytes=size,
        licence=printable(m["licence"], 200),
        n_labels=n,
        n_trusted=_n_trusted(m["trusted"], n),
        figures=_figures(m["provenance"]),
        shipped=shipped,
    )


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return str(a) == str(b)


def installed_packs(packs_root: Path | None, extra: Iterable[str | Path | None] = ()) -> list[PackSummary]:
    """The shipped pack (when present), the packs under ``packs_root`` (sorted by folder name) and the
    ``extra`` folders, each once."""
    from models.resources import default_pack_dir

    found: list[tuple[Path, bool]] = []
    shipped = Path(default_pack_dir())
    if (shipped / MANIFEST).is_file():
        found.append((shipped, True))
    if packs_root is not None and Path(packs_root).is_dir():
        try:
            found += [(p, False) for p in sorted(Path(packs_root).iterdir()) if os.path.lexists(p / MANIFEST)]
        except OSError as exc:
            log.warning("cannot list %s: %s", packs_root, exc)
    found += [(Path(p), False) for p in extra if p]
    out: list[PackSummary] = []
    for path, is_shipped in found:
        if any(_same(path, s.path) for s in out):
            continue
        out.append(summarize(path, shipped=is_shipped))
    return out
