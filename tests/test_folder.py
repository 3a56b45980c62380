"""Folders of short files (models/tagging/folder.py): decoded ahead with a bounded queue and tagged in
groups, each file's windows and probabilities equal to ``tag_file``'s on its own, the same events, and
the combined batch (``run_batch``) giving the records of ``tag_record`` file by file."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.batch.journal import Journal
from models.batch.runner import BatchSpec, run_batch
from models.batch.work import TagOptions, file_events, file_tags, tag_record
from models.config import WindowConfig
from models.tagging.engine import Engine
from models.tagging.folder import DecodeAhead, tag_many
from models.tagging.pipeline import TagStats, tag_file

#: (seconds or samples, rate): shorter than one window, one codec hop (320 samples at 24 kHz), one window
#: hop (0.25 s), exactly one window, several windows, a long file (past the 10 s encode block)
MIXED = [(0.3, 16000), (320, 24000), (0.25, 24000), (1.0, 16000), (2.37, 44100), (4.1, 16000),
         (0.6, 24000), (11.0, 16000), (3.3, 32000)]  # fmt: skip


def write_mixed(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    paths = []
    for i, (length, sr) in enumerate(MIXED):
        n = int(length) if length >= 100 else int(round(length * sr))
        t = np.arange(n) / sr
        x = 0.5 * np.sin(2 * np.pi * (300 + 400 * i) * t) * (t < t[-1] / 2 + 0.2)
        x = x + 0.05 * rng.standard_normal(n)
        p = folder / f"m{i:02d}.wav"
        sf.write(p, x.astype(np.float32), sr)
        paths.append(p)
    broken = folder / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    paths.insert(3, broken)
    return paths


@pytest.mark.parametrize("which", ["default", "mel"])
def test_groups_give_each_files_own_windows(which: str, tiny_mel_pack: Path, tmp_path: Path) -> None:
    engine = Engine.load(None if which == "default" else tiny_mel_pack, threads=1)
    files = write_mixed(tmp_path / "in")
    items = list(tag_many(engine, files, group=5))
    assert [it.path for it in items] == files
    opts = TagOptions(threshold=0.2)
    for it in items:
        if it.path.name == "broken.wav":
            assert it.error is not None and it.results is None
            continue
        long_file = sf.info(str(it.path)).duration > 10
        assert (it.results is None) == long_file and it.error is None
        if long_file:
            continue
        ref = list(tag_file(engine, it.path))
        assert it.results is not None and len(it.results) == len(ref) >= 1
        for got, want in zip(it.results, ref, strict=True):
            assert got.start == want.start and got.end == pytest.approx(want.end, abs=1e-9)
            np.testing.assert_allclose(got.probs, want.probs, rtol=0, atol=2e-5)
            np.testing.assert_allclose(got.embedding, want.embedding, rtol=0, atol=2e-4)
        ft_got = file_tags(it.path, it.results, TagStats())
        ft_ref = file_tags(it.path, ref, TagStats())
        ev_got = file_events(ft_got, engine.labels, None, opts)
        ev_ref = file_events(ft_ref, engine.labels, None, opts)
        assert [(e.label, e.start, e.end) for e in ev_got] == [(e.label, e.start, e.end) for e in ev_ref]


def test_decoding_runs_ahead_in_a_bounded_queue(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    paths = []
    for i in range(30):
        p = folder / f"c{i:02d}.wav"
        sf.write(p, np.full(1600 + 10 * i, 0.1, np.float32), 16000)
        paths.append(p)
    opened: list[int] = []

    def lazy() -> object:  # counts how far the decoder has got
        for i, p in enumerate(paths):
            opened.append(i)
            yield p

    with DecodeAhead(lazy(), 24000, 24000 * 10, ahead=3) as ahead:  # type: ignore[arg-type]
        it = iter(ahead)
        first = next(it)
        time.sleep(0.5)  # the decoder fills the queue, then waits
        assert first.path == paths[0] and first.audio is not None
        assert len(opened) <= 1 + 3 + 1  # the one handed out, the queue, the one waiting to be put
        got = [first.path] + [x.path for x in it]
    assert got == paths and ahead.peak <= 3
    with DecodeAhead(iter(paths), 24000, 24000 * 10, ahead=2) as early:
        next(iter(early))
    assert not any(t.name == "encotag-decode" and t.is_alive() for t in threading.enumerate())


def test_combined_batch_records_equal_file_by_file(tiny_codec_pack: Path, tmp_path: Path) -> None:
    files = write_mixed(tmp_path / "in")
    engine = Engine.load(tiny_codec_pack, threads=1)
    opts = TagOptions(threshold=0.4)
    spec = BatchSpec("tag", str(tiny_codec_pack), 1.0, 0.25, opts)
    with Journal(tmp_path / "out.csv", "tag", {}) as journal:
        counts = run_batch(spec, files, journal, workers=1, engine=engine)
        recs = dict(journal.records)
    assert counts.ok == len(files) - 1 and counts.failed == 1
    for f in files:
        rec = recs[os.path.abspath(f)]
        if f.name == "broken.wav":
            assert rec["status"] == "failed" and "broken.wav" in rec["error"]
            continue
        want = tag_record(engine, f, WindowConfig(1.0, 0.25), None, opts)
        assert rec["size"] == want["size"] and rec["mtime_ns"] == want["mtime_ns"]
        assert rec["windows"] == want["windows"] and rec["duration"] == pytest.approx(want["duration"])
        assert rec["top_labels"] == want["top_labels"]
        np.testing.assert_allclose(rec["top_scores"], want["top_scores"], atol=2e-5)
        assert [e[2] for e in rec["events"]] == [e[2] for e in want["events"]]
        np.testing.assert_allclose([e[:2] for e in rec["events"]], [e[:2] for e in want["events"]])
