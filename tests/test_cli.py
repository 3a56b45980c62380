"""``encotag tag|embed|info|pack`` through ``app.cli.main`` (exit codes, outputs, teacher check)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main
from app.export import parse_events

TEACHER_CLIPS = ("speech", "music", "typing")
Cap = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Logs and heads go to a temp folder, never the real user folders."""
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    t = np.arange(int(44100 * 2.5)) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    paths = {
        "tone": folder / "tone.wav",
        "noise": folder / "sub" / "noise.flac",
        "bad": folder / "bad.wav",
    }
    paths["noise"].parent.mkdir()
    sf.write(paths["tone"], np.stack([tone, tone], axis=1), 44100)
    sf.write(paths["noise"], (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32), 16000)
    paths["bad"].write_bytes(b"RIFF....WAVEjunk" + bytes(100))
    return paths


def run_cli(capsys: Cap, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_tag_table(tiny_codec_pack: Path, clips: dict[str, Path], capsys: Cap) -> None:
    code, out, err = run_cli(capsys, "tag", clips["tone"], "--pack", tiny_codec_pack, "--top-k", "3")
    assert code == 0, err
    assert str(clips["tone"]) in out
    assert "(2.50 s, 4 windows)" in out  # 1 s windows, hop 0.5 s: starts 0, 0.5, 1.0, 1.5 (padded)
    top_lines = out.split("top 3 tags")[1].split("events")[0].strip().splitlines()[1:]
    scores = [float(line.split()[0]) for line in top_lines]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("fmt", ["csv", "json", "audacity", "srt", "vtt"])
def test_tag_formats_to_file(
    fmt: str, tiny_codec_pack: Path, clips: dict[str, Path], tmp_path: Path, capsys: Cap
) -> None:
    out_file = tmp_path / f"events.{fmt}"
    args = [
        "tag",
        clips["noise"],
        "--pack",
        tiny_codec_pack,
        "-f",
        fmt,
        "--threshold",
        "0.4",
        "--out",
        out_file,
    ]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert out == ""
    if fmt in ("csv", "json"):  # -o FILE is a combined output: the events table is beside the files table
        out_file = tmp_path / f"events.events.{fmt}"
    events = parse_events(out_file.read_text(encoding="utf-8"), fmt)
    assert all(0.0 <= e.start < e.end <= 3.0 + 1e-6 for e in events)
    if fmt in ("csv", "json"):
        assert all(e.score >= 0.4 for e in events)


def test_tag_batch_with_a_bad_file(
    tiny_codec_pack: Path, clips: dict[str, Path], tmp_path: Path, capsys: Cap
) -> None:
    folder = clips["tone"].parent
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "tag", folder, tmp_path / "nope.wav", "--pack", tiny_codec_pack,
                             "-f", "json", "--out", f"{out_dir}/")  # fmt: skip
    assert code == 1
    lines = err.strip().splitlines()
    assert any(str(clips["bad"]) in line and "not an audio file" in line for line in lines)
    assert any("nope.wav: no such file" in line for line in lines)
    assert sorted(p.name for p in out_dir.iterdir()) == ["noise.json", "tone.json"]
    assert isinstance(json.loads((out_dir / "tone.json").read_text()), list)


def test_tag_several_files_to_stdout(tiny_codec_pack: Path, clips: dict[str, Path], capsys: Cap) -> None:
    code, out, _ = run_cli(
        capsys, "tag", clips["tone"], clips["noise"], "--pack", tiny_codec_pack, "-f", "csv"
    )
    assert code == 0
    assert out.count("==> ") == 2 and out.count("label,start,end,score") == 2


def test_window_override(tiny_codec_pack: Path, clips: dict[str, Path], capsys: Cap) -> None:
    code, out, _ = run_cli(
        capsys, "tag", clips["noise"], "--pack", tiny_codec_pack, "--window", "2", "--hop", "0.5"
    )
    assert code == 0
    assert "(3.00 s, 3 windows)" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["tag"],
        ["tag", "x.wav", "--top-k", "0"],
        ["tag", "x.wav", "--format", "xml"],
        ["tag", "x.wav", "--threshold", "1.5"],
        ["tag", "x.wav", "--window", "-1"],
        ["embed", "x.wav"],
        ["pack"],
        ["nonsense-command"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: Cap) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert "usage:" in err


def test_missing_pack_exit_2(clips: dict[str, Path], tmp_path: Path, capsys: Cap) -> None:
    code, out, err = run_cli(capsys, "tag", clips["tone"], "--pack", tmp_path / "no-pack")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no-pack" in err


def test_embed_npz(tiny_codec_pack: Path, clips: dict[str, Path], tmp_path: Path, capsys: Cap) -> None:
    out_file = tmp_path / "emb.npz"
    code, out, err = run_cli(capsys, "embed", clips["tone"], clips["noise"], clips["bad"],
                             "--pack", tiny_codec_pack, "--out", out_file)  # fmt: skip
    assert code == 1 and str(clips["bad"]) in err
    with np.load(out_file, allow_pickle=False) as z:
        assert z["files"].tolist() == [str(clips["tone"]), str(clips["noise"])]
        emb, idx = z["embedding"], z["file_index"]
        assert emb.dtype == np.float32 and emb.ndim == 2
        assert idx.tolist() == [0] * 4 + [1] * 5  # 2.5 s → 4 windows, 3 s → 5 windows
        assert z["start"].tolist()[:4] == [0.0, 0.5, 1.0, 1.5]
        assert z["end"][3] == pytest.approx(2.5, abs=1e-3)
        assert np.allclose(z["scene"][1], emb[idx == 1].mean(axis=0), atol=1e-6)
        layout = json.loads(str(z["layout_json"]))
        assert sum(size for _, size in layout) == emb.shape[1]
        assert str(z["pack_id"])
    assert "2 ok, 1 failed" in err and "(9 windows" in err


def test_embed_bad_extension_and_parquet(
    tiny_codec_pack: Path, clips: dict[str, Path], tmp_path: Path, capsys: Cap
) -> None:
    code, _, err = run_cli(
        capsys, "embed", clips["tone"], "--pack", tiny_codec_pack, "--out", tmp_path / "e.txt"
    )
    assert code == 2 and ".npz or .parquet" in err
    pq_file = tmp_path / "e.parquet"
    code, _, err = run_cli(capsys, "embed", clips["tone"], "--pack", tiny_codec_pack, "--out", pq_file)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert code == 2 and "pyarrow" in err
        return
    assert code == 0
    table = pq.read_table(pq_file)
    assert table.column("kind").to_pylist() == ["window"] * 4 + ["scene"]


def test_info_and_verify(tiny_codec_pack: Path, tmp_path: Path, capsys: Cap) -> None:
    code, out, _ = run_cli(capsys, "info", "--pack", tiny_codec_pack, "--labels")
    assert code == 0
    assert "tiny codec test pack" in out and "527 (527 trusted" in out and "licence:     MIT" in out
    assert "  0  Speech" in out
    code, out, _ = run_cli(capsys, "pack", "verify", tiny_codec_pack)
    assert code == 0 and out.startswith("ok: ")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_codec_pack, broken)
    weights = broken / "tagger.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    code, out, err = run_cli(capsys, "pack", "verify", broken)
    assert code == 1 and out == "" and str(broken) in err


def test_head_option(tiny_mel_pack: Path, clips: dict[str, Path], tmp_path: Path, capsys: Cap) -> None:
    # the mel pack: the tiny random codec maps every input to the same codes, so its embeddings are constant
    from models.heads.head_file import save_head
    from models.heads.heads import train_head
    from models.tagging.engine import Engine
    from models.tagging.pipeline import tag_file

    engine = Engine.load(tiny_mel_pack)
    rows = {name: [r.embedding for r in tag_file(engine, clips[name])] for name in ("tone", "noise")}
    x = np.concatenate([np.stack(v) for v in rows.values()])
    y = np.array([0] * len(rows["tone"]) + [1] * len(rows["noise"]))
    head, _ = train_head(x, y, ["beep", "hiss"], pack_id=engine.info.pack_id,
                         layout=engine.info.embedding_layout, n_folds=2)  # fmt: skip
    head_file = save_head(head, tmp_path / "mine.safetensors")
    code, out, err = run_cli(capsys, "tag", clips["tone"], "--pack", tiny_mel_pack, "--head", head_file)
    assert code == 0, err
    assert "personal head" in out
    head_lines = out.split("personal head")[1].splitlines()[1:3]
    assert head_lines[0].split()[1] == "beep"  # the tone clip is recognised by its own head
    code, _, err = run_cli(
        capsys, "tag", clips["tone"], "--pack", tiny_mel_pack, "--head", tmp_path / "x.safetensors"
    )
    assert code == 2 and "x.safetensors" in err


def test_teacher_tags_its_sample_clips(teacher_pack: Path, shared_dir: Path, capsys: Cap) -> None:
    clip_dir = shared_dir / "teachers" / "efficientat_mn04_as"
    files = [clip_dir / f"{name}.flac" for name in TEACHER_CLIPS]
    code, out, err = run_cli(capsys, "tag", *files, "--pack", teacher_pack, "--top-k", "2")
    assert code == 0, err
    tops = []
    for block in out.split(str(clip_dir))[1:]:
        lines = block.split("top 2 tags")[1].splitlines()[1:3]
        tops.append([line.split(maxsplit=1)[1] for line in lines])
    assert tops[0][0] == "Speech"
    assert tops[1][0] == "Music"
    assert tops[2] == ["Computer keyboard", "Typing"]
