"""Corpus builder on tiny subsets: manifest, clips, licences, no evaluation-only data, determinism, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main as cli_main
from models.training import augment as aug
from models.training import fluid, synth
from models.training.corpus import BuildOptions, build, select_sources
from models.training.corpus_render import MANIFEST_COLUMNS, SR, cut_clips
from models.training.corpus_sources import check_licence, shared_entries
from models.training.corpus_split import recording_of
from models.training.corpus_synth import all_sources

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _opts(out: Path, **kw: object) -> BuildOptions:
    base: dict[str, object] = {
        "out_dir": out,
        "shared_root": SHARED,
        "hours": 0.03,
        "sources": ("dsp",),
        "jobs": 1,
    }
    base.update(kw)
    return BuildOptions(**base)  # type: ignore[arg-type]


def _manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_dsp_build_manifest_and_clips(tmp_path: Path) -> None:
    total = build(_opts(tmp_path))
    rows = _manifest(tmp_path)
    assert total >= 0.03 and len(rows) >= 10
    with (tmp_path / "manifest.csv").open(encoding="utf-8") as f:
        assert tuple(next(csv.reader(f))) == MANIFEST_COLUMNS
    for r in rows:
        x, sr = sf.read(tmp_path / r["clip"], dtype="float32")
        assert sr == SR and x.ndim == 1 and len(x) == 10 * SR
        assert float(r["duration"]) == pytest.approx(10.0)
        assert r["domain"] == "environment" and r["source"] == "dsp" and r["licence"]
        assert r["split"] in ("train", "val")
        params = json.loads(r["params"])
        assert params["kind"] in synth.DSP_KINDS and "unit" in params
        assert np.abs(x).max() < 1.0 and np.sqrt(np.mean(x**2)) > 1e-4
    assert "| dsp | environment |" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "READY_0.03h").is_file()


def test_build_is_deterministic_and_seed_dependent(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    build(_opts(a, hours=0.012))
    build(_opts(b, hours=0.012))
    build(_opts(c, hours=0.012, seed=1))
    ra, rb, rc = _manifest(a), _manifest(b), _manifest(c)
    assert ra == rb
    for r in ra:
        assert np.array_equal(sf.read(a / r["clip"])[0], sf.read(b / r["clip"])[0])
    xa, xc = sf.read(a / ra[0]["clip"])[0], sf.read(c / rc[0]["clip"])[0]
    assert not np.array_equal(xa, xc)


def test_resume_skips_done_units_and_redoes_missing_clips(tmp_path: Path) -> None:
    build(_opts(tmp_path, hours=0.012))
    first = _manifest(tmp_path)
    msgs: list[str] = []
    build(_opts(tmp_path, hours=0.012), progress=msgs.append)
    assert any("0 to render" in m for m in msgs)
    (tmp_path / first[0]["clip"]).unlink()
    msgs.clear()
    build(_opts(tmp_path, hours=0.012), progress=msgs.append)
    assert any("1 to render" in m for m in msgs)
    assert _manifest(tmp_path) == first
    # growing the target keeps what is there and adds more
    build(_opts(tmp_path, hours=0.03))
    grown = _manifest(tmp_path)
    assert len(grown) > len(first) and {r["clip"] for r in first} <= {r["clip"] for r in grown}


def test_cli_build_and_bad_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = cli_main(
        ["corpus", "build", "--out", str(out), "--sources", "dsp", "--hours", "0.006", "--jobs", "1"]
    )
    assert rc == 0 and len(_manifest(out)) >= 2
    rc = cli_main(["corpus", "build", "--out", str(out), "--sources", "ravdess_speech", "--hours", "0.01"])
    assert rc == 2 and "unknown source" in capsys.readouterr().err


def test_cli_build_short_of_target_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # one source capped far under the target: the build keeps what it made and exits 1 with one line
    out = tmp_path / "short"
    args = ["corpus", "build", "--out", str(out), "--sources", "dsp", "--jobs", "1"]
    rc = cli_main([*args, "--hours", "0.05", "--max-hours-per-source", "0.004"])
    err = capsys.readouterr().err
    assert rc == 1 and "short of --hours 0.05" in err
    assert 0 < len(_manifest(out))


def test_evaluation_only_data_never_enters() -> None:
    names = {s.name for s in all_sources(SHARED, mix=True)}
    origins = {s.origin for s in all_sources(SHARED, mix=True)}
    assert not any("ravdess" in n for n in names | origins)
    with pytest.raises(ValueError):
        select_sources(all_sources(SHARED), ["ravdess_speech"])
    with pytest.raises(ValueError):
        shared_entries(SHARED, "ravdess_speech", "speech")
    for bad in ("CC-BY-NC-SA-4.0", "CC-BY-NC-4.0", ""):
        with pytest.raises(ValueError):
            check_licence(bad, "x")
    assert check_licence("CC-BY-SA-4.0", "x") == "CC-BY-SA-4.0"


def test_shared_subset_uses_train_split_only(tmp_path: Path) -> None:
    if not (SHARED / "fsdd" / "labels.csv").is_file():
        pytest.skip("../shared not present: fsdd")
    build(_opts(tmp_path, sources=("fsdd",), hours=0.008))
    with (SHARED / "fsdd" / "labels.csv").open(encoding="utf-8") as f:
        split = {str(SHARED / "fsdd" / r["file"]): r["split"] for r in csv.DictReader(f)}
    rows = _manifest(tmp_path)
    assert rows and all(r["licence"] == "CC-BY-SA-4.0" and r["domain"] == "speech" for r in rows)
    files = [p for r in rows for p in json.loads(r["params"])["files"]]
    assert files and all(split[p] == "train" for p in files)


def test_espeak_subset(tmp_path: Path) -> None:
    reason = synth.tool_missing("espeak-ng")
    if reason:
        pytest.skip(reason)
    build(_opts(tmp_path, sources=("espeak-ng",), hours=0.005))
    rows = _manifest(tmp_path)
    assert rows and all(r["domain"] == "speech" and r["source"] == "espeak-ng" for r in rows)
    p = json.loads(rows[0]["params"])
    assert p["tool"] == "espeak-ng" and p["text"] and 80 <= p["rate"] <= 300


def test_render_notes_pitch_and_length() -> None:
    reason = fluid.fluid_missing()
    if reason:
        pytest.skip(reason)
    x = fluid.render_notes(0, [69], 100, 1.0, 16000)
    assert x.dtype == np.float32 and x.shape == (24000,)
    spec = np.abs(np.fft.rfft(x[:16000] * np.hanning(16000)))
    assert abs(np.argmax(spec) * 16000 / 16000 - 440.0) < 6.0
    quiet = fluid.render_notes(0, [69], 30, 1.0, 16000)
    assert np.sqrt(np.mean(quiet**2)) < np.sqrt(np.mean(x**2))
    drum = fluid.render_notes(0, [38], 100, 0.3, 16000, drum=True)
    assert drum.shape == (12800,) and np.abs(drum).max() > 1e-3


def test_solo_source_one_instrument_never_a_pitch_task_program() -> None:
    from models.evaluation.pitch import FULL, QUICK
    from models.training.corpus_render import render_spec
    from models.training.corpus_synth import synth_unit

    pitch_programs = {*FULL.train_programs, *FULL.test_programs, *QUICK.train_programs, *QUICK.test_programs}
    assert not pitch_programs & set(fluid.SOLO_PROGRAMS) and len(fluid.SOLO_PROGRAMS) == 104
    units = [synth_unit("fluidsynth-solo", 0, i) for i in range(len(fluid.SOLO_PROGRAMS))]
    assert sorted(u.spec["program"] for u in units) == list(fluid.SOLO_PROGRAMS)  # each program once
    styles = set()
    for i in range(12):
        events, params = fluid.solo_piece(fluid.SOLO_PROGRAMS[i], 10.0, np.random.default_rng(i))
        styles.add(params["style"])
        channels = {msg[0] & 0x0F for _, msg in events}
        programs = [msg[1] for _, msg in events if msg[0] & 0xF0 == 0xC0]
        assert channels == {0} and programs == [fluid.SOLO_PROGRAMS[i]] and params["notes"] >= 3
        notes = [msg[1] for _, msg in events if msg[0] & 0xF0 == 0x90]
        assert params["low"] <= min(notes) and max(notes) <= params["high"] + 7  # + a chord's fifth
    assert styles == set(fluid.SOLO_STYLES)
    srcs = all_sources(SHARED)
    for wanted in ((), ("synth",), ("fluidsynth+fluid-soundfont-gm",)):  # opt-in: only when named
        assert "fluidsynth-solo" not in {s.name for s in select_sources(srcs, wanted)}
    assert [s.name for s in select_sources(srcs, ("fluidsynth-solo",))] == ["fluidsynth-solo"]
    if fluid.fluid_missing():
        pytest.skip(fluid.fluid_missing() or "")
    u = units[0]
    x, p, licence = render_spec(dict(u.spec), u.source, u.uid, 0)
    x2, p2, _ = render_spec(dict(u.spec), u.source, u.uid, 0)
    assert np.array_equal(x, x2) and p == p2 and "MIT" in licence
    assert len(x) >= 40 * SR and 10 ** (-12.5 / 20) <= np.abs(x).max() <= 10 ** (-0.9 / 20)


def test_augment_and_mix() -> None:
    rng = np.random.default_rng(0)
    x = synth.dsp_signal("noise", 2.0, SR, rng)[0]
    y, p = aug.augment(x, SR, np.random.default_rng(1), p=1.0)
    y2, p2 = aug.augment(x, SR, np.random.default_rng(1), p=1.0)
    assert y.shape == x.shape and y.dtype == np.float32 and np.array_equal(y, y2) and p == p2
    assert {"eq", "reverb", "gain_db"} <= set(p) and np.abs(y).max() <= 0.99 + 1e-6
    fg = 0.1 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR).astype(np.float32)
    bg = synth.colored_noise(3 * SR, 0.0, rng) * 0.5
    mixed = aug.mix_at_snr(fg, bg, 10.0, rng)
    noise = mixed - fg
    assert aug.rms_db(fg) - aug.rms_db(noise) == pytest.approx(10.0, abs=0.1)


def test_cut_clips_pads_drops_and_skips_silence() -> None:
    x = np.concatenate([np.full(10 * SR, 0.1), np.zeros(10 * SR), np.full(4 * SR, 0.1), np.full(0, 0.1)])
    clips = cut_clips(x.astype(np.float32))
    assert [c[1] for c in clips] == [0.0, 20.0] and clips[1][2] == pytest.approx(4.0)
    assert all(len(c[0]) == 10 * SR for c in clips)
    assert cut_clips(np.full(2 * SR, 0.1, np.float32)) == []


def _write_manifest(out: Path, rows: list[dict[str, str]]) -> None:
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(MANIFEST_COLUMNS))
        w.writeheader()
        w.writerows(rows)


def test_growing_keeps_held_out_clips_and_drops_the_cache_of_clips_whose_split_changed(
    tmp_path: Path,
) -> None:
    build(_opts(tmp_path, hours=0.03))
    rows = _manifest(tmp_path)
    train = [r for r in rows if r["split"] == "train"]
    drawn_val = next(r for r in rows if r["split"] == "val")
    # the previous manifest held out a training clip (as the cover rule does) and had a drawn val clip in
    # training; both have a teacher cache, and so has an unchanged training clip
    other = [r for r in train if recording_of(r) != recording_of(train[0])]  # not the kept recording
    kept, moved, same = train[0]["clip"], drawn_val["clip"], other[0]["clip"]
    edited = [{**r, "split": {kept: "val", moved: "train"}.get(r["clip"], r["split"])} for r in rows]
    _write_manifest(tmp_path, edited)
    cache = {c: tmp_path / "teacher_segments" / (c + ".npy") for c in (kept, moved, same)}
    for p in cache.values():
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.zeros((6, 527), np.float16))
    build(_opts(tmp_path, hours=0.05))
    grown = {r["clip"]: r["split"] for r in _manifest(tmp_path)}
    assert len(grown) > len(rows)
    assert grown[kept] == "val" and grown[moved] == "val" and grown[same] == "train"
    assert cache[kept].exists() and cache[same].exists()  # split unchanged: cache kept
    assert not cache[
        moved
    ].exists()  # train → val: its cached row 5 was a max, a held-out clip needs the whole
