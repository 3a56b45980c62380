"""Issue 25, items 4, 6, 10 and 11: hostile audio headers, manifests, code streams and arguments.

Every size a file claims is checked before memory is allocated (peak RSS of the child stays under
1 GiB), every command turns every error into one line and an exit code, and results that are only
partly there say so.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.hostile import GIB, REPO, Cap, noise, one_line, run_child, run_cli, wav, wav_with_rate


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path_factory.mktemp("home")))


# ------------------------------------------------------------------------------------------ item 4
@pytest.mark.parametrize("rate", [1, 2_000_000_000])
def test_implausible_wav_rates_are_refused_in_bounded_memory(
    rate: int, tmp_path: Path, tiny_mel_pack: Path
) -> None:
    path = wav_with_rate(tmp_path / f"r{rate}.wav", rate)
    code, out, err, peak = run_child("tag", path, "--pack", tiny_mel_pack)
    assert code == 1 and out == ""  # was: hours of resampling (1 Hz) or a 74 GiB allocation (2 GHz)
    one_line(err, str(path), "implausible header", f"{rate} Hz")
    assert peak < GIB


def test_window_over_30_s_is_a_usage_error(tmp_path: Path, tiny_mel_pack: Path, capsys: Cap) -> None:
    code, _, err = run_cli(capsys, "tag", wav(tmp_path / "a.wav"), "--pack", tiny_mel_pack, "--window", "300")
    assert code == 2 and "at most 30 s" in err  # was: 2.1 GB for a 2 s file


def _edited_pack(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    edit(m)
    (dst / "manifest.json").write_text(json.dumps(m) if not isinstance(m, str) else m)
    return dst


BAD_MANIFESTS = {
    "width_50": (lambda m: m["tagger"].update(width=50), "TaggerConfig.width"),
    "width_str": (lambda m: m["tagger"].update(width="0.1"), "TaggerConfig.width"),
    "window_str": (lambda m: m["window"].update(window_s="1.0"), "WindowConfig.window_s"),
    "window_300": (lambda m: m["window"].update(window_s=300.0), "WindowConfig.window_s"),
    "layout_dict": (lambda m: m["embedding"].update(layout={"a": 1}), "embedding.layout"),
    "layout_str_size": (lambda m: m["embedding"].update(layout=[["a", "8"]]), "embedding.layout"),
    "n_mels_huge": (lambda m: m["mel"].update(n_mels=10**9), "MelConfig.n_mels"),
    "rate_bool": (lambda m: m.update(sample_rate=True), "sample_rate"),
}


@pytest.mark.parametrize("name", sorted(BAD_MANIFESTS))
def test_mistyped_or_huge_manifest_fields(
    name: str, tmp_path: Path, tiny_mel_pack: Path, capsys: Cap
) -> None:
    edit, needle = BAD_MANIFESTS[name]
    pack = _edited_pack(tiny_mel_pack, tmp_path / "p", edit)
    code, out, err = run_cli(capsys, "info", "--pack", pack)
    assert code == 2 and out == ""
    one_line(err, "manifest.json", needle)
    code, _, err = run_cli(capsys, "pack", "verify", pack)
    assert code == 1
    one_line(err, needle)


def test_codec_manifest_zero_ratio_and_nested_json(
    tmp_path: Path, tiny_codec_pack: Path, capsys: Cap
) -> None:
    zero = _edited_pack(tiny_codec_pack, tmp_path / "z", lambda m: m["codec"]["config"].update(
        upsampling_ratios=[8, 0, 4, 2]))  # fmt: skip
    code, _, err = run_cli(capsys, "info", "--pack", zero)
    assert code == 2
    one_line(err, "CodecConfig.upsampling_ratios")
    nested = tmp_path / "n"
    shutil.copytree(tiny_codec_pack, nested)
    (nested / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run_cli(capsys, "pack", "verify", nested)
    assert code == 1
    one_line(err, "manifest.json", "not valid JSON")


def test_manifest_fifo_and_width_50_in_bounded_memory(tmp_path: Path, tiny_mel_pack: Path) -> None:
    wide = _edited_pack(tiny_mel_pack, tmp_path / "wide", lambda m: m["tagger"].update(width=50))
    code, _, err, peak = run_child("pack", "verify", wide)
    assert code == 1 and peak < GIB  # was: 4.6 GB allocated before the shapes were compared
    fifo = tmp_path / "fifo"
    shutil.copytree(tiny_mel_pack, fifo)
    (fifo / "manifest.json").unlink()
    os.mkfifo(fifo / "manifest.json")
    code, _, err, _ = run_child("info", "--pack", fifo)
    assert code == 2
    one_line(err, "manifest.json", "FIFO")


# ------------------------------------------------------------------------------------------ item 10
def _stream(**change):
    from models.codec.codes import CodeStream

    base = dict(codes=np.ones((4, 75), np.int64), codec_id="c" * 64, bandwidth=3.0, frame_rate=75.0,
                sample_rate=24000, n_samples=24000)  # fmt: skip
    return CodeStream(**{**base, **change})


def test_ecodes_checksum_catches_one_flipped_byte(tmp_path: Path) -> None:
    from models.codec.codes import CodesError, load_codes, save_codes

    path = save_codes(tmp_path / "a.ecodes", _stream())
    blob = bytearray(path.read_bytes())
    blob[-7] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(CodesError, match="do not match their checksum"):
        load_codes(path)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"sample_rate": 0}, "implausible sample rate"),
        ({"frame_rate": math.nan}, "implausible frame rate"),
        ({"frame_rate": math.inf}, "implausible frame rate"),
        ({"codes": np.zeros((4, 0), np.int64), "n_samples": 0}, "empty code stream"),
    ],
)
def test_ecodes_with_impossible_numbers(change: dict, needle: str, tmp_path: Path) -> None:
    from models.codec.codes import CodesError, load_codes, save_codes

    path = save_codes(tmp_path / "a.ecodes", _stream(**change))
    with pytest.raises(CodesError, match=needle) as err:
        load_codes(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_ecodes_with_fewer_codebooks_is_refused(tmp_path: Path, tiny_codec_pack: Path, capsys: Cap) -> None:
    from models.codec.codes import load_codes, save_codes

    good = tmp_path / "good.ecodes"
    assert (
        run_cli(capsys, "encode", wav(tmp_path / "a.wav", sr=24000), "--pack", tiny_codec_pack, "-o", good)[0]
        == 0
    )
    s = load_codes(good)
    few = save_codes(tmp_path / "few.ecodes", _stream(codes=s.codes[:1], codec_id=s.codec_id,
                     bandwidth=s.bandwidth, frame_rate=s.frame_rate, n_samples=s.n_samples))  # fmt: skip
    code, out, err = run_cli(capsys, "tag", good, few, "--pack", tiny_codec_pack)
    assert code == 1 and f"{good}  (" in out
    one_line(err, str(few), "1 codebooks, but this codec uses")


# ------------------------------------------------------------------------------------------ item 6
def test_encode_onto_an_existing_file_with_several_inputs(
    tmp_path: Path, tiny_codec_pack: Path, capsys: Cap
) -> None:
    a, b = wav(tmp_path / "a.wav"), wav(tmp_path / "b.wav")
    (tmp_path / "out").write_text("keep me")
    code, _, err = run_cli(capsys, "encode", a, b, "--pack", tiny_codec_pack, "--out", tmp_path / "out")
    assert code == 2
    one_line(err, "is a file, not a folder")
    assert (tmp_path / "out").read_text() == "keep me"


def test_full_disk_blames_the_output(
    tmp_path: Path, tiny_codec_pack: Path, capsys: Cap, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.safeio
    from app.paths import heads_dir
    from models.heads.head_store import HeadStore
    from tests.test_hostile_heads import small_head

    HeadStore(heads_dir()).save(small_head("h"), examples=None)
    audio = wav(tmp_path / "in.wav")

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(models.safeio, "_write_all", full)  # the disk fills while the file is written
    code, _, err = run_cli(capsys, "encode", audio, "--pack", tiny_codec_pack, "-o", tmp_path / "o.ecodes")
    assert code == 1  # was: blamed on the input ("in.wav: failed …")
    one_line(err, "o.ecodes: cannot write (No space left on device)")
    code, _, err = run_cli(capsys, "head", "export", "h", tmp_path / "h.safetensors")
    assert code == 1
    one_line(err, "No space left on device")
    assert not list(tmp_path.glob(".*.tmp"))


def test_closed_stdout_is_one_line_not_a_traceback(tmp_path: Path, tiny_mel_pack: Path) -> None:
    files = [wav(tmp_path / f"{i}.wav", seconds=3.0) for i in range(3)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "app", "tag", *map(str, files), "--pack", str(tiny_mel_pack)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `encotag tag … | head -0`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    one_line(err, "broken pipe")


# ------------------------------------------------------------------------------------------ item 11
def test_truncated_ogg_and_mp3_are_tagged_but_warned(
    tmp_path: Path, tiny_mel_pack: Path, capsys: Cap
) -> None:
    for ext, kw in (("ogg", {"format": "OGG", "subtype": "VORBIS"}), ("mp3", {"format": "MP3"})):
        full = tmp_path / f"full.{ext}"
        sf.write(full, noise(48000, 4.0), 48000, **kw)
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.9)])
        code, out, err = run_cli(capsys, "tag", full, cut, "--pack", tiny_mel_pack, "-f", "json")
        assert code == 1  # was 0, with no word about the missing second
        one_line(err, str(cut), "warning: truncated")
        assert out.count("==>") == 2


def test_a_fifo_is_not_called_an_empty_file(tmp_path: Path, tiny_mel_pack: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    code, _, err, _ = run_child("tag", fifo, "--pack", tiny_mel_pack)
    assert code == 1
    one_line(err, str(fifo), "is a FIFO (named pipe), not a regular file")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["tag", "X", "--min-duration", "nan"], "must be a number ≥ 0"),
        (["tag", "X", "--threads", "100000"], "at most 256"),
        (["head", "train", "--out", "h", "--class", "a=X", "--false-alarm-rate", "5"], "must be in (0, 1)"),
    ],
)
def test_bad_numbers_are_usage_errors_before_any_work(argv: list[str], needle: str, capsys: Cap) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and needle in err
