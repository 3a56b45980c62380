"""Changing heads through their examples: corrections, merging, review (CLI, teacher pack), and the
Qt-free helpers behind them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main
from models.heads.head_edit import add_rows, merge_sets, remove_source, source_rows, span_rows
from models.heads.head_store import ExamplePackError, ExampleSet, PackStamp

SR = 16000
PACK = PackStamp("a" * 64, "b" * 16)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    return tmp_path


def tone(freq: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_set(folder: Path, kind: str, n: int, seed: int, seconds: float = 1.5) -> Path:
    """``n`` clips: low tones (300-500 Hz), high whistles (2-3 kHz) or noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        if kind == "tone":
            x = tone(rng.uniform(300, 500), seconds)
        elif kind == "whistle":
            x = tone(rng.uniform(2000, 3000), seconds, 0.3)
        else:
            x = (rng.uniform(0.05, 0.3) * rng.normal(size=int(seconds * SR))).astype(np.float32)
        sf.write(folder / f"{kind}_{i}.wav", x, SR)
    return folder


def cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def fired_in_span(out: str, cls: str) -> tuple[int, int, int]:
    """(before, after, windows) from ``head correct``'s "'X' fired on a/n windows … before, b/n now"."""
    line = next(ln for ln in out.splitlines() if ln.strip().startswith(f"'{cls}' fired on"))
    before = line.split("fired on ")[1].split()[0]
    after = line.split("before, ")[1].split()[0]
    return int(before.split("/")[0]), int(after.split("/")[0]), int(before.split("/")[1])


def file_calls(head, engine, files) -> list[str]:
    from models.heads.head_data import embed_files

    per_file, _ = embed_files(engine, files)
    return [head.classes[int(head.predict(e).mean(axis=0).argmax())] for e in per_file]


def test_correct_a_false_detection_then_merge_heads(home, teacher_pack, capsys):
    from app.paths import heads_dir
    from models.heads.head_store import HeadStore
    from models.tagging.engine import Engine

    tones = write_set(home / "tones", "tone", 8, 0)
    noise = write_set(home / "noise", "noise", 8, 1)
    rc, out, err = cli(capsys, "head", "train", "--pack", teacher_pack, "--class", f"tone={tones}",
                       "--class", f"background={noise}", "--out", "beeper", "--keep-examples")  # fmt: skip
    assert rc == 0, err
    assert "cross-validated accuracy (by recording)" in out
    store = HeadStore(heads_dir())
    per_file = store.load_examples("beeper").counts()["tone"] // 8
    # a recording: 3 s of room noise, then 3 s of a kettle's whistle the head takes for a tone
    rng = np.random.default_rng(7)
    mixed = np.concatenate([0.1 * rng.normal(size=3 * SR).astype(np.float32), tone(2500, 3.0, 0.3)])
    sf.write(home / "kitchen.wav", mixed, SR)
    rc, out, err = cli(capsys, "head", "correct", "beeper", home / "kitchen.wav", "--span", "3.5-5.5",
                       "--pack", teacher_pack)  # fmt: skip
    assert rc == 0, err
    before, after, n = fired_in_span(out, "tone")
    print(out)
    assert n >= 3 and before >= n - 1, "the whistle should fool the head before the correction"
    assert after == 0  # the retrained head stops firing on that span
    ex = store.load_examples("beeper")
    sources = {s for c, s, _ in source_rows(ex) if c == "background"}
    assert any(s.startswith(str(home / "kitchen.wav")) and s.endswith(" s") for s in sources)
    assert ex.counts()["tone"] == 8 * per_file  # the old examples are all kept
    # … and it keeps its accuracy on other examples: fresh tones and noise, never seen
    engine = Engine.load(teacher_pack)
    head = store.load("beeper", pack_id=engine.info.pack_id, layout=engine.info.embedding_layout)
    assert head.card.cv_grouping == "recording"
    old = np.array([not s.startswith(str(home / "kitchen.wav")) for s in ex.sources])
    assert np.mean(head.predict(ex.emb[old]).argmax(axis=1) == ex.label[old]) >= 0.95
    fresh_t = sorted(write_set(home / "t2", "tone", 4, 11).glob("*.wav"))
    fresh_n = sorted(write_set(home / "n2", "noise", 4, 12).glob("*.wav"))
    assert file_calls(head, engine, fresh_t + fresh_n) == ["tone"] * 4 + ["background"] * 4

    # merge with a second head of the same pack: the union of classes, examples combined
    whistles = write_set(home / "whistles", "whistle", 6, 3)
    rc, out, err = cli(capsys, "head", "train", "--pack", teacher_pack, "--class", f"whistle={whistles}",
                       "--class", f"background={noise}", "--out", "kettle", "--keep-examples")  # fmt: skip
    assert rc == 0, err
    rc, out, err = cli(capsys, "head", "merge", "beeper", "kettle", "--out", "both")
    assert rc == 0, err
    merged = store.load("both", pack_id=engine.info.pack_id, layout=engine.info.embedding_layout)
    assert merged.classes == ("tone", "background", "whistle")
    counts = store.load_examples("both").counts()
    assert counts["whistle"] == 6 * per_file and counts["tone"] == 8 * per_file
    assert counts["background"] == ex.counts()["background"] + 8 * per_file
    calls = file_calls(
        merged, engine, fresh_t[:2] + sorted(write_set(home / "w2", "whistle", 2, 13).glob("*.wav"))
    )
    assert calls == ["tone", "tone", "whistle", "whistle"]
    rc, _, err = cli(capsys, "head", "merge", "beeper", "kettle", "--out", "both")
    assert rc == 2 and "already exists" in err
    # review: list by source, remove one, retrained
    rc, out, _ = cli(capsys, "head", "examples", "both")
    assert rc == 0 and str(whistles / "whistle_0.wav") in out
    rc, out, err = cli(
        capsys, "head", "examples", "both", "--remove", f"whistle={whistles / 'whistle_0.wav'}"
    )
    assert rc == 0, err
    assert store.load_examples("both").counts()["whistle"] == 5 * per_file


def test_example_helpers():
    rng = np.random.default_rng(0)
    a = add_rows(ExampleSet.empty(), "dog", rng.normal(size=(3, 4)), "a.wav", PACK)
    a = add_rows(a, "background", rng.normal(size=(2, 4)), ["room.wav 0.00-1.00 s"] * 2, PACK)
    b = add_rows(ExampleSet.empty(), "cat", rng.normal(size=(2, 4)), "c.wav", PACK)
    b = add_rows(b, "background", rng.normal(size=(1, 4)), "hall.wav", PACK)
    m = merge_sets(a, b)
    assert m.classes == ("dog", "background", "cat")
    assert m.counts() == {"dog": 3, "background": 3, "cat": 2} and len(m.sources) == 8
    np.testing.assert_array_equal(m.emb[:5], a.emb)
    assert source_rows(m) == [("dog", "a.wav", 3), ("background", "room.wav 0.00-1.00 s", 2),
                              ("cat", "c.wav", 2), ("background", "hall.wav", 1)]  # fmt: skip
    r = remove_source(m, "background", "room.wav 0.00-1.00 s")
    assert r.counts() == {"dog": 3, "background": 1, "cat": 2} and "room.wav 0.00-1.00 s" not in r.sources
    with pytest.raises(ValueError, match="no examples"):
        remove_source(r, "dog", "x.wav")
    other = add_rows(ExampleSet.empty(), "cat", np.zeros((1, 4)), "x", PackStamp("c" * 64, "b" * 16))
    with pytest.raises(ExamplePackError):
        merge_sets(a, other)
    np.testing.assert_array_equal(span_rows(np.arange(6) * 0.5, np.arange(6) * 0.5 + 1, 0.9, 2.1), [1, 2, 3])


def test_cli_thresholds_for_false_alarms_per_hour(home, teacher_pack, capsys):
    from app.paths import heads_dir
    from models.heads.head_cv import Calibration
    from models.heads.head_store import HeadStore
    from models.tagging.engine import Engine

    tones = write_set(home / "tones", "tone", 6, 0)
    noise = write_set(home / "noise", "noise", 6, 1, seconds=3.0)
    rc, out, err = cli(capsys, "head", "train", "--pack", teacher_pack, "--class", f"tone={tones}",
                       "--class", f"background={noise}", "--out", "quiet", "--keep-examples",
                       "--false-alarms-per-hour", "30")  # fmt: skip
    assert rc == 0, err
    hop = Engine.load(teacher_pack).window.hop_s
    head = HeadStore(heads_dir()).load("quiet")
    assert Calibration.from_text(head.card.calibration) == Calibration(per_hour=30.0, hop_s=hop)
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("tone ") and "precision" in ln)
    assert "false alarms/h" in line and "precision" in line and "recall" in line
    per_hour = float(line.split(", ")[-1].split()[0])
    assert per_hour <= 30.0
    ex = HeadStore(heads_dir()).load_examples("quiet")
    bg = ex.emb[ex.label == ex.classes.index("background")]
    fired = head.detections(head.predict(bg))[:, ex.classes.index("tone")]
    assert fired.mean() * 3600 / hop <= 30.0 + 1e-6  # on the background examples themselves too
