"""Reading a pack folder without torch: the manifest, the labels, the sha256 checks, the :class:`PackInfo`.

:func:`models.packs.pack.load_pack` builds the modules on top of this; the ONNX Runtime engine
(:mod:`models.tagging.onnx_engine`) uses it alone, so a launch that tags with ONNX Runtime never imports
torch. Every problem raises :class:`~models.packs.pack_manifest.PackError` "<path>: <reason>".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.config import CodecConfig, MelConfig, PackInfo, TaggerConfig, WindowConfig
from models.packs.pack_manifest import (
    FORMAT_VERSION,
    MANIFEST,
    PackError,
    check_manifest,
    configs,
    one_line,
    require,
)

TAGGER_FILE = "tagger.safetensors"
CODEC_FILE = "codec.safetensors"
OFFICIAL_CODEC_ID = "official-encodec-24khz"
MAX_MANIFEST_BYTES = 4 << 20  # manifests and label files are a few hundred KiB
MAX_WEIGHTS_BYTES = 512 << 20  # the largest tagger (width 4) is about 270 MB


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def pack_id_of(weight_hashes: Sequence[str]) -> str:
    """sha256 over the sorted weight-file hashes (one per line)."""
    return hashlib.sha256("\n".join(sorted(weight_hashes)).encode("ascii")).hexdigest()


def trusted_list(trusted: Sequence[Any], n: int) -> list[bool]:
    """``trusted`` as ``n`` booleans (given as booleans or as label indices); ValueError otherwise."""
    items = list(trusted)
    if len(items) == n and all(isinstance(t, bool) for t in items):
        return items
    if all(isinstance(t, int) and not isinstance(t, bool) for t in items):
        if any(t < 0 or t >= n for t in items):
            raise ValueError(f"trusted index out of range 0..{n - 1}")
        chosen = set(items)
        return [i in chosen for i in range(n)]
    raise ValueError(f"trusted must be {n} booleans or a list of label indices")


def verified_file(root: Path, files: dict[str, str], name: str) -> Path:
    """``root / name`` after checking it is a regular file whose sha256 is the manifest's."""
    from models.safeio import InputFileError, check_regular

    path = root / name
    require(name in files, root / MANIFEST, f"{name} has no sha256 in 'files'")
    require(path.exists() or path.is_symlink(), path, "missing file")
    try:
        check_regular(path, MAX_WEIGHTS_BYTES)
    except InputFileError as exc:
        raise PackError(str(exc)) from None
    digest = sha256_file(path)
    require(
        digest == files[name], path, f"sha256 mismatch (file {digest[:12]}…, manifest {files[name][:12]}…)"
    )
    return path


@dataclass(frozen=True)
class PackManifest:
    """A checked manifest: configs, labels, trusted flags and the weight files' expected sha256."""

    root: Path
    manifest: dict[str, Any] = field(repr=False)
    tagger_cfg: TaggerConfig
    codec_cfg: CodecConfig | None
    mel_cfg: MelConfig
    window: WindowConfig
    labels: tuple[str, ...]
    trusted: tuple[bool, ...]
    files: dict[str, str] = field(repr=False)

    @property
    def codec_source(self) -> str | None:
        """``"pack"``, ``"official"`` or ``None`` (mel packs)."""
        codec = self.manifest["codec"]
        return None if codec is None else str(codec["source"])

    @property
    def codec_id(self) -> str | None:
        """The codec weights' sha256, :data:`OFFICIAL_CODEC_ID`, or ``None`` (mel packs)."""
        source = self.codec_source
        return self.files[CODEC_FILE] if source == "pack" else OFFICIAL_CODEC_ID if source else None

    @property
    def pack_id(self) -> str:
        return pack_id_of(
            [self.files[TAGGER_FILE]] + ([self.files[CODEC_FILE]] if CODEC_FILE in self.files else [])
        )

    @property
    def timestamp_hop_ms(self) -> float:
        hop_ms = self.manifest["embedding"]["timestamp_hop_ms"]
        require(
            isinstance(hop_ms, int | float) and 0 < hop_ms <= 50,
            self.root / MANIFEST,
            "timestamp_hop_ms must be in (0, 50]",
        )
        return float(hop_ms)

    def info(self, layout: tuple[tuple[str, int], ...], size: int) -> PackInfo:
        """The :class:`PackInfo` once the embedding ``layout`` and ``size`` are known to be the manifest's."""
        mp = self.root / MANIFEST
        emb = self.manifest["embedding"]
        given = tuple((str(p), int(s)) for p, s in emb["layout"])
        require(given == tuple(layout), mp, "embedding layout differs from the tagger's")
        require(
            emb["scene_size"] == size and emb["timestamp_size"] == size, mp, f"embedding sizes must be {size}"
        )
        m = self.manifest
        return PackInfo(
            name=m["name"],
            pack_id=self.pack_id,
            format_version=FORMAT_VERSION,
            sample_rate=m["sample_rate"],
            labels=self.labels,
            trusted=self.trusted,
            embedding_size=size,
            embedding_layout=given,
            licence=m["licence"],
            provenance=dict(m["provenance"]),
        )

    def manifest_layout(self) -> tuple[tuple[tuple[str, int], ...], int]:
        """The embedding layout and size the manifest states (checked against the tagger by ``load_pack``)."""
        emb = self.manifest["embedding"]
        layout = tuple((str(p), int(s)) for p, s in emb["layout"])
        return layout, sum(s for _, s in layout)


def read_manifest(path: Path | str) -> PackManifest:
    """Read and check ``path/manifest.json`` and its labels file (sha256 checked); no weights are read."""
    root = Path(path)
    mp = root / MANIFEST
    from models.safeio import InputFileError, read_regular

    require(root.is_dir(), root, "not a pack folder")
    require(mp.exists() or mp.is_symlink(), mp, "missing file")
    try:
        m = json.loads(read_regular(mp, MAX_MANIFEST_BYTES).decode("utf-8"))
    except InputFileError as exc:
        raise PackError(str(exc)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PackError(f"{mp}: not valid JSON ({one_line(exc)})") from None
    except RecursionError:
        raise PackError(f"{mp}: not valid JSON (nested too deeply)") from None
    check_manifest(m, mp)
    tagger_cfg, codec_cfg, mel_cfg, window = configs(m, mp)
    files: dict[str, str] = m["files"]
    expected = {TAGGER_FILE} | ({CODEC_FILE} if m["codec"] and m["codec"]["source"] == "pack" else set())
    if "labels_file" in m:
        expected.add(str(m["labels_file"]))
    require(set(files) == expected, mp, f"'files' must list exactly {sorted(expected)}")
    if "labels_file" in m:
        try:
            lpath = verified_file(root, files, m["labels_file"])
            labels = json.loads(read_regular(lpath, MAX_MANIFEST_BYTES).decode("utf-8"))
        except InputFileError as exc:
            raise PackError(str(exc)) from None
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise PackError(f"{root / m['labels_file']}: not valid JSON ({one_line(exc)})") from None
    else:
        labels = m["labels"]
    n = tagger_cfg.num_classes
    require(
        isinstance(labels, list) and len(labels) == n and all(isinstance(x, str) for x in labels),
        mp,
        f"labels must be {n} strings",
    )
    try:
        trusted = trusted_list(m["trusted"], n)
    except ValueError as exc:
        raise PackError(f"{mp}: {exc}") from None
    return PackManifest(
        root, m, tagger_cfg, codec_cfg, mel_cfg, window, tuple(labels), tuple(trusted), dict(files)
    )
