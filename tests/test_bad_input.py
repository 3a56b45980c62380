"""Bad input through ``encotag tag``: every problem is one stderr line naming the file and the reason,
nothing crashes, a batch goes on past bad files; odd-but-valid audio is handled."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main

Cap = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path_factory.mktemp("home")))


def noise(sr: float, seconds: float, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(int(sr) + channels)
    return (0.2 * rng.standard_normal((int(sr * seconds), channels))).astype(np.float32)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """name → (path, expected reason on stderr)."""
    d = tmp_path_factory.mktemp("bad")
    good = d / "good_source.flac"
    sf.write(good, noise(16000, 4.0), 16000)
    files: dict[str, tuple[Path, str]] = {}

    def add(name: str, reason: str) -> Path:
        files[name] = (d / name, reason)
        return d / name

    add("empty.wav", "empty file").write_bytes(b"")
    add("truncated.flac", "truncated or corrupt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    add("random.wav", "not an audio file or unsupported format").write_bytes(os.urandom(8192))
    sf.write(add("zero_frames.wav", "empty file (no audio samples)"), np.zeros((0, 1), np.float32), 16000)
    add("notes.xyz", "not an audio file or unsupported format").write_text("just text\n")
    add("missing.wav", "no such file")
    add("emptydir", "no audio files found").mkdir()
    good.unlink()
    return files


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Valid but unusual audio that must be tagged normally."""
    d = tmp_path_factory.mktemp("odd")
    files = {}
    for sr in (8000, 11025, 22050, 44100, 96000, 192000):
        files[f"rate_{sr}"] = d / f"rate_{sr}.wav"
        sf.write(files[f"rate_{sr}"], noise(sr, 1.2), sr)
    for ch in range(1, 9):
        files[f"ch_{ch}"] = d / f"ch_{ch}.flac"
        sf.write(files[f"ch_{ch}"], noise(48000, 1.2, ch), 48000)
    files["one_sample"] = d / "one_sample.wav"
    sf.write(files["one_sample"], np.array([[0.5]], np.float32), 44100)
    files["silence"] = d / "silence.wav"
    sf.write(files["silence"], np.zeros((32000, 1), np.float32), 16000)
    x = noise(16000, 2.0)
    x[100:200] = np.nan
    x[5000] = np.inf
    x[6000] = -np.inf
    files["nan_inf"] = d / "nan_inf.wav"
    sf.write(files["nan_inf"], x, 16000, subtype="FLOAT")
    good = noise(16000, 3.0)
    files["truncated_wav"] = d / "truncated_wav.wav"  # WAV cut mid-data: its header over-states the length
    sf.write(d / "full.wav", good, 16000)
    files["truncated_wav"].write_bytes((d / "full.wav").read_bytes()[:50000])
    files["renamed.dat"] = d / "renamed.dat"  # a real FLAC under a strange extension
    sf.write(files["renamed.dat"], good, 16000, format="FLAC")
    return files


def run_cli(capsys: Cap, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "name",
    ["empty.wav", "truncated.flac", "random.wav", "zero_frames.wav", "notes.xyz", "missing.wav", "emptydir"],
)
def test_each_bad_file_is_one_clear_line(
    name: str, bad_files: dict[str, tuple[Path, str]], tiny_codec_pack: Path, capsys: Cap
) -> None:
    path, reason = bad_files[name]
    code, out, err = run_cli(capsys, "tag", path, "--pack", tiny_codec_pack)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"encotag: {path}: ") and reason in lines[0]
    assert "Traceback" not in err


def test_batch_goes_on_past_every_bad_file(
    bad_files: dict[str, tuple[Path, str]], odd_files: dict[str, Path], tiny_codec_pack: Path, capsys: Cap
) -> None:
    bad = [p for p, _ in bad_files.values()]
    good = [odd_files["rate_44100"], odd_files["ch_2"]]
    code, out, err = run_cli(capsys, "tag", bad[0], good[0], *bad[1:], good[1], "--pack", tiny_codec_pack)
    assert code == 1
    for path, reason in bad_files.values():
        assert sum(str(path) in line and reason in line for line in err.splitlines()) == 1
    for path in good:
        assert f"{path}  (" in out


@pytest.mark.parametrize(
    "name",
    ["rate_8000", "rate_11025", "rate_22050", "rate_96000", "rate_192000", *(f"ch_{c}" for c in range(1, 9)),
     "one_sample", "silence", "nan_inf", "truncated_wav", "renamed.dat"],
)  # fmt: skip
def test_odd_but_valid_audio_is_tagged(
    name: str, odd_files: dict[str, Path], tiny_mel_pack: Path, tmp_path: Path, capsys: Cap
) -> None:
    path = odd_files[name]
    out_file = tmp_path / "emb.npz"
    code, _, err = run_cli(capsys, "embed", path, "--pack", tiny_mel_pack, "--out", out_file)
    cut = name == "truncated_wav"  # embedded and tagged as far as it decodes, but warned and counted
    assert code == (1 if cut else 0), err
    if cut:
        assert err.strip() == f"encotag: {path}: warning: truncated: only the part that decoded was embedded"
    info = sf.info(str(path))
    with np.load(out_file) as z:
        n = len(z["start"])
        assert np.isfinite(z["embedding"]).all()
        # 1 s windows every 0.5 s; the last (padded) window ends at the file's end
        expected = 1 if info.duration <= 1.0 else int(np.ceil((info.duration - 1.0) / 0.5)) + 1
        assert n == expected
        assert z["end"][-1] == pytest.approx(info.duration, abs=2e-3)
    if name == "nan_inf":
        warn = [line for line in err.splitlines() if "non-finite" in line]
        assert len(warn) == 1 and str(path) in warn[0]
    code, out, err = run_cli(capsys, "tag", path, "--pack", tiny_mel_pack, "-f", "json")
    assert code == (1 if cut else 0), err
    assert isinstance(json.loads(out), list)
    if cut:
        (line,) = err.strip().splitlines()
        assert line.startswith(f"encotag: {path}: warning: truncated") and "% of what the header" in line


def _tamper_weights(p: Path) -> None:
    w = p / "tagger.safetensors"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0x55
    w.write_bytes(bytes(data))


def _tamper_manifest_json(p: Path) -> None:
    (p / "manifest.json").write_text("{ not json", encoding="utf-8")


def _tamper_manifest_field(p: Path) -> None:
    m = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
    m["format_version"] = 99
    (p / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def _remove_weights(p: Path) -> None:
    (p / "tagger.safetensors").unlink()


@pytest.mark.parametrize(
    "tamper", [_tamper_weights, _tamper_manifest_json, _tamper_manifest_field, _remove_weights]
)
def test_tampered_pack_is_refused(
    tamper: object, odd_files: dict[str, Path], tiny_mel_pack: Path, tmp_path: Path, capsys: Cap
) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(tiny_mel_pack, pack)
    tamper(pack)  # type: ignore[operator]
    for argv in (
        ["tag", odd_files["ch_1"]],
        ["info"],
        ["embed", odd_files["ch_1"], "--out", tmp_path / "e.npz"],
    ):
        code, out, err = run_cli(capsys, *argv, "--pack", pack)
        assert code == 2, (argv, err)
        assert out == "" and len(err.strip().splitlines()) == 1 and str(pack) in err
    assert not (tmp_path / "e.npz").exists()
    code, _, err = run_cli(capsys, "pack", "verify", pack)
    assert code == 1 and str(pack) in err


def test_missing_pack(odd_files: dict[str, Path], tmp_path: Path, capsys: Cap) -> None:
    code, out, err = run_cli(capsys, "tag", odd_files["ch_1"], "--pack", tmp_path / "nowhere")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "nowhere" in err
