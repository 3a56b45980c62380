"""Known model packs fetched on first use: downloaded (sha256-verified, cancellable) and built here.

A *known pack* is one Encotag knows how to make on the user's machine from files published at a
stable public address. Today there is one: the EfficientAT ``mn04_as`` AudioSet tagger (MIT, 4 MB),
fetched from the EfficientAT GitHub release and converted with the existing teacher conversion
(:func:`models.packs.teacher_pack.build_mel_pack`) into a mel *reference* pack in the user's packs
folder. The official EnCodec 24 kHz weights that an "official"-codec pack needs are fetched by
:mod:`models.codec.official`. Downloads follow :func:`models.download.fetch_file`'s rules (a corrupt or
cancelled download leaves nothing behind; offline, the error names the file, the URL and where to put it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from models.download import FetchCancelled, FetchError, Opener, ProgressFn, fetch_file
from models.tagging.windows import CancelFlag, is_cancelled

log = logging.getLogger(__name__)

__all__ = ["KNOWN_PACKS", "FetchCancelled", "FetchError", "KnownFile", "KnownPack", "ensure_known_pack"]


@dataclass(frozen=True)
class KnownFile:
    """One published file: where it is, its sha256 and byte count (0 = not known in advance)."""

    name: str
    url: str
    sha256: str
    size: int = 0


@dataclass(frozen=True)
class KnownPack:
    """A pack built on the user's machine from ``files`` by ``builder`` (see :data:`KNOWN_PACKS`)."""

    key: str  # the name on the command line: ``encotag pack fetch KEY``
    title: str
    folder: str  # the pack's folder name under the packs folder
    licence: str
    files: tuple[KnownFile, ...]
    builder: str  # "teacher_mel": models.packs.teacher_pack.build_mel_pack

    @property
    def download_bytes(self) -> int:
        return sum(f.size for f in self.files)


MN04 = KnownFile(
    name="mn04_as_mAP_432.pt",
    url="https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn04_as_mAP_432.pt",
    sha256="899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c",
    size=4_066_513,
)
KNOWN_PACKS: dict[str, KnownPack] = {
    "efficientat-mn04": KnownPack(
        key="efficientat-mn04",
        title="EfficientAT mn04_as (mel reference)",
        folder="efficientat-mn04-reference",
        licence="MIT",
        files=(MN04,),
        builder="teacher_mel",
    ),
}


def pack_folder(known: KnownPack, packs_root: Path) -> Path:
    return Path(packs_root) / known.folder


def is_installed(known: KnownPack, packs_root: Path) -> bool:
    return (pack_folder(known, packs_root) / "manifest.json").is_file()


def ensure_known_pack(
    key: str,
    packs_root: Path,
    downloads: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFlag = None,
    opener: Opener | None = None,
    urls: dict[str, str] | None = None,
) -> Path:
    """The folder of known pack ``key`` under ``packs_root``, fetched (into ``downloads``) and built on
    first use. ``urls`` overrides a file's URL by name (tests: a local server). Raises
    :class:`FetchError` (also for an unknown key), :class:`FetchCancelled` or ``PackError``."""
    known = KNOWN_PACKS.get(key)
    if known is None:
        raise FetchError(f"unknown pack {key!r}; known packs: {', '.join(sorted(KNOWN_PACKS))}")
    out = pack_folder(known, packs_root)
    if is_installed(known, packs_root):
        return out
    total = known.download_bytes
    base = 0
    paths: dict[str, Path] = {}
    for f in known.files:
        url = (urls or {}).get(f.name, f.url)

        def step(done: int, _total: int, base: int = base) -> None:
            if progress is not None:
                progress(base + done, total or _total)

        fetch_file(url, Path(downloads) / f.name, sha256=f.sha256, size=f.size, progress=step,
                   cancel=cancel, opener=opener)  # fmt: skip
        paths[f.name] = Path(downloads) / f.name
        base += f.size
    if is_cancelled(cancel):
        raise FetchCancelled
    return _build(known, paths, out)


def _build(known: KnownPack, files: dict[str, Path], out: Path) -> Path:
    if known.builder != "teacher_mel":
        raise FetchError(f"{known.key}: unknown builder {known.builder!r}")
    from models.packs.teacher_pack import build_mel_pack
    from models.resources import audioset_labels

    (weights,) = files.values()
    url = known.files[0].url
    log.info("building the %s pack at %s", known.title, out)
    return build_mel_pack(
        weights,
        out,
        labels=list(audioset_labels()),
        name=known.title,
        description="EfficientAT mn04_as AudioSet tagger (mAP .432) on the 32 kHz log-mel front end: the "
        "mel reference to compare codec packs against (fetched and converted on this machine).",
        source=url,
        evaluation={"audioset_mAP (published, EfficientAT)": 0.432},
    )
