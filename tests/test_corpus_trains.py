"""Event trains (``<source>+train``): re-timed real events, keeping the split of their recording."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.evaluation.agreement import heldout_clips
from models.training.corpus import BuildOptions, build
from models.training.corpus_sources import Source, Unit
from models.training.corpus_split import cover_every_source, recording_of
from models.training.corpus_stretch import split_for, stretch_sources
from models.training.corpus_trains import EVENT_TRAINS, TrainStyle, event_train, strikes, train_source

SR = 24000


def _click(n: int, f0: float) -> np.ndarray:
    t = np.arange(n) / SR
    return (0.5 * np.sin(2 * np.pi * f0 * t) * np.exp(-t * 60)).astype(np.float32)


def test_strikes_pair_a_press_with_its_release_only_inside_the_unit() -> None:
    paths = ["/k/10-0.wav", "/k/10-1.wav", "/k/11-0.wav", "/k/12-1.wav"]
    got = strikes(paths, (r"-0\.wav$", "-1.wav"))
    assert ("/k/10-0.wav", "/k/10-1.wav") in got
    assert ("/k/11-0.wav", None) in got  # its release is in another unit
    assert ("/k/12-1.wav", None) in got  # a release without its press is an event of its own
    assert all(p != "/k/10-1.wav" for p, _ in got)  # a partner is not also an event
    assert strikes(paths, None) == [(p, None) for p in paths]


def test_event_train_follows_the_style_rhythm_and_level() -> None:
    events = [(_click(2400, 2000.0 + 100 * i), _click(1200, 3000.0)) for i in range(5)]
    style = TrainStyle(ioi_s=(0.15, 0.15), pair=("x", "y"), length_s=10.0)
    x, params = event_train(events, style, SR, np.random.default_rng(1))
    assert x.dtype == np.float32 and x.shape == (10 * SR,)
    assert 40 <= params["strikes"] <= 75  # 10 s at 0.15 s per strike, a few pauses
    assert -20.0 <= 20 * np.log10(np.abs(x).max()) <= -3.0 + 1e-3
    frames = np.abs(x[: 10 * SR].reshape(100, -1)).max(axis=1)
    assert (frames > 1e-3 * np.abs(x).max()).mean() > 0.6  # sound throughout, not one burst
    same, _ = event_train(events, style, SR, np.random.default_rng(1))
    assert np.array_equal(x, same)  # a pure function of its generator
    slow, p2 = event_train(events, TrainStyle(ioi_s=(0.6, 0.6), length_s=10.0), SR, np.random.default_rng(1))
    assert p2["strikes"] < params["strikes"] / 2
    empty, _ = event_train([(np.zeros(0, np.float32), None)], style, SR, np.random.default_rng(0))
    assert empty.size == 0


def test_train_units_inherit_the_split_of_their_recording() -> None:
    def units(seed: int):  # noqa: ANN202
        for i in range(120):
            yield Unit(
                "keys", f"pack-{i}", 30.0, {"kind": "pack", "paths": [f"/k/{i}-0.wav"], "licence": "GPL-2"}
            )
        yield Unit("keys", "long-1", 30.0, {"kind": "file", "path": "/k/long.wav", "licence": "GPL-2"})

    base = Source("keys", "environment", "owner/keys@abc", units, note="real recordings")
    src = train_source(base, TrainStyle(ioi_s=(0.1, 0.2)), 3)
    got = list(src.units(0))
    assert src.name == "keys+train" and len(got) == 360  # packed units only, three renders each
    held = {u.uid for u in units(0) if split_for("keys", u.uid, True) == "val"}
    assert held
    for u in got:
        assert u.spec["kind"] == "train" and u.uid.split("~")[0] in {f"pack-{i}" for i in range(120)}
        assert (split_for(*u.spec["split_key"]) == "val") == (u.uid.split("~")[0] in held)
    assert recording_of({"source": "keys+train", "clip": "c", "params": {"unit": "pack-3~t2"}}) == (
        "keys",
        "pack-3",
    )
    # a recording moved to val by the every-source rule takes its event trains along
    rows = [
        {"clip": f"clips/keys/pack-{i}_00.flac", "source": "keys", "origin": "o", "split": "train",
         "params": json.dumps({"unit": f"pack-{i}"})}
        for i in range(2)
    ] + [
        {"clip": f"clips/keys+train/pack-{i}~t1_00.flac", "source": "keys+train", "origin": "o",
         "split": "train", "params": json.dumps({"unit": f"pack-{i}~t1"})}
        for i in range(2)
    ]  # fmt: skip
    new, info = cover_every_source(rows)
    moved = info["moved"]["keys"]
    assert {r["source"] for r in new if r["split"] == "val"} == {"keys", "keys+train"}
    assert all(moved in r["clip"] for r in new if r["split"] == "val")


def test_stretch_adds_trains_only_for_sources_with_a_style() -> None:
    def units(seed: int):  # noqa: ANN202
        yield Unit("x", "pack-1", 30.0, {"kind": "pack", "paths": ["/a.wav"], "licence": "CC0-1.0"})

    names = {s.name for s in stretch_sources([Source(n, "environment", "o/r@c", units, note="real recordings")
                                               for n in ("bucklespring-keys", "other")], 1)}  # fmt: skip
    assert "bucklespring-keys+train" in names and "other+train" not in names
    assert "bucklespring-keys" in EVENT_TRAINS


@pytest.fixture
def key_snapshot(tmp_path: Path) -> Path:
    """A snapshot folder of a keyboard: 45 key presses and releases (short decaying clicks: two packed
    units and more, so the every-source rule has a recording to hold out)."""
    root = tmp_path / "snapshots"
    folder = root / "owner+keys"
    (folder / "wav").mkdir(parents=True)
    for i in range(45):
        sf.write(folder / "wav" / f"{i:02x}-0.wav", _click(4000, 1500.0 + 50 * i), SR)
        sf.write(folder / "wav" / f"{i:02x}-1.wav", _click(2000, 2500.0 + 50 * i), SR)
    (folder / "LICENSE").write_text("GPL-2\n", encoding="utf-8")
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    doc = {"repo": "owner/keys", "commit": "a" * 40, "files": files}
    (folder / "SNAPSHOT.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


def test_tiny_build_renders_event_trains_beside_their_recordings(key_snapshot: Path, tmp_path: Path) -> None:
    from models.training import corpus_snapshots, corpus_trains
    from models.training.corpus_snapshots import SnapshotSpec
    from models.training.snapshot_extract import read_snapshot

    assert read_snapshot(key_snapshot / "owner+keys") is not None
    spec = SnapshotSpec("keys", "owner/keys", "environment", r"^wav/", "GPL-2", "LICENSE")
    saved, saved_styles = corpus_snapshots.SNAPSHOTS, dict(corpus_trains.EVENT_TRAINS)
    corpus_snapshots.SNAPSHOTS = (spec,)
    corpus_trains.EVENT_TRAINS["keys"] = TrainStyle(ioi_s=(0.12, 0.2), pair=(r"-0\.wav$", "-1.wav"))
    out = tmp_path / "corpus"
    try:
        build(
            BuildOptions(
                out_dir=out, shared_root=tmp_path / "no-shared", hours=0.2, jobs=1, snapshots=key_snapshot,
                sources=("keys", "keys+train"), stretch=1,
            )
        )  # fmt: skip
    finally:
        corpus_snapshots.SNAPSHOTS = saved
        corpus_trains.EVENT_TRAINS.clear()
        corpus_trains.EVENT_TRAINS.update(saved_styles)
    with (out / "manifest.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    trains = [r for r in rows if r["source"] == "keys+train"]
    assert trains and {r["source"] for r in rows} == {"keys", "keys+train"}
    split_of = {recording_of(r): r["split"] for r in rows if r["source"] == "keys"}
    # a packed unit whose audio is too short for one clip gives no rows (the journal says so), while its
    # 30-s trains are rendered: those keep the split their recording's hash gives, not checkable here
    journal = [json.loads(line) for line in (out / "journal.jsonl").read_text(encoding="utf-8").splitlines()]
    dropped = {("keys", j["uid"]) for j in journal if j["source"] == "keys" and not j["rows"]}
    assert any(recording_of(r) in split_of for r in trains)
    for r in trains:
        p = json.loads(r["params"])
        assert r["licence"] == "GPL-2|owner/keys:LICENSE" and r["origin"] == "owner/keys@" + "a" * 12
        assert p["train"]["strikes"] > 20 and all(f.endswith(".wav") for f in p["files"])
        if recording_of(r) in dropped:
            continue
        assert r["split"] == split_of[recording_of(r)]
        x, sr = sf.read(out / r["clip"])
        assert sr == SR and len(x) == 10 * SR and np.abs(x).max() > 0.01
    # the broad held-out set of `encotag eval` never scores an event train
    assert any(r["split"] == "val" for r in trains)  # the every-source rule holds one recording out
    clips = heldout_clips([], out)
    assert clips and all("+train" not in str(path) for path, _ in clips)
