"""Combined, resumable output of ``encotag tag``/``embed`` (models/batch, app/commands/batch_cli.py):
round trips through Parquet/CSV/JSON, resume after a killed run, worker processes, ``-o`` semantics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main
from app.export import parse_events
from models.batch import tables
from models.batch.journal import Journal, journal_path
from models.batch.runner import BatchSpec, run_batch
from models.batch.work import TagOptions, tag_record
from models.config import WindowConfig
from models.tagging.engine import Engine

REPO = Path(__file__).resolve().parent.parent
Cap = pytest.CaptureFixture[str]


def make_clips(folder: Path, n: int, seconds: float = 1.5, sr: int = 16000) -> list[Path]:
    """``n`` short tone-and-noise clips of different pitch (a few with a second tone)."""
    rng = np.random.default_rng(n)
    t = np.arange(int(sr * seconds)) / sr
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        x = 0.4 * np.sin(2 * np.pi * (150 + 90 * i) * t) + 0.05 * rng.standard_normal(len(t))
        if i % 3 == 0:
            x[len(t) // 2 :] += 0.3 * np.sin(2 * np.pi * 2500 * t[len(t) // 2 :])
        p = folder / f"clip{i:03d}.wav"
        sf.write(p, x.astype(np.float32), sr)
        paths.append(p)
    return paths


def run_cli(capsys: Cap, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def reference(pack: Path, files: list[Path], opts: TagOptions | None = None) -> dict[str, dict]:
    """Each file tagged on its own, in this process (what every combined output must hold)."""
    engine = Engine.load(pack)
    opts = opts or TagOptions()
    return {str(f): tag_record(engine, f, engine.window, None, opts) for f in files}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_combined_output_round_trips(fmt: str, tiny_mel_pack: Path, tmp_path: Path, capsys: Cap) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="pyarrow is in the test extra: pip install -e '.[test]'")
    files = make_clips(tmp_path / "in", 5)
    bad = tmp_path / "in" / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEjunk" + bytes(64))
    out = tmp_path / f"results.{fmt}"
    code, stdout, err = run_cli(capsys, "tag", tmp_path / "in", "--pack", tiny_mel_pack, "-o", out,
                                "--threshold", "0.2", "--workers", "1")  # fmt: skip
    assert code == 1 and stdout == ""  # the bad file fails, the others are written
    assert "bad.wav" in err and "5 ok, 1 failed, 0 warnings, 0 already done (of 6)" in err
    assert "5/6 files" not in err and "6/6 files" in err  # overall progress, though stderr is no terminal
    ref = reference(tiny_mel_pack, files, TagOptions(threshold=0.2))
    rows = tables.read_table(out, fmt)
    assert [r["file"] for r in rows] == [str(p) for p in sorted([*files, bad])]
    by_file = {r["file"]: r for r in rows}
    assert by_file[str(bad)]["status"] == "failed" and "bad.wav" in by_file[str(bad)]["error"]
    for f, want in ref.items():
        got = by_file[f]
        assert got["status"] == "ok" and got["top_labels"] == want["top_labels"]
        assert np.allclose(got["top_scores"], want["top_scores"], atol=1e-6)
        assert got["top_trusted"] == want["top_trusted"] and got["pack_id"] == want["pack_id"]
        assert got["duration"] == pytest.approx(1.5) and got["n_events"] == len(want["events"])
        st = os.stat(f)
        assert (got["size"], got["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    events = tables.read_table(tables.events_path(out), fmt)
    want_events = [[f, *ev] for f, r in ref.items() for ev in r["events"]]
    assert len(want_events) > 0
    got_events = [[e["file"], e["start"], e["end"], e["label"], e["score"], e["trusted"]] for e in events]
    assert [e[0::3] for e in got_events] == [e[0::3] for e in want_events]  # file, label
    assert np.allclose(
        [e[1:3] + [e[4]] for e in got_events], [e[1:3] + [e[4]] for e in want_events], atol=1e-6
    )
    if fmt != "parquet":  # the events table is an events file too
        assert len(parse_events(tables.events_path(out).read_text(encoding="utf-8"), fmt)) == len(events)


def test_rerun_skips_done_files_and_redoes_changed_ones(
    tiny_mel_pack: Path, tmp_path: Path, capsys: Cap
) -> None:
    files = make_clips(tmp_path / "in", 4)
    out = tmp_path / "r.csv"
    args = ("tag", tmp_path / "in", "--pack", tiny_mel_pack, "-o", out, "--workers", "1")
    assert run_cli(capsys, *args)[0] == 0
    first = tables.read_table(out, "csv")
    code, _, err = run_cli(capsys, *args)
    assert code == 0 and "0 ok, 0 failed, 0 warnings, 4 already done (of 4)" in err
    assert tables.read_table(out, "csv") == first
    make_clips(tmp_path / "other", 1)[0].replace(files[2])  # another sound, size equal: new mtime
    os.utime(files[2], ns=(time.time_ns(), time.time_ns() + 10**9))
    code, _, err = run_cli(capsys, *args)
    assert code == 0 and "1 ok, 0 failed, 0 warnings, 3 already done (of 4)" in err
    rows = tables.read_table(out, "csv")
    assert [r["file"] for r in rows] == [str(f) for f in files]  # nothing duplicated
    assert rows[2]["mtime_ns"] == os.stat(files[2]).st_mtime_ns and rows[2] != first[2]
    assert rows[:2] == first[:2] and rows[3] == first[3]


def test_journal_of_other_settings_is_refused(tiny_mel_pack: Path, tmp_path: Path, capsys: Cap) -> None:
    make_clips(tmp_path / "in", 2)
    out = tmp_path / "r.json"
    base = ("tag", tmp_path / "in", "--pack", tiny_mel_pack, "-o", out, "--workers", "1")
    assert run_cli(capsys, *base)[0] == 0
    code, _, err = run_cli(capsys, *base, "--threshold", "0.5")
    assert code == 2 and "--restart" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, *base, "--threshold", "0.5", "--restart")
    assert code == 0 and "2 ok" in err


def test_resume_after_a_killed_run(tiny_mel_pack: Path, tmp_path: Path, capsys: Cap) -> None:
    """Kill -9 a run half way: the next run does only the files the first did not finish, and the
    output holds every file once, equal to a run that was never killed."""
    files = make_clips(tmp_path / "in", 40, seconds=2.0)
    out = tmp_path / "r.csv"
    argv = ["tag", str(tmp_path / "in"), "--pack", str(tiny_mel_pack), "-o", str(out), "--workers", "1", "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = "import sys; from app.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", code, *argv]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = journal_path(out)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 6:  # header + 5 files
            break
        time.sleep(0.05)
    assert proc.poll() is None, (
        f"the run ended before it was killed: {proc.stderr.read() if proc.stderr else ''}"
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert not out.exists()  # killed before the tables were written
    done_before = sum(1 for line in journal.read_bytes().split(b"\n")[1:] if line.endswith(b"}"))
    assert 5 <= done_before < 40
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert f"{40 - done_before} ok, 0 failed, 0 warnings, {done_before} already done (of 40)" in err
    lines = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()[1:]]
    assert sorted(r["file"] for r in lines) == [str(f) for f in files]  # each file done exactly once
    rows = tables.read_table(out, "csv")
    ref = reference(tiny_mel_pack, files)
    assert [r["file"] for r in rows] == [str(f) for f in files]
    for r in rows:
        assert r["top_labels"] == ref[r["file"]]["top_labels"]
        assert np.allclose(r["top_scores"], ref[r["file"]]["top_scores"], atol=1e-6)


def test_worker_processes_give_the_same_records(tiny_codec_pack: Path, tmp_path: Path) -> None:
    files = make_clips(tmp_path / "in", 6, seconds=2.5)
    engine = Engine.load(tiny_codec_pack)
    spec = BatchSpec("tag", str(tiny_codec_pack), 1.0, 0.5, TagOptions(threshold=0.45))
    seen: list[int] = []
    with Journal(tmp_path / "a.csv", "tag", {}) as ja:
        counts = run_batch(spec, files, ja, workers=2, on_record=lambda r, c: seen.append(c.done))
    assert counts.ok == 6 and seen == [1, 2, 3, 4, 5, 6] and counts.audio_s == pytest.approx(15.0)
    ref = {
        str(f): tag_record(engine, f, WindowConfig(1.0, 0.5), None, TagOptions(threshold=0.45)) for f in files
    }
    for rec in ja.records.values():
        want = ref[rec["file"]]
        assert rec["top_labels"] == want["top_labels"]
        assert np.allclose(rec["top_scores"], want["top_scores"], atol=1e-5)
        assert [e[2] for e in rec["events"]] == [e[2] for e in want["events"]]
        assert np.allclose([e[:2] for e in rec["events"]], [e[:2] for e in want["events"]])


def test_out_semantics_and_parquet_fallback(
    tiny_mel_pack: Path, tmp_path: Path, capsys: Cap, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_clips(tmp_path / "in", 2)
    base = ("tag", tmp_path / "in", "--pack", tiny_mel_pack, "--workers", "1")
    code, _, err = run_cli(capsys, *base, "-f", "srt", "-o", tmp_path / "x.srt")
    assert code == 2 and "-o DIR/" in err and not (tmp_path / "x.srt").exists()
    code, _, _ = run_cli(capsys, *base, "-f", "raven", "-o", f"{tmp_path / 'per-file'}/")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "per-file").iterdir()) == [
        "clip000.selections.txt", "clip001.selections.txt"]  # fmt: skip
    code, _, _ = run_cli(capsys, *base, "-o", tmp_path / "noext")
    assert code == 0 and (tmp_path / ("noext.parquet" if tables.have_pyarrow() else "noext.csv")).is_file()
    monkeypatch.setattr(tables, "have_pyarrow", lambda: False)  # as in the desktop bundle
    code, _, err = run_cli(capsys, *base, "-o", tmp_path / "r.parquet", "-q")
    assert code == 0 and "Parquet needs pyarrow" in err and "writing CSV instead" in err
    assert (tmp_path / "r.csv").is_file() and (tmp_path / "r.events.csv").is_file()
    assert not (tmp_path / "r.parquet").exists()
    assert "files (0 already done)" not in err  # -q: no progress lines
    code, _, err = run_cli(
        capsys, "embed", tmp_path / "in", "--pack", tiny_mel_pack, "-o", tmp_path / "e.parquet"
    )
    assert code == 0 and "writing .npz instead" in err and (tmp_path / "e.npz").is_file()


def test_embed_resumes_and_round_trips(tiny_mel_pack: Path, tmp_path: Path, capsys: Cap) -> None:
    pytest.importorskip("pyarrow", reason="pyarrow is in the test extra: pip install -e '.[test]'")
    import pyarrow.parquet as pq

    files = make_clips(tmp_path / "in", 3, seconds=2.0)
    out = tmp_path / "e.parquet"
    base = ("embed", files[0], files[1], "--pack", tiny_mel_pack, "-o", out, "--workers", "1")
    assert run_cli(capsys, *base)[0] == 0
    code, _, err = run_cli(capsys, "embed", *files, *base[3:])
    assert code == 0 and "1 ok, 0 failed, 0 warnings, 2 already done (of 3)" in err
    table = pq.read_table(out).to_pylist()
    engine = Engine.load(tiny_mel_pack)
    from models.batch.work import embed_record

    for f in files:
        want = embed_record(engine, f, engine.window)
        got = [r for r in table if r["file"] == str(f)]
        assert [r["kind"] for r in got] == ["window"] * len(want["times"]) + ["scene"]
        assert np.allclose([r["embedding"] for r in got[:-1]], want["embedding"], atol=1e-5)
        assert np.allclose([[r["start"], r["end"]] for r in got[:-1]], want["times"])


def test_bundle_leaves_out_pyarrow_and_ray() -> None:
    """The bundle is at 590 of 600 MB: Parquet and Ray stay optional extras (the bundle writes CSV)."""
    import re

    spec = (REPO / "build.spec").read_text(encoding="utf-8")
    block = re.search(r"^excludes = \[(.*?)^\]", spec, re.S | re.M)
    assert block is not None
    names = set(re.findall(r'"([^"]+)"', block.group(1)))
    assert {"pyarrow", "ray"} <= names


def test_bench_batch_throughput_rows(tiny_mel_pack: Path, tmp_path: Path, capsys: Cap) -> None:
    argv = ["bench", "--batch", "--pack", tiny_mel_pack, "--batch-short", "6", "0.5", "--batch-long", "1",
            "3", "--batch-baseline", "4", "--workers", "1", "--workdir", tmp_path, "--json",
            tmp_path / "t.json"]  # fmt: skip
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    rows = json.loads((tmp_path / "t.json").read_text())
    single = "single process (today), 2 thread(s)"  # bench's default --threads
    assert [(r["workload"], r["path"], r["files"]) for r in rows] == [
        ("6 × 0.5 s", single, 4), ("6 × 0.5 s", "batch, 1 worker(s)", 6),
        ("1 × 3 s", single, 1), ("1 × 3 s", "batch, 1 worker(s)", 1)]  # fmt: skip
    assert rows[1]["audio_h"] == pytest.approx(6 * 0.5 / 3600) and all(r["files_per_s"] > 0 for r in rows)
    assert "single process (today)" in out and "audio-h/h" in out
