"""Where corpus audio comes from: the permissive shared sets, Debian packages with real recordings, and
the synthesisers (:mod:`models.training.corpus_synth`). A source yields :class:`Unit` s in a
deterministic order (given the seed); a unit is a JSON-able recipe that
:mod:`models.training.corpus_render` turns into audio and 10 s clips.

Licences: the shared sets carry one per file (``labels.csv``); Debian packages are read from their
machine-readable ``/usr/share/doc/<pkg>/copyright`` (DEP-5: the last ``Files:`` paragraph whose pattern
matches the installed path wins) with a per-package fallback for non-DEP-5 copyright files. Only
Debian ``main`` packages (DFSG-free) are listed. Anything non-commercial (``NC``) or marked "evaluation
only" is refused: ``ravdess_speech`` is never read, and only each shared set's ``train`` split is used.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import logging
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

log = logging.getLogger(__name__)

DOMAINS = ("speech", "music", "environment")
CLIP_S = 10.0
PACK_S = 30.0  # short files are packed into ~30 s pieces (3 clips)
LONG_MIN_S = 8.0  # files at least this long are cut on their own
MAX_CLIPS_PER_FILE = 12
AUDIO_EXT = (".ogg", ".oga", ".opus", ".wav", ".flac", ".mp3")
FORBIDDEN_LICENCE = re.compile(r"(^|[-_ ])NC([-_ ]|$)|noncommercial|non-commercial", re.IGNORECASE)
EVALUATION_ONLY_SETS = frozenset({"ravdess_speech"})


@dataclass(frozen=True)
class Unit:
    """One recipe: ``source`` name, ``uid`` (unique within the source, file-name safe), an estimate of the
    audio seconds it yields, and the JSON-able ``spec`` the renderer needs."""

    source: str
    uid: str
    est_s: float
    spec: dict[str, Any] = field(hash=False, compare=False)


@dataclass
class Source:
    """A named stream of units of one domain. ``origin``: the Debian package, shared set or tool."""

    name: str
    domain: str
    origin: str
    make_units: Callable[[int], Iterator[Unit]]
    missing: Callable[[], str | None] = lambda: None
    note: str = ""
    opt_in: bool = False  # only built when named (not by default, not through its group)

    def units(self, seed: int) -> Iterator[Unit]:
        return self.make_units(seed)


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of ``parts`` that is the same on every machine and Python run."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little")


def unit_rng(seed: int, *parts: object) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, stable_hash(*parts) & 0xFFFFFFFFFFFF])


def check_licence(licence: str, what: str) -> str:
    """Return ``licence`` or raise ValueError if it is empty or non-commercial."""
    if not licence or FORBIDDEN_LICENCE.search(licence):
        raise ValueError(f"{what}: licence {licence!r} does not allow training shipped weights")
    return licence


# ---------------------------------------------------------------------------------------------------------
# Debian licences (DEP-5)
# ---------------------------------------------------------------------------------------------------------

NON_DEP5_LICENCE = {  # copyright files that are free text; read by hand (see docs/CORPUS.md)
    "wesnoth-1.14-music": "GPL-2+",
    "wesnoth-1.16-music": "GPL-2+",
    "wesnoth-1.18-music": "GPL-2+",
    "pingus-data": "GPL-2+",
    "fluid-soundfont-gm": "MIT",
}


@cache
def _dep5(package: str) -> tuple[tuple[tuple[str, ...], str], ...]:
    path = Path("/usr/share/doc") / package / "copyright"
    if not path.is_file():
        return ()
    paras: list[tuple[tuple[str, ...], str]] = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
        files = re.search(r"^Files:(.*(?:\n[ \t]+.*)*)", block, re.MULTILINE)
        lic = re.search(r"^License:[ \t]*(\S.*)$", block, re.MULTILINE)
        if files and lic:
            paras.append((tuple(files.group(1).split()), lic.group(1).strip()))
    return tuple(paras)


def debian_licence(package: str, installed: str) -> str:
    """Licence of an installed file of ``package`` from its DEP-5 copyright file. Patterns name source-tree
    paths, so a pattern matches when a tail of it with at least one directory (or ``*`` itself) matches the
    end of the installed path; the most specific match (most path components) wins, then the later one."""
    best, best_score = "", -1
    for patterns, lic in _dep5(package):
        for pat in patterns:
            parts = pat.split("/")
            tails = ["*"] if pat == "*" else ["/".join(parts[k:]) for k in range(len(parts) - 1)]
            for t in tails:
                score = 0 if t == "*" else t.count("/") + 1
                if (t == "*" or fnmatch.fnmatch(installed, "*/" + t)) and score >= best_score:
                    best, best_score = lic, score
    return best or NON_DEP5_LICENCE.get(package, "")


# ---------------------------------------------------------------------------------------------------------
# File lists -> units
# ---------------------------------------------------------------------------------------------------------

FileEntry = tuple[str, str, float]  # (path, licence, duration_s)


def file_units(name: str, entries: list[FileEntry], seed: int) -> Iterator[Unit]:
    """Long files (>= 8 s) become one unit each (at most 12 clips, evenly spaced); shorter ones are packed,
    per licence, into ~30 s units. Order: shuffled by ``seed``."""
    rng = unit_rng(seed, "files", name)
    entries = sorted(entries)
    units: list[Unit] = []
    short: dict[str, list[FileEntry]] = {}
    for path, lic, dur in entries:
        if dur >= LONG_MIN_S:
            uid = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem)[:60] + f"-{stable_hash(path) % 10**6:06d}"
            est = min(dur, MAX_CLIPS_PER_FILE * CLIP_S)
            units.append(Unit(name, uid, est, {"kind": "file", "path": path, "licence": lic}))
        else:
            short.setdefault(lic, []).append((path, lic, dur))
    for lic, group in sorted(short.items()):
        order = rng.permutation(len(group))
        pack: list[str] = []
        total = 0.0
        for i in order:
            path, _, dur = group[int(i)]
            pack.append(path)
            total += dur + 0.45
            if total >= PACK_S or i == order[-1]:
                uid = f"pack-{stable_hash(lic, *pack) % 10**10:010d}"
                units.append(
                    Unit(name, uid, max(total, 3.0), {"kind": "pack", "paths": pack, "licence": lic})
                )
                pack, total = [], 0.0
    for k in rng.permutation(len(units)):
        yield units[int(k)]


def _durations(paths: list[str]) -> list[float]:
    out = []
    for p in paths:
        try:
            out.append(float(sf.info(p).duration))
        except (RuntimeError, sf.LibsndfileError) as exc:  # unreadable: leave it out
            log.warning("%s: unreadable (%s), skipped", p, exc)
            out.append(0.0)
    return out


@cache
def _package_files(package: str) -> list[str]:
    res = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return []
    return sorted(p for p in res.stdout.split() if p.lower().endswith(AUDIO_EXT) and Path(p).is_file())


@dataclass(frozen=True)
class DebSpec:
    """A Debian source: package (``a|b``: the first installed alternative, for versioned names), domain and
    path regexes (include, exclude) on installed paths."""

    name: str
    package: str
    domain: str
    include: str
    exclude: str = r"$^"


DEBIAN = (
    DebSpec("wesnoth-music", "wesnoth-1.16-music|wesnoth-1.18-music|wesnoth-1.14-music", "music", r"/music/"),
    DebSpec("warzone2100-music", "warzone2100-music", "music", r"/music/"),
    DebSpec("hedgewars-music", "hedgewars-data", "music", r"/Data/Music/"),
    DebSpec("hedgewars-voices", "hedgewars-data", "speech", r"/Sounds/voices/"),
    DebSpec("hedgewars-sfx", "hedgewars-data", "environment", r"/Data/Sounds/", r"/voices/"),
    DebSpec("supertux-music", "supertux-data", "music", r"/music/"),
    DebSpec("supertux-speech", "supertux-data", "speech", r"/speech/"),
    DebSpec("supertux-sfx", "supertux-data", "environment", r"/sounds/"),
    DebSpec("megaglest-music", "megaglest-data", "music", r"/music/"),
    DebSpec("megaglest-ambience", "megaglest-data", "environment", r"/tilesets/"),
    DebSpec("megaglest-sfx", "megaglest-data", "environment", r"/sounds?/", r"/tilesets/|/music/"),
    DebSpec("frozen-bubble-music", "frozen-bubble-data", "music", r"/snd/"),
    DebSpec("etr-music", "extremetuxracer-data", "music", r"/music/"),
    DebSpec("etr-sfx", "extremetuxracer-data", "environment", r"/sounds/"),
    DebSpec("xmoto-music", "xmoto-data", "music", r"/Musics/"),
    DebSpec("lincity-sfx", "lincity-ng-data", "environment", r"/sounds/"),
    DebSpec("pingus-sfx", "pingus-data", "environment", r"/sounds/"),
    DebSpec("tuxpaint-sfx", "tuxpaint-data", "environment", r"/sounds/"),
    DebSpec("freedesktop-sounds", "sound-theme-freedesktop", "environment", r"/freedesktop/"),
)


def installed_package(spec: DebSpec) -> str:
    """The first alternative of ``spec.package`` that is installed (else the first one)."""
    names = spec.package.split("|")
    return next((n for n in names if _package_files(n)), names[0])


@cache
def debian_entries(spec: DebSpec) -> list[FileEntry]:
    """Installed audio files of the package matching the spec, with licence and duration."""
    package = installed_package(spec)
    paths = [
        p for p in _package_files(package) if re.search(spec.include, p) and not re.search(spec.exclude, p)
    ]
    out = []
    for p, d in zip(paths, _durations(paths), strict=True):
        lic = debian_licence(package, p)
        if d > 0.05 and lic and not FORBIDDEN_LICENCE.search(lic):
            out.append((p, lic, d))
    return out


def debian_source(spec: DebSpec) -> Source:
    package = installed_package(spec)

    def missing() -> str | None:
        return None if _package_files(package) else f"Debian package {package} not installed"

    return Source(
        spec.name,
        spec.domain,
        package,
        lambda seed: file_units(spec.name, debian_entries(spec), seed),
        missing,
    )


# ---------------------------------------------------------------------------------------------------------
# Shared data sets (train split only, never evaluation-only sets)
# ---------------------------------------------------------------------------------------------------------

SHARED_SETS = {  # set name -> (source name, domain for a row's label)
    "fsdd": ("fsdd", lambda label: "speech"),
    "speech_commands_test": ("speech-commands", lambda label: "speech"),
    "donateacry": ("donateacry", lambda label: "environment"),
    "mod_sounds": ("mod-sounds", lambda label: "environment"),
    "sms_tools_sounds": (
        "sms-tools",
        lambda label: (
            "speech"
            if label.startswith("speech")
            else "environment"
            if label in {"ocean", "rain", "chirp", "impulse-response"}
            else "music"
        ),
    ),
    "librosa_data": (
        "librosa",
        lambda label: (
            "speech"
            if label.startswith("libri")
            else "environment"
            if label in {"humpback", "robin"}
            else "music"
        ),
    ),
}


@cache
def shared_entries(root: Path, set_name: str, domain: str) -> list[FileEntry]:
    """``train``-split rows of ``root/set_name/labels.csv`` whose label maps to ``domain``."""
    if set_name in EVALUATION_ONLY_SETS or set_name not in SHARED_SETS:
        raise ValueError(f"{set_name}: not a training set")
    folder = root / set_name
    rows = list(csv.DictReader((folder / "labels.csv").open(encoding="utf-8")))
    to_domain = SHARED_SETS[set_name][1]
    keep = [r for r in rows if r["split"] == "train" and to_domain(r["label"]) == domain]
    paths = [str(folder / r["file"]) for r in keep]
    out = []
    for r, p, d in zip(keep, paths, _durations(paths), strict=True):
        if d > 0.05:
            out.append((p, check_licence(r["license"], p), d))
    return out


def shared_sources(root: Path) -> list[Source]:
    out = []
    for set_name, (name, _) in SHARED_SETS.items():
        domains = {
            "fsdd": ["speech"],
            "speech_commands_test": ["speech"],
            "donateacry": ["environment"],
            "mod_sounds": ["environment"],
        }.get(set_name, list(DOMAINS))
        for dom in domains:
            src = name if len(domains) == 1 else f"{name}-{dom}"

            def make(seed: int, s: str = set_name, d: str = dom, n: str = src) -> Iterator[Unit]:
                return file_units(n, shared_entries(root, s, d), seed)

            def missing(s: str = set_name) -> str | None:
                return None if (root / s / "labels.csv").is_file() else f"{root / s} not present"

            out.append(Source(src, dom, f"shared/{set_name}", make, missing))
    return out
