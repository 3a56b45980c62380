"""Corpus sources inside archives installed by Debian packages (``corpus_archives``)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.training import corpus_archives
from models.training.corpus_archives import ArchiveSpec, archive_entries, archive_source, extract_members

SPEC = ArchiveSpec("game-sfx", "game-sound", "environment", r"/0snd\.pk3$", r"^sound/(doors|fire)/", r"laser",
                   prefix="base/")  # fmt: skip


def _wav(seconds: float, f0: float) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), 16000, format="WAV")
    return buf.getvalue()


@pytest.fixture
def pk3(tmp_path: Path) -> Path:
    path = tmp_path / "usr" / "share" / "games" / "game" / "base" / "0snd.pk3"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("sound/", b"")
        z.writestr("sound/doors/open.wav", _wav(1.0, 300))
        z.writestr("sound/doors/close.wav", _wav(1.5, 400))
        z.writestr("sound/fire/crackle.wav", _wav(12.0, 200))
        z.writestr("sound/fire/laser.wav", _wav(1.0, 900))  # excluded by name
        z.writestr("sound/ui/click.wav", _wav(0.5, 1000))  # not included
        z.writestr("sound/doors/readme.txt", b"not audio")
        z.writestr("sound/doors/../../evil.wav", _wav(0.5, 500))  # climbs out of its folder
    return path


def test_extract_selects_audio_members_safely_and_once(pk3: Path, tmp_path: Path) -> None:
    dest = tmp_path / "corpus" / "archives" / "game-sound"
    got = extract_members(pk3, SPEC, dest)
    names = sorted(n for _, n in got)
    assert names == ["sound/doors/close.wav", "sound/doors/open.wav", "sound/fire/crackle.wav"]
    for path, name in got:
        assert Path(path) == dest / name and Path(path).is_file()
        assert sf.info(path).samplerate == 16000
    assert not (tmp_path / "corpus" / "evil.wav").exists() and not (dest.parent / "evil.wav").exists()
    before = {p: Path(p).stat().st_mtime_ns for p, _ in got}
    again = extract_members(pk3, SPEC, dest)
    assert again == got and all(Path(p).stat().st_mtime_ns == t for p, t in before.items())  # kept


def test_oversized_members_and_broken_archives_give_nothing(
    pk3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus_archives, "MAX_MEMBER_BYTES", 40_000)  # the 1-s member fits, 1.5 s does not
    got = extract_members(pk3, SPEC, tmp_path / "a")
    assert [n for _, n in got] == ["sound/doors/open.wav"]
    bad = tmp_path / "bad.pk3"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    assert extract_members(bad, SPEC, tmp_path / "b") == []
    assert extract_members(tmp_path / "absent.pk3", SPEC, tmp_path / "c") == []


def test_archive_source_licences_members_by_their_source_tree_path(
    pk3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus_archives, "_installed", lambda package: ("/usr", str(pk3)))
    asked: list[str] = []

    def licence(package: str, path: str) -> str:  # the package's DEP-5 file, as debian_licence reads it
        asked.append(path)
        assert package == "game-sound"
        return "CC-BY-NC-3.0" if "close" in path else "CC-BY-SA-3.0"

    monkeypatch.setattr(corpus_archives, "debian_licence", licence)
    root = tmp_path / "corpus" / "archives"
    entries = archive_entries(SPEC, root)
    assert sorted(asked) == [
        "/base/sound/doors/close.wav",
        "/base/sound/doors/open.wav",
        "/base/sound/fire/crackle.wav",
    ]
    assert sorted((Path(p).name, lic, round(d, 1)) for p, lic, d in entries) == [
        ("crackle.wav", "CC-BY-SA-3.0", 12.0),
        ("open.wav", "CC-BY-SA-3.0", 1.0),
    ]  # the non-commercial member is left out
    src = archive_source(SPEC, root)
    assert src.missing() is None and src.origin == "game-sound"
    units = list(src.units(0))
    kinds = sorted(u.spec["kind"] for u in units)
    assert kinds == ["file", "pack"] and all(u.source == "game-sfx" for u in units)


def test_the_shipped_archive_specs_are_well_formed() -> None:
    import re

    names = [a.name for a in corpus_archives.ARCHIVES]
    assert len(names) == len(set(names))
    for a in corpus_archives.ARCHIVES:
        for rx in (a.archive, a.include, a.exclude):
            re.compile(rx)
        assert a.domain in ("speech", "music", "environment") and (not a.prefix or a.prefix.endswith("/"))
