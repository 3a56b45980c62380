"""Corpus sources inside archives that Debian packages install (game data in ``.pk3`` / zip files).

Some Debian ``main`` packages ship their sounds inside a zip archive, not as files: ``ufoai-sound`` installs
``/usr/share/games/ufoai/base/0snd.pk3``. An :class:`ArchiveSpec` names the package, a regex for the
archive's installed path, regexes on the member names, and the source-tree prefix under which the
package's DEP-5 ``copyright`` names the members (``base/`` for UFO:AI: ``base/sound/ambience/fire.ogg``),
so each member gets its own licence (:func:`~models.training.corpus_sources.debian_licence`).

The members a spec selects are extracted once into ``<corpus>/archives/<package>/`` (atomically; a member
already there with its size is kept), then the source is built like any Debian source. Every size is
checked before anything is read: a member over :data:`MAX_MEMBER_BYTES`, or a name that is absolute or
climbs out of its folder, is skipped with a warning; an archive that is not a readable zip file gives no
entries. Nothing is executed or unpickled.
"""

from __future__ import annotations

import logging
import re
import subprocess
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

from models.safeio import atomic_write_bytes
from models.training.corpus_sources import (
    AUDIO_EXT,
    FORBIDDEN_LICENCE,
    FileEntry,
    Source,
    _durations,
    debian_licence,
    file_units,
)

log = logging.getLogger(__name__)

MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 20000


@dataclass(frozen=True)
class ArchiveSpec:
    """A source of audio members of an archive installed by a Debian package."""

    name: str
    package: str
    domain: str
    archive: str  # regex on the installed path of the archive
    include: str  # regex on member names (case-insensitive)
    exclude: str = r"$^"
    prefix: str = ""  # source-tree path of the archive's root in the package's DEP-5 copyright file


ARCHIVES = (
    # UFO: Alien Invasion's recorded effects: ambiences (fire, water, thunder, wind, crickets, machines),
    # doors, footsteps, impacts, breaking glass / wood / metal, firearms and explosions, vehicles. Not the
    # voices (aliens/, soldiers/, civilians/), the interface, the geoscape, the radio and TV speech, the
    # jingles, or the sci-fi weapons (laser, plasma, gauss, needler).
    ArchiveSpec(
        "ufoai-sfx", "ufoai-sound", "environment", r"/0snd\.pk3$",
        r"^sound/(ambience|doors|footsteps|impact|misc|weapons|ugv)/",
        r"alien|bloodspider|ufo_night|disco|jingle|radiomessage|tv_news|laser|plasma|gauss|needler",
        prefix="base/",
    ),
)  # fmt: skip


def _safe_member(name: str) -> PurePosixPath | None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in name:
        return None
    return p


def extract_members(archive: Path, spec: ArchiveSpec, dest: Path) -> list[tuple[str, str]]:
    """``(extracted path, member name)`` of the audio members of ``archive`` that ``spec`` selects, each
    written under ``dest`` (kept when already there with the member's size)."""
    inc, exc = re.compile(spec.include, re.I), re.compile(spec.exclude, re.I)
    out: list[tuple[str, str]] = []
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                log.warning("%s: %d members (more than %d), skipped", archive, len(infos), MAX_MEMBERS)
                return []
            for info in infos:
                name = info.filename
                if info.is_dir() or not name.lower().endswith(AUDIO_EXT):
                    continue
                if not inc.search(name) or exc.search(name):
                    continue
                rel = _safe_member(name)
                if rel is None or info.file_size > MAX_MEMBER_BYTES:
                    log.warning(
                        "%s: member %r skipped (unsafe name or %d bytes)", archive, name, info.file_size
                    )
                    continue
                target = dest / rel
                if not (target.is_file() and target.stat().st_size == info.file_size):
                    with zf.open(info) as f:
                        data = f.read(MAX_MEMBER_BYTES + 1)
                    if len(data) != info.file_size:
                        log.warning("%s: member %r is not the size its header states, skipped", archive, name)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(target, data)
                out.append((str(target), name))
    except (OSError, zipfile.BadZipFile, RuntimeError) as exc_:
        log.warning("%s: cannot read the archive (%s)", archive, exc_)
        return []
    return out


@cache
def _installed(package: str) -> tuple[str, ...]:
    """Every path ``dpkg -L`` lists for ``package`` (empty when it is not installed)."""
    res = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    return tuple(res.stdout.split()) if res.returncode == 0 else ()


def archive_entries(spec: ArchiveSpec, root: Path) -> list[FileEntry]:
    """Extracted members of ``spec``'s archives under ``root/<package>/`` with licence and duration."""
    rx = re.compile(spec.archive)
    members: list[tuple[str, str]] = []
    for path in sorted(p for p in _installed(spec.package) if rx.search(p)):
        if Path(path).is_file():
            members += extract_members(Path(path), spec, root / spec.package)
    paths = [p for p, _ in members]
    out = []
    for (p, name), d in zip(members, _durations(paths), strict=True):
        lic = debian_licence(spec.package, f"/{spec.prefix}{name}")
        if d > 0.05 and lic and not FORBIDDEN_LICENCE.search(lic):
            out.append((p, lic, d))
    return out


def archive_source(spec: ArchiveSpec, root: Path) -> Source:
    """The :class:`Source` of ``spec``, extracting into ``root`` (the corpus's ``archives/`` folder)."""
    cached: list[list[FileEntry]] = []

    def entries() -> list[FileEntry]:
        if not cached:
            cached.append(archive_entries(spec, root))
        return cached[0]

    def missing() -> str | None:
        if not _installed(spec.package):
            return f"Debian package {spec.package} not installed"
        return None if entries() else f"{spec.package}: no usable archive members"

    return Source(
        spec.name, spec.domain, spec.package, lambda seed: file_units(spec.name, entries(), seed), missing
    )
