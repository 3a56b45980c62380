"""Real-recording sources from repository snapshots: extraction from a bare git repository, licences read
per source and per file from credits tables, the Freesound exclusion list, augmented copies that keep
their recording's split, real mixtures drawn only from training recordings, and a tiny build."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.training.corpus import BuildOptions, build
from models.training.corpus_snapshots import (
    SNAPSHOTS,
    SnapshotSpec,
    normalise_licence,
    snapshot_entries,
    table_licences,
    usable_licence,
)
from models.training.corpus_stretch import mix_source, split_for, variant_source
from models.training.snapshot_extract import extract_snapshot, read_snapshot, repo_name_of
from models.training.snapshot_licences import LICENCE_DIR, cited_files, csv_licence, read_licence_csv

CREDITS = """# Sounds

| File Name | Author | License | Link |
|---|---|---|---|
| dog_bark.ogg | someone | **CC0** | https://freesound.org/people/someone/sounds/111/ |
| banned.ogg | other | CC BY 3.0 | https://freesound.org/people/other/sounds/4201/ |
| nc_one.ogg | third | CC BY-NC 3.0 | https://example.org/x |
"""


def _tone(path: Path, seconds: float, f0: float, sr: int = 22050) -> None:
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), sr)


def _git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env)
    return res.stdout.strip()


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    """A bare repository ``owner+sounds/repo`` with two sound folders, a credits table and other files."""
    work = tmp_path / "work"
    (work / "sfx").mkdir(parents=True)
    (work / "amb").mkdir()
    for name, f0 in (("dog_bark", 300), ("banned", 500), ("nc_one", 700)):
        _tone(work / "sfx" / f"{name}.wav", 1.5, f0)
    _tone(work / "amb" / "forest.wav", 12.0, 200)
    (work / "sfx" / "credits.md").write_text(CREDITS.replace(".ogg", ".wav"), encoding="utf-8")
    (work / "README.md").write_text("Sounds are CC0 unless credited otherwise.\n", encoding="utf-8")
    (work / "main.c").write_text("int main(void) { return 0; }\n", encoding="utf-8")
    (work / "catalogue.json").write_text('{"forest": "CC0"}\n', encoding="utf-8")
    _git(work, "init", "-q")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "sounds")
    bare = tmp_path / "mirror" / "owner+sounds" / "repo"
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def test_extract_snapshot_copies_audio_and_licences_only(bare_repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    rep = extract_snapshot(bare_repo, root)
    assert rep.repo == "owner/sounds" and len(rep.commit) == 40 and rep.written == 6 and rep.missing == 0
    folder = root / "owner+sounds"
    assert (folder / "sfx" / "dog_bark.wav").is_file() and (folder / "README.md").is_file()
    assert not (folder / "main.c").exists()
    doc = read_snapshot(folder)
    assert doc is not None and doc["commit"] == rep.commit and "amb/forest.wav" in doc["files"]  # type: ignore[operator]
    again = extract_snapshot(bare_repo, root)
    assert again.written == 0 and again.kept == 6
    assert not (folder / "catalogue.json").exists()  # not licence-like by name
    cited = extract_snapshot(bare_repo, root, cited={"catalogue.json"})  # named by a licence CSV
    assert (
        cited.written == 1
        and (folder / "catalogue.json").read_text(encoding="utf-8") == '{"forest": "CC0"}\n'
    )
    (folder / "SNAPSHOT.json").write_text("{not json", encoding="utf-8")
    assert read_snapshot(folder) is None


def test_licence_tables_and_normalisation(tmp_path: Path) -> None:
    path = tmp_path / "credits.md"
    path.write_text(CREDITS, encoding="utf-8")
    table = table_licences(path)
    assert table["dogbark"] == ("CC0-1.0", "111")
    assert table["banned"] == ("CC-BY-3.0", "4201")
    assert (
        normalise_licence("CC BY-SA") == "CC-BY-SA" and normalise_licence("Public Domain") == "public-domain"
    )
    assert normalise_licence("CC 0") == "CC0-1.0"
    for ok in (
        "CC0-1.0",
        "CC-BY-3.0",
        "CC-BY-SA-3.0/4.0",
        "CC-BY/CC0",
        "public-domain",
        "GPL-2+",
        "LGPL-2.1",
        "GPL-3.0",
    ):
        assert usable_licence(ok), ok
    for bad in ("", "CC-BY-NC-3.0", "CC-BY-ND-4.0", "Sampling Plus 1.0", "Pixabay"):
        assert not usable_licence(bad), bad


def test_snapshot_entries_per_file_licences_and_exclusions(bare_repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    extract_snapshot(bare_repo, root)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "EXCLUDE_FREESOUND_IDS.txt").write_text("# ids\n4201\n", encoding="utf-8")
    spec = SnapshotSpec("t-sfx", "owner/sounds", "environment", r"^sfx/", table="sfx/credits.md")
    entries, origin = snapshot_entries(root / "owner+sounds", spec, shared)
    assert origin.startswith("owner/sounds@")
    names = {Path(p).name: lic for p, lic, _ in entries}
    assert set(names) == {"dog_bark.wav"}  # banned by Freesound ID, NC refused
    assert names["dog_bark.wav"].startswith("CC0-1.0|owner/sounds:sfx/credits table")


def test_snapshot_entries_from_a_licence_csv(bare_repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    extract_snapshot(bare_repo, root)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "EXCLUDE_FREESOUND_IDS.txt").write_text("4201\n", encoding="utf-8")
    table = tmp_path / "owner+sounds.csv"
    table.write_text(
        "path,licence,stated_in,freesound_id,note\n"
        "sfx/dog_bark.wav,CC0-1.0,sfx/credits.md,111,dog_bark row\n"
        "sfx/banned.wav,CC-BY-3.0,sfx/credits.md,999 4201,one of two recordings is excluded\n"
        "sfx/nc_one.wav,CC-BY-NC-3.0,sfx/credits.md,,non-commercial\n"
        "sfx/gone.wav,CC0-1.0,sfx/credits.md,,not in the snapshot\n",
        encoding="utf-8",
    )
    spec = SnapshotSpec("t-csv", "owner/sounds", "environment", r".", licence_csv=str(table))
    entries, _ = snapshot_entries(root / "owner+sounds", spec, shared)
    names = {Path(p).name: lic for p, lic, _ in entries}
    assert names == {"dog_bark.wav": "CC0-1.0|owner/sounds:sfx/credits.md"}  # forest.wav is not listed
    rows = read_licence_csv(table)
    assert rows["sfx/banned.wav"].freesound_ids == ("999", "4201")
    assert csv_licence("sfx/dog_bark.wav", rows, frozenset(), {"README.md"}) == ("", "")  # no stating file
    assert read_licence_csv(tmp_path / "absent.csv") == {}
    assert cited_files(table) == {"sfx/credits.md"} and cited_files(tmp_path / "absent.csv") == set()
    table.write_text("path,licence\nsfx/dog_bark.wav,CC0-1.0\n", encoding="utf-8")
    with pytest.raises(ValueError):
        read_licence_csv(table)


def test_committed_licence_csvs_are_well_formed_and_approved() -> None:
    named = {s.licence_csv for s in SNAPSHOTS if s.licence_csv}
    assert named and named <= {p.name for p in LICENCE_DIR.glob("*.csv")}
    for name in named:
        rows = read_licence_csv(LICENCE_DIR / name)
        assert rows, name
        for rel, row in rows.items():
            assert usable_licence(row.licence) and row.stated_in and not rel.startswith("/"), (name, rel)
    for spec in SNAPSHOTS:  # a licence for the whole selection is approved and says where it is stated
        assert not spec.licence or (usable_licence(spec.licence) and spec.licence_file), spec.name
    assert len({s.name for s in SNAPSHOTS}) == len(SNAPSHOTS)


def test_variants_keep_the_split_of_their_recording_and_mixtures_are_train() -> None:
    from models.training.corpus_sources import Source, Unit

    def units(seed: int):  # noqa: ANN202
        for i in range(200):
            yield Unit("rec", f"u{i}", 10.0, {"kind": "file", "path": f"/x/{i}.wav", "licence": "CC0-1.0"})

    base = Source("rec", "environment", "owner/rec@abc", units, note="real recordings")
    var = variant_source(base, 2)
    got = list(var.units(0))
    assert len(got) == 400 and got[0].uid.endswith("~a1")
    held = {u.uid for u in units(0) if split_for("rec", u.uid, True) == "val"}
    assert 10 <= len(held) <= 45  # about 12 %
    for u in got:
        key = u.spec["split_key"]
        assert (split_for(key[0], key[1], key[2]) == "val") == (u.uid.split("~")[0] in held)
    mixes = list(
        zip(range(50), mix_source("m", "environment", [base], [base], (0, 20)).units(0), strict=False)
    )
    assert all(m.spec["split"] == "train" for _, m in mixes)
    assert all(m.spec["fg"]["uid"] not in held and m.spec["bg"]["uid"] not in held for _, m in mixes)


def test_tiny_build_from_a_snapshot_records_repo_commit_path_and_licence(
    bare_repo: Path, tmp_path: Path
) -> None:
    root = tmp_path / "snapshots"
    extract_snapshot(bare_repo, root)
    out = tmp_path / "corpus"
    opts = BuildOptions(
        out_dir=out, shared_root=tmp_path / "no-shared", hours=0.01, jobs=1, sources=("berklee",)
    )
    with pytest.raises(ValueError):  # the named source has no snapshot here
        build(BuildOptions(**{**opts.__dict__, "snapshots": root}))
    from models.training import corpus_snapshots

    spec = SnapshotSpec("own-amb", "owner/sounds", "environment", r"^amb/", "CC0-1.0", "README.md")
    saved = corpus_snapshots.SNAPSHOTS
    corpus_snapshots.SNAPSHOTS = (spec,)
    try:
        build(
            BuildOptions(
                **{**opts.__dict__, "snapshots": root, "sources": ("own-amb", "own-amb+aug"), "stretch": 1}
            )
        )
    finally:
        corpus_snapshots.SNAPSHOTS = saved
    with (out / "manifest.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["source"] for r in rows} == {"own-amb", "own-amb+aug"}
    for r in rows:
        assert r["origin"].startswith("owner/sounds@") and r["licence"] == "CC0-1.0|owner/sounds:README.md"
        assert json.loads(r["params"])["file"].endswith("amb/forest.wav")
    splits = {r["source"]: r["split"] for r in rows}
    assert splits["own-amb"] == splits["own-amb+aug"]
    aug_params = json.loads(next(r for r in rows if r["source"] == "own-amb+aug")["params"])
    assert 0.92 <= aug_params["augment"]["speed"] <= 1.08


def test_repo_name_of_mirror_paths() -> None:
    assert repo_name_of(Path("/m/owner+name/repo")) == "owner/name"
    assert repo_name_of(Path("/m/owner+name/repo/.git")) == "owner/name"  # a work tree's git folder
    assert repo_name_of(Path("/m/owner+name")) == "owner/name"
    assert repo_name_of(Path("/m/plain/repo")) == "repo"
