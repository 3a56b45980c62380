"""Personal heads end to end through ``encotag head`` (tiny pack), and the data-set figures (teacher pack)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main

SR = 16000


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    return tmp_path


def _write_examples(folder: Path, kind: str, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    t = np.arange(int(1.2 * SR)) / SR
    for i in range(n):
        if kind == "tone":
            x = 0.5 * np.sin(2 * np.pi * rng.uniform(300, 500) * t)
        else:
            x = 0.3 * rng.normal(size=len(t))
        sf.write(folder / f"{kind}_{i}.wav", x.astype(np.float32), SR)
    return folder


def test_train_list_eval_export_import(home, tiny_codec_pack, capsys):
    tones = _write_examples(home / "tones", "tone", 6, 0)
    noise = _write_examples(home / "noise", "noise", 6, 1)
    rc = main(
        [
            "head",
            "train",
            "--pack",
            str(tiny_codec_pack),
            "--class",
            f"tone={tones}",
            "--class",
            f"background={noise}",
            "--out",
            "beeper",
            "--keep-examples",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "head 'beeper' saved" in out and "cross-validated accuracy" in out
    from app.paths import heads_dir
    from models.heads.head_store import HeadStore, PackStamp
    from models.tagging.engine import Engine

    kept = HeadStore(heads_dir()).load_examples("beeper")  # the kept examples name their pack
    assert kept.pack == PackStamp.of(Engine.load(tiny_codec_pack).info)
    assert len(kept.sources) == len(kept.label) and kept.sources[0].endswith(".wav")
    assert main(["head", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("beeper\tlogreg\t2 classes (tone, background)")
    rc = main(
        [
            "head",
            "eval",
            "beeper",
            "--pack",
            str(tiny_codec_pack),
            "--class",
            f"tone={tones}",
            "--class",
            f"background={noise}",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    acc = float(out.split("accuracy of 'beeper': ")[1].split()[0])
    assert acc >= 0.9  # tones vs noise are separable even with a random tiny pack
    exported = home / "beeper_copy.safetensors"
    assert main(["head", "export", "beeper", str(exported)]) == 0
    assert main(["head", "import", str(exported), "--name", "again"]) == 0
    assert main(["head", "rename", "again", "twice"]) == 0
    assert main(["head", "delete", "twice"]) == 0
    capsys.readouterr()
    assert main(["head", "list"]) == 0
    assert "twice" not in capsys.readouterr().out


def test_bad_inputs_give_one_line_errors(home, tiny_codec_pack, tiny_mel_pack, capsys):
    tones = _write_examples(home / "tones", "tone", 3, 0)
    noise = _write_examples(home / "noise", "noise", 3, 1)
    assert main(["head", "train", "--pack", str(tiny_codec_pack), "--class", "nonsense", "--out", "x"]) == 2
    assert "expected CLASS=PATH" in capsys.readouterr().err
    assert (
        main(["head", "train", "--pack", str(tiny_codec_pack), "--class", f"a={home}/nowhere", "--out", "x"])
        == 1
    )
    err = capsys.readouterr().err
    assert "nowhere: no such file" in err and "none of the example files" in err
    (home / "tones" / "broken.wav").write_bytes(b"RIFF not really")
    rc = main(
        [
            "head",
            "train",
            "--pack",
            str(tiny_codec_pack),
            "--class",
            f"tone={tones}",
            "--class",
            f"background={noise}",
            "--out",
            "partial",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "broken.wav" in err  # named, and the rest still trained
    assert main(["head", "info", "partial"]) == 0
    # a head made for another pack is refused
    rc = main(["head", "eval", "partial", "--pack", str(tiny_mel_pack), "--class", f"tone={tones}"])
    assert rc == 1
    assert "another model pack" in capsys.readouterr().err
    assert main(["head", "info", "missing"]) == 1
    assert main(["head", "import", str(home / "tones" / "broken.wav")]) == 1


def _shared_head_accuracy(pack: Path, data: str, capsys) -> float:
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / data
    rc = main(["head", "train", "--pack", str(pack), "--labels-csv", str(folder), "--out", data])
    capsys.readouterr()
    assert rc == 0
    assert main(["head", "eval", data, "--pack", str(pack), "--labels-csv", str(folder)]) == 0
    out = capsys.readouterr().out
    return float(out.split(f"accuracy of '{data}': ")[1].split()[0])


@pytest.mark.parametrize(("data", "target"), [("fsdd", 0.90), ("speech_commands_test", 0.50)])
def test_teacher_pack_heads_on_shared_data(home, teacher_pack, capsys, data, target):
    from tests.conftest import require_shared

    require_shared("data", data, "labels.csv")
    acc = _shared_head_accuracy(teacher_pack, data, capsys)
    print(f"{data}: head accuracy {acc:.3f}")
    assert acc >= target


def test_bench_reports_head_and_probe_on_a_split(home, tiny_codec_pack, capsys):
    import csv
    import json

    data = home / "toy"
    rows = []
    t = np.arange(int(1.2 * SR)) / SR
    for kind in ("tone", "hiss"):
        (data / kind).mkdir(parents=True)
        for i in range(10):  # steady 440 Hz tones vs faint hiss: separable even by the random tiny pack
            x = (
                0.5 * np.sin(2 * np.pi * 440 * t)
                if kind == "tone"
                else 0.02 * np.random.default_rng(i).normal(size=len(t))
            )
            p = data / kind / f"{kind}_{i}.wav"
            sf.write(p, x.astype(np.float32), SR)
            rows.append({"file": f"{kind}/{p.name}", "label": kind, "split": "test" if i < 3 else "train"})
    with open(data / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "label", "split"])
        w.writeheader()
        w.writerows(rows)
    out_json = home / "bench.json"
    args = ["head", "bench", str(data), "--pack", str(tiny_codec_pack), "--cache", str(home / "cache")]
    assert main([*args, "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "toy: 2 classes, 14 train / 6 test files" in out and "within 1 point or above" in out
    (fig,) = json.loads(out_json.read_text())
    assert fig["n_train_windows"] == 14 * 2  # 1.2 s clips: one full window and a padded tail each
    assert fig["head_accuracy"] >= 0.9 and fig["probe_accuracy"] >= 0.9
    assert fig["head_vs_probe"] == fig["head_on_clip_accuracy"] - fig["probe_accuracy"]
    assert any((home / "cache").rglob("*.npz"))  # the clip embeddings went to the eval cache
    (data / "labels.csv").write_text("file,label\n")
    assert main(args) == 1
    assert "labels.csv" in capsys.readouterr().err
