"""Issue 25, items 1 and 8 (and the mode of item 11): where output goes and what file names do.

Output targets: a symlink is followed (the link stays a link, its target gets the content), a character
device or a FIFO with a reader is written directly and never replaced, a FIFO without a reader or a
folder is refused with one line; regular files are replaced atomically with the user's umask mode; temp
names fit NAME_MAX for 246-character stems. File names that are not UTF-8, or hold newlines and terminal
escapes, are read fine and printed escaped on one line.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.hostile import Cap, noise, one_line, run_child, run_cli, wav


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path_factory.mktemp("home")))


def _char_device(path: Path) -> Path:
    """A character device node equal to /dev/null (needs CAP_MKNOD, as root in CI)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot create a device node here (not root)")
    return path


def _commands(kind: str, audio: Path, out: Path, mel: Path, codec: Path) -> list[object]:
    return {
        "tag": ["tag", audio, "--pack", mel, "-f", "csv", "-o", out],
        "embed": ["embed", audio, "--pack", mel, "-o", out],
        "encode": ["encode", audio, "--pack", codec, "-o", out],
    }[kind]


SUFFIX = {"tag": ".csv", "embed": ".npz", "encode": ".ecodes"}


@pytest.mark.parametrize("kind", ["tag", "embed", "encode"])
def test_output_symlink_is_followed_not_replaced(
    kind: str, tmp_path: Path, tiny_mel_pack: Path, tiny_codec_pack: Path, capsys: Cap
) -> None:
    audio = wav(tmp_path / "a.wav")
    real = tmp_path / "store" / f"real{SUFFIX[kind]}"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / f"link{SUFFIX[kind]}"
    link.symlink_to(real)
    code, _, err = run_cli(capsys, *_commands(kind, audio, link, tiny_mel_pack, tiny_codec_pack))
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)  # the link itself is untouched
    assert real.read_bytes() != b"old" and real.stat().st_size > 10
    assert not [p for p in real.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("kind", ["tag", "embed", "encode"])
def test_output_device_is_written_not_replaced(
    kind: str, tmp_path: Path, tiny_mel_pack: Path, tiny_codec_pack: Path, capsys: Cap
) -> None:
    dev = _char_device(tmp_path / f"null{SUFFIX[kind]}")
    audio = wav(tmp_path / "a.wav")
    code, _, err = run_cli(capsys, *_commands(kind, audio, dev, tiny_mel_pack, tiny_codec_pack))
    assert code == 0, err
    assert stat.S_ISCHR(os.lstat(dev).st_mode)  # still the device, not a regular file
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_head_export_to_a_device_and_a_symlink(tmp_path: Path, capsys: Cap) -> None:
    from app.paths import heads_dir
    from models.heads.head_store import HeadStore
    from tests.test_hostile_heads import small_head

    HeadStore(heads_dir()).save(small_head("h"), "h", examples=None)
    dev = _char_device(tmp_path / "dev.safetensors")
    code, _, err = run_cli(capsys, "head", "export", "h", dev)
    assert code == 0, err
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    real = tmp_path / "real.safetensors"
    real.write_bytes(b"x")
    (tmp_path / "ln.safetensors").symlink_to(real)
    assert run_cli(capsys, "head", "export", "h", tmp_path / "ln.safetensors")[0] == 0
    assert (tmp_path / "ln.safetensors").is_symlink() and real.stat().st_size > 100


def test_fifo_target_with_and_without_a_reader(tmp_path: Path, tiny_mel_pack: Path, capsys: Cap) -> None:
    audio = wav(tmp_path / "a.wav")
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    # no reader: refused at once with one line (a blocking open would hang forever)
    code, _, err, _ = run_child("tag", audio, "--pack", tiny_mel_pack, "-f", "csv", "-o", fifo)
    assert code == 1
    one_line(err, str(fifo), "cannot write", "FIFO has no reader")
    # a reader: the CSV goes through the pipe and the FIFO stays a FIFO
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        code, _, err = run_cli(capsys, "tag", audio, "--pack", tiny_mel_pack, "-f", "csv", "-o", fifo)
        assert code == 0, err
        assert os.read(r, 1 << 16).startswith(b"label,start,end,score")
    finally:
        os.close(r)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_folder_and_symlink_loop_targets_are_refused(
    tmp_path: Path, tiny_mel_pack: Path, capsys: Cap
) -> None:
    audio = wav(tmp_path / "a.wav")
    loop = tmp_path / "loop.npz"
    loop.symlink_to(loop)
    code, _, err = run_cli(capsys, "embed", audio, "--pack", tiny_mel_pack, "-o", loop)
    assert code == 1
    one_line(err, str(loop), "cannot write")
    assert loop.is_symlink()


def test_outputs_get_the_umask_mode_and_keep_an_existing_mode(
    tmp_path: Path, tiny_mel_pack: Path, capsys: Cap
) -> None:
    audio = wav(tmp_path / "a.wav")
    old = os.umask(0o022)
    try:
        assert run_cli(capsys, "tag", audio, "--pack", tiny_mel_pack, "-o", tmp_path / "new.txt")[0] == 0
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644  # was 0600 (mkstemp)
        os.umask(0o027)
        assert run_cli(capsys, "embed", audio, "--pack", tiny_mel_pack, "-o", tmp_path / "e.npz")[0] == 0
        assert stat.S_IMODE((tmp_path / "e.npz").stat().st_mode) == 0o640
        (tmp_path / "new.txt").chmod(0o604)  # replacing a file keeps the mode it had
        assert run_cli(capsys, "tag", audio, "--pack", tiny_mel_pack, "-o", tmp_path / "new.txt")[0] == 0
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o604
    finally:
        os.umask(old)


def test_246_character_stem(tmp_path: Path, tiny_mel_pack: Path, tiny_codec_pack: Path, capsys: Cap) -> None:
    stem = "s" * 246
    audio = wav(tmp_path / f"{stem}.wav")  # 250 bytes: fits NAME_MAX (255), ".<name>.<rand>.tmp" did not
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run_cli(capsys, "tag", audio, audio.with_name("x.wav"), "--pack", tiny_mel_pack,
                           "-f", "srt", "-o", out)  # fmt: skip
    assert code == 1 and "x.wav: no such file" in err  # the missing second file only
    assert (out / f"{stem}.srt").is_file()
    code, _, err = run_cli(capsys, "encode", audio, "--pack", tiny_codec_pack, "-o", out / f"{stem}.ecodes")
    assert code == 0, err
    assert (out / f"{stem}.ecodes").is_file()


def test_non_utf8_file_name_is_read_and_printed_escaped(tmp_path: Path, tiny_mel_pack: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9 \xff.flac"
    sf.write(tmp_path / "plain.flac", noise(16000, 1.5), 16000)
    os.rename(tmp_path / "plain.flac", raw)
    code, out, err, _ = run_child("tag", os.fsdecode(raw), "--pack", tiny_mel_pack)
    assert code == 0, err  # was "not an audio file or unsupported format"
    assert "caf\\xe9 \\xff.flac  (1.50 s" in out


def test_newlines_and_escapes_in_names_are_printed_escaped(tmp_path: Path, tiny_mel_pack: Path) -> None:
    bad = tmp_path / "evil\n\x1b[31mred\x07.wav"
    bad.write_bytes(os.urandom(4000))
    good = tmp_path / "ok\x1b]0;title\x07.wav"
    wav(good)
    code, out, err, _ = run_child("tag", bad, good, "--pack", tiny_mel_pack)
    assert code == 1
    line = one_line(err, "evil\\n\\x1b[31mred\\x07.wav", "not an audio file")
    assert line.startswith("encotag: ")
    assert "\x1b" not in out and "\x07" not in out and "ok\\x1b]0;title\\x07.wav  (" in out


def test_pack_names_with_escapes_are_printed_escaped(
    tmp_path: Path, tiny_mel_pack: Path, capsys: Cap
) -> None:
    import json
    import shutil

    pack = tmp_path / "pack"
    shutil.copytree(tiny_mel_pack, pack)
    m = json.loads((pack / "manifest.json").read_text())
    m["name"] = "evil\x1b[2J\nname"
    m["provenance"] = {"note\x1b[1m": "x\ry"}
    (pack / "manifest.json").write_text(json.dumps(m))
    code, out, err = run_cli(capsys, "info", "--pack", pack)
    assert code == 0, err
    assert "\x1b" not in out and "\r" not in out and "evil\\x1b[2J\\nname" in out
    code, out, _ = run_cli(capsys, "pack", "verify", pack)
    assert code == 0 and "\x1b" not in out and out.count("\n") == 1


def test_write_helper_refuses_block_devices_and_reports_errno(tmp_path: Path) -> None:
    from models.safeio import UnsafeTargetError, atomic_write_bytes

    with pytest.raises(UnsafeTargetError) as err:
        atomic_write_bytes(tmp_path, b"x")
    assert err.value.errno == errno.EISDIR
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"abc")
    atomic_write_bytes(target, np.arange(3, dtype=np.uint8).tobytes())
    assert target.read_bytes() == b"\x00\x01\x02"
