"""Corpus sources from public repository snapshots of real recordings (``encotag corpus build --snapshots``).

A snapshot is a folder ``ROOT/<owner>+<name>/`` made by ``encotag corpus snapshot`` (see
:mod:`models.training.snapshot_extract`): the audio and licence files of one commit and ``SNAPSHOT.json``
(repository, commit). :data:`SNAPSHOTS` lists the repositories whose *audio* licences were read by hand
(``../shared/docs/AUDIO_SOURCES.md`` and ``docs/CORPUS.md``): which paths to take, the domain, and the
licence: one for the whole selection (with the file that states it), per file from a credits table
in the snapshot (Markdown tables with a file column and a licence column), or per file from a hand-made
licence CSV committed in ``models/training/licences/`` (see :mod:`models.training.snapshot_licences`;
only the files it lists are used). Every clip's manifest row
records repository, commit, path and licence. Files whose Freesound ID (from a credits link or a
``<id>__`` file name) is listed in ``EXCLUDE_FREESOUND_IDS.txt`` are left out, and so is anything whose
licence is non-commercial, no-derivatives or unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from models.training.corpus_sources import (
    AUDIO_EXT,
    FORBIDDEN_LICENCE,
    FileEntry,
    Source,
    Unit,
    _durations,
    file_units,
)
from models.training.snapshot_extract import read_snapshot
from models.training.snapshot_licences import LICENCE_DIR, csv_licence, read_licence_csv

FORBIDDEN_ND = re.compile(r"(^|[-_ ])ND([-_ ]|$)|no.?deriv", re.IGNORECASE)
ALLOWED = re.compile(r"^(CC0-1\.0|CC-BY(-SA)?(-\d\.\d)?|public-domain|L?GPL-\d(\.\d)?\+?|MIT|BSD)$")
FREESOUND_LINK = re.compile(r"freesound\.org/(?:people/[^/\s)]+/)?sounds/(\d+)")
FREESOUND_NAME = re.compile(r"^(\d{2,7})__")
SYNTH_NAMES = (
    r"synth|(^|/)fm_|theremin|laser|analog|casio|techno|vocoder|glitch|kaos|formant|scifi|(^|/)syn_"
    r"|ufo|alien|arpeggio|sequence|enotherapy|sorkinamin|truvan|warp"
)
INSTRUMENT_NAMES = (
    r"sitar|kalimba|piano|guitar|bass_string|conga|tabla|flute|violin|cymbal|(^|/)cym|tambourine|gong"
    r"|shaker|hand_drum|snare|drum|harp|recorder|music_box|string_pad|comping|groove|bell|chime|voclong"
    r"|voice|vocal|chord|tone|harmonic|horn|trumpet|marimba|glockenspiel|xylophone|zube_tube|bowed"
)


@dataclass(frozen=True)
class SnapshotSpec:
    """One source taken from a repository snapshot: ``include``/``exclude`` are regexes on the path
    inside the repository (case-insensitive); ``licence`` applies to every file unless ``table`` names
    the credits files (a glob inside the snapshot) whose rows give a licence per file, or
    ``licence_csv`` names a licence CSV (in :data:`LICENCE_DIR`, or an absolute path) listing the files
    to use with their licences."""

    name: str
    repo: str
    domain: str
    include: str
    licence: str = ""
    licence_file: str = ""
    exclude: str = r"$^"
    table: str = ""
    licence_csv: str = ""


SNAPSHOTS: tuple[SnapshotSpec, ...] = (
    SnapshotSpec(
        "berklee", "Tonejs/audio", "environment", r"^berklee/",
        "CC-BY-3.0", "berklee/README.md", rf"{SYNTH_NAMES}|{INSTRUMENT_NAMES}",
    ),
    SnapshotSpec(
        "berklee-instruments", "Tonejs/audio", "music", rf"^berklee/.*({INSTRUMENT_NAMES})",
        "CC-BY-3.0", "berklee/README.md", SYNTH_NAMES,
    ),
    SnapshotSpec("yellowstone", "rosuH/YSL", "environment", r".", "public-domain", "README.md"),
    SnapshotSpec(
        "redeclipse-ambience", "redeclipse/sounds", "environment", r"^ambience/",
        "CC-BY-SA-3.0/4.0", "ambience/readme.txt",
    ),
    SnapshotSpec(
        "redeclipse-sfx", "redeclipse/sounds", "environment", r"^(sfx|player)/",
        "CC-BY-SA-4.0", "readme.txt",
    ),
    SnapshotSpec(
        "cdda-sounds", "Fris0uman/CDDA-Soundpacks", "environment", r"^sound/CC-Sounds/",
        table="sound/CC-Sounds/**/credits.md",
    ),
    SnapshotSpec(
        "blanket", "rafaelmardojai/blanket", "environment", r"^data/resources/sounds/",
        exclude=r"noise", table="SOUNDS_LICENSING.md",
    ),
    SnapshotSpec(
        "openclonk", "openclonk/openclonk", "environment", r"^planet/Sound\.ocg/",
        "CC-BY-3.0", "planet/COPYING",
    ),
    SnapshotSpec(
        "tuxpaint-stamps", "deepin-community/tuxpaint-stamps", "environment", r"^stamps/",
        "GPL-2+", "debian/copyright", r"_desc|_[a-z]{2,3}(_[a-z]{2,4})?\.(ogg|wav)$",
    ),
    SnapshotSpec(
        "sonic-pi-samples", "sonic-pi-net/sonic-pi", "music", r"^etc/samples/",
        "CC0-1.0", "etc/samples/README.md", r"^etc/samples/ambi_",
    ),
    SnapshotSpec(
        "sonic-pi-ambience", "sonic-pi-net/sonic-pi", "environment", r"^etc/samples/ambi_",
        "CC0-1.0", "etc/samples/README.md",
    ),
    SnapshotSpec(
        "openrct2-sfx", "OpenRCT2/OpenSoundEffects", "environment", r".",
        "CC-BY-4.0", "LICENSE.ASSETS", r"^Unused/",
    ),
    SnapshotSpec("opensfx", "OpenTTD/OpenSFX", "environment", r".", "CC-BY-SA-3.0", "README.md"),
    SnapshotSpec(
        "body-percussion", "sfzinstruments/body_percussion", "environment", r".", "CC0-1.0", "LICENSE",
    ),
    SnapshotSpec(
        "ambientsounds", "Muges/ambientsounds", "environment", r"\.ogg$",
        licence_csv="Muges+ambientsounds.csv",
    ),
    SnapshotSpec(
        "alarm-clock-sfx", "jtgsystems/modern-alarm-clock", "environment", r"^public/sfx/",
        licence_csv="jtgsystems+modern-alarm-clock.csv",
    ),
    SnapshotSpec("everness", "z-op/everness", "environment", r"^sounds/", licence_csv="z-op+everness.csv"),
    SnapshotSpec(
        "dfcaverns-ambience", "MeseCraft/MeseCraft", "environment",
        r"^mods/MODULES/dfcaverns/df_ambience/sounds/", exclude=r"whispers|drums",
        licence_csv="MeseCraft+MeseCraft.csv",
    ),
    SnapshotSpec(
        "mesecraft-soundscapes", "MeseCraft/MeseCraft", "environment", r"^mods/mesecraft_soundscapes/sounds/",
        licence_csv="MeseCraft+MeseCraft.csv",
    ),
    SnapshotSpec(
        "noisekun", "mateusfg7/Noisekun", "environment", r"^\.github/assets/sounds/",
        licence_csv="mateusfg7+Noisekun.csv",
    ),
    SnapshotSpec(
        "brunobord-relax", "brunobord/relax", "environment", r"^sounds/", licence_csv="brunobord+relax.csv",
    ),
    SnapshotSpec(
        "gui-project-sounds", "DrunkenToast/gui-project", "environment", r"^sounds/",
        licence_csv="DrunkenToast+gui-project.csv",
    ),
    SnapshotSpec(
        "dsurround", "OreCruncher/DynamicSurroundingsFabric", "environment",
        r"^common/src/main/resources/assets/dsurround/sounds/",
        licence_csv="OreCruncher+DynamicSurroundingsFabric.csv",
    ),
    SnapshotSpec(
        "maad-soundscape", "scikit-maad/scikit-maad", "environment", r"^data/(indices/|spinetail\.wav$)",
        "BSD", "LICENSE",
    ),
    SnapshotSpec(
        "relaxing-sounds", "luizhenrique07/relaxing-sounds", "environment", r"^assets/audio/",
        licence_csv="luizhenrique07+relaxing-sounds.csv",
    ),
    SnapshotSpec(
        "lugaru-sfx", "osslugaru/lugaru", "environment", r"^Data/Sounds/",
        "CC-BY-SA-3.0", "CONTENT-LICENSE.txt", r"/Music",
    ),
    SnapshotSpec(
        "opensoundscape-field", "kitzeslab/opensoundscape", "environment",
        r"^(tests/audio/|tests/great_plains_toad\.wav$|opensoundscape/sample_data/)",
        "MIT", "LICENSE", r"empty_2c|stereo|veryshort|metadata|silence|late_start",
    ),
    SnapshotSpec(
        "regional-weather", "t-affeldt/regional_weather", "environment", r"^sounds/",
        licence_csv="t-affeldt+regional_weather.csv",
    ),
    SnapshotSpec(
        "ambient-engine", "hsbakshi/ambient-engine", "environment", r"^packages/web/public/assets/",
        licence_csv="hsbakshi+ambient-engine.csv",
    ),
    SnapshotSpec("bucklespring-keys", "zevv/bucklespring", "environment", r"^wav/", "GPL-2", "LICENSE"),
    SnapshotSpec("avianz-kiwi", "smarsland/AviaNZ", "environment", r"^Sound Files/", "GPL-3", "LICENSE.txt"),
    SnapshotSpec(
        "micropolis-sfx", "SimHacker/micropolis", "environment",
        r"^micropolis-activity/res/sounds/(beep|boing|bop|bulldozer|chalk|computer|cuckoo|eraser|explosion"
        r"|fire|heavytraffic|honkhonk|ignition|monster|police|quack|rumble|siren|skid|whip|woosh)",
        "GPL-3", "micropolis-activity/COPYING",
    ),
    SnapshotSpec(
        "voxelibre-sfx", "VoxeLibre/VoxeLibre", "environment", r"^mods/",
        licence_csv="VoxeLibre+VoxeLibre.csv",
    ),
    SnapshotSpec(
        "minetest-game-sfx", "minetest/minetest_game", "environment", r"^mods/",
        licence_csv="minetest+minetest_game.csv",
    ),
    SnapshotSpec(
        "horse-pulse", "sfzinstruments/Karoryfer.HorsePulse", "music", r"^Samples/", "CC0-1.0", "LICENSE",
    ),
    SnapshotSpec(
        "splendid-piano", "sfzinstruments/SplendidGrandPiano", "music", r"^Samples/",
        "public-domain", "README.md",
    ),
    SnapshotSpec(
        "black-green-guitars", "kmturley/karoryfer.black-and-green-guitars", "music", r"^Samples/",
        "CC0-1.0", "LICENSE", r"/(rel|fb)/",
    ),
    SnapshotSpec(
        "doggy-daycare", "gheja/doggy-daycare", "environment", r"^src/assets/sounds/",
        licence_csv="gheja+doggy-daycare.csv",
    ),
    SnapshotSpec(
        "max-audio-samples", "IBM/MAX-Audio-Classifier", "environment", r"^samples/",
        licence_csv="IBM+MAX-Audio-Classifier.csv",
    ),
    SnapshotSpec(
        "bird-whizz", "goldfinch-greenfinch/bird-whizz", "environment", r"^assets/audio/",
        licence_csv="goldfinch-greenfinch+bird-whizz.csv",
    ),
    SnapshotSpec(
        "noixer", "abetusk/noixer", "environment", r"^assets/", licence_csv="abetusk+noixer.csv",
    ),
    SnapshotSpec(
        "soundscape-examples", "ddanilov/soundscape", "environment", r"^examples/(rain_and_thunder|river)/",
        licence_csv="ddanilov+soundscape.csv",
    ),
    SnapshotSpec(
        "adafruit-sounds", "adafruit/Adafruit-Sound-Samples", "environment", r"^(sounds of adafruit|misc)/",
        "CC0-1.0", "README.md",
    ),
    SnapshotSpec(
        "ambienzzz", "coldino/AmbienZZZzz", "environment", r"^static/sounds/",
        licence_csv="coldino+AmbienZZZzz.csv",
    ),
    SnapshotSpec(
        "ambie", "jenius-apps/ambie", "environment", r"^src/AmbientSounds\.Uwp/Assets/Sounds/",
        licence_csv="jenius-apps+ambie.csv",
    ),
)  # fmt: skip


def normalise_licence(text: str) -> str:
    """A credits-table licence cell as an SPDX-like id ("CC BY 3.0" → "CC-BY-3.0", "CC0" → "CC0-1.0")."""
    t = re.sub(r"[*_`]", "", text).strip()
    low = t.lower()
    if not t:
        return ""
    if "public domain" in low or low in {"pd", "pdm"}:
        return "public-domain"
    if re.fullmatch(r"cc ?0( 1\.0)?", low):
        return "CC0-1.0"
    m = re.fullmatch(r"(?:cc[- ])?(by(?:[- ](?:sa|nc|nd))*)(?:[- ](\d\.\d))?", low)
    if m:
        parts = "-".join(p.upper() for p in re.split(r"[- ]", m.group(1)))
        return f"CC-{parts}" + (f"-{m.group(2)}" if m.group(2) else "")
    return t


def _key(text: str) -> str:
    stem = re.sub(r"\.(ogg|oga|opus|wav|flac|mp3)$", "", text.strip().lower())
    return re.sub(r"[^a-z0-9]+", "", stem)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table_licences(path: Path) -> dict[str, tuple[str, str]]:
    """``{normalised file key: (licence, freesound id or "")}`` from the Markdown tables of ``path``: the
    first column names the file (a Markdown link's text counts), the column headed "licen…" its licence."""
    out: dict[str, tuple[str, str]] = {}
    lic_col = -1
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip().startswith("|"):
            lic_col = -1 if not line.strip() else lic_col
            continue
        cells = _cells(line)
        heads = [c.lower() for c in cells]
        if any("licen" in h for h in heads):
            lic_col = next(i for i, h in enumerate(heads) if "licen" in h)
            continue
        if lic_col < 0 or lic_col >= len(cells) or set(cells[0]) <= set(":- "):
            continue
        name = re.sub(r"\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\[[^\]]*\]", r"\1\2", cells[0])
        fs = FREESOUND_LINK.search(line)
        out[_key(name)] = (normalise_licence(cells[lic_col]), fs.group(1) if fs else "")
    return out


@cache
def excluded_freesound_ids(shared_root: Path) -> frozenset[str]:
    """The Freesound IDs of public evaluation sets (``shared_root/EXCLUDE_FREESOUND_IDS.txt``)."""
    path = shared_root / "EXCLUDE_FREESOUND_IDS.txt"
    if not path.is_file():
        return frozenset()
    return frozenset(
        ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip().isdigit()
    )


def usable_licence(licence: str) -> bool:
    """Only licences on the approved list (CC0, CC BY, CC BY-SA, public domain, GPL/MIT/BSD); a cell
    naming alternatives ("CC-BY/CC0", "CC-BY-SA-3.0/4.0") needs every alternative approved."""
    if not licence or FORBIDDEN_LICENCE.search(licence) or FORBIDDEN_ND.search(licence):
        return False
    for alt in licence.split("/"):
        alt = alt.strip()
        if not (ALLOWED.match(alt) or ALLOWED.match(normalise_licence(alt)) or re.fullmatch(r"\d\.\d", alt)):
            return False
    return True


@cache
def snapshot_entries(folder: Path, spec: SnapshotSpec, shared_root: Path) -> tuple[list[FileEntry], str]:
    """``(entries, origin)`` for ``spec`` in the snapshot ``folder``; an entry's licence field carries the
    licence and, after ``|``, where it is stated, so the manifest row names both."""
    doc = read_snapshot(folder)
    if doc is None:
        return [], ""
    origin = f"{doc['repo']}@{str(doc['commit'])[:12]}"
    files = [str(f) for f in doc.get("files", []) if isinstance(f, str)]  # type: ignore[attr-defined]
    inc, exc = re.compile(spec.include, re.I), re.compile(spec.exclude, re.I)
    picked = [f for f in files if f.lower().endswith(AUDIO_EXT) and inc.search(f) and not exc.search(f)]
    rows = read_licence_csv(LICENCE_DIR / spec.licence_csv) if spec.licence_csv else {}
    present = set(files)
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    if spec.table:
        for t in sorted(folder.glob(spec.table)):
            tables[str(t.parent.relative_to(folder))] = table_licences(t)
    banned = excluded_freesound_ids(shared_root)
    keep: list[tuple[str, str]] = []
    for rel in picked:
        name = rel.rsplit("/", 1)[-1]
        m = FREESOUND_NAME.match(name)
        if m and m.group(1) in banned:
            continue
        if spec.licence_csv:
            lic, stated = csv_licence(rel, rows, banned, present)
        elif spec.table:
            lic, stated = _table_licence(rel, tables, banned)
        else:
            lic, stated = spec.licence, spec.licence_file
        if usable_licence(lic):
            keep.append((rel, f"{lic}|{doc['repo']}:{stated}"))
    paths = [str(folder / rel) for rel, _ in keep]
    entries = [(p, lic, d) for p, (_, lic), d in zip(paths, keep, _durations(paths), strict=True) if d > 0.05]
    return entries, origin


def _table_licence(
    rel: str, tables: dict[str, dict[str, tuple[str, str]]], banned: frozenset[str]
) -> tuple[str, str]:
    """Licence of ``rel`` from the nearest credits table above it (the file, or its folder name)."""
    parent = rel.rsplit("/", 1)[0] if "/" in rel else "."
    stem_key = _key(rel.rsplit("/", 1)[-1])
    for folder, table in sorted(tables.items(), key=lambda kv: -len(kv[0])):
        if folder != "." and not (parent == folder or parent.startswith(folder + "/")):
            continue
        hit = table.get(stem_key) or next((v for k, v in table.items() if k and stem_key.startswith(k)), None)
        if hit is None:
            continue
        lic, fs_id = hit
        if fs_id and fs_id in banned:
            return "", ""
        return lic, f"{folder}/credits table"
    return "", ""


def snapshot_sources(root: Path, shared_root: Path) -> list[Source]:
    """One :class:`Source` per :data:`SNAPSHOTS` entry whose repository snapshot is under ``root``."""
    out = []
    for spec in SNAPSHOTS:
        folder = root / spec.repo.replace("/", "+")

        def make(seed: int, f: Path = folder, s: SnapshotSpec = spec) -> Iterator[Unit]:
            entries, _ = snapshot_entries(f, s, shared_root)
            return file_units(s.name, entries, seed)

        def missing(f: Path = folder, s: SnapshotSpec = spec) -> str | None:
            if read_snapshot(f) is None:
                return f"no snapshot of {s.repo} in {root} (encotag corpus snapshot)"
            return None if snapshot_entries(f, s, shared_root)[0] else f"{s.repo}: no usable files"

        doc = read_snapshot(folder)
        origin = f"{spec.repo}@{str(doc['commit'])[:12]}" if doc else spec.repo
        out.append(Source(spec.name, spec.domain, origin, make, missing, note="real recordings"))
    return out
