"""Robustness beyond ``tests/test_bad_input.py``: clipping, unreadable files, unicode and very long
paths, an hour-long file through the CLI in bounded memory, bad files dropped on the window, input device
loss mid-stream (message + restart), interrupted saves (write failure and a real SIGKILL), tampered heads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main

Cap = pytest.CaptureFixture[str]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path_factory.mktemp("home")))


def tone(sr: int, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def run_cli(capsys: Cap, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------------ file inputs
def test_clipped_and_overdriven_audio_is_tagged(tiny_mel_pack: Path, tmp_path: Path, capsys: Cap) -> None:
    hard = tmp_path / "hard_clipped.wav"  # int16 stuck at full scale
    sf.write(hard, np.clip(tone(16000, 2.0, amp=4.0), -1, 1), 16000, subtype="PCM_16")
    over = tmp_path / "overdriven.wav"  # float samples far beyond ±1
    sf.write(over, tone(16000, 2.0, amp=50.0), 16000, subtype="FLOAT")
    code, out, err = run_cli(capsys, "tag", hard, over, "--pack", tiny_mel_pack, "-f", "json")
    assert code == 0, err
    assert out.count("==> ") == 2
    out_npz = tmp_path / "e.npz"
    code, _, err = run_cli(capsys, "embed", over, "--pack", tiny_mel_pack, "--out", out_npz)
    assert code == 0, err
    with np.load(out_npz) as z:
        assert np.isfinite(z["embedding"]).all() and len(z["start"]) == 3


def test_unreadable_file_is_named_and_batch_goes_on(
    tiny_mel_pack: Path, tmp_path: Path, capsys: Cap, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked.wav"
    good = tmp_path / "good.wav"
    for p in (locked, good):
        sf.write(p, tone(16000, 1.5), 16000)
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root (CI containers) reads anyway: simulate the denial
        import models.audio

        real_access = os.access
        monkeypatch.setattr(
            models.audio.os,
            "access",
            lambda p, mode, *a, **k: False if Path(p) == locked else real_access(p, mode, *a, **k),
        )
    try:
        code, out, err = run_cli(capsys, "tag", locked, good, "--pack", tiny_mel_pack)
    finally:
        locked.chmod(0o644)
    assert code == 1
    assert err.strip().splitlines() == [f"encotag: {locked}: permission denied"]
    assert f"{good}  (1.50 s" in out


def test_unicode_and_very_long_paths(tiny_mel_pack: Path, tmp_path: Path, capsys: Cap) -> None:
    uni = tmp_path / "Ünïcødé 音声 ファイル 🎵 (copy).wav"
    sf.write(uni, tone(16000, 1.2), 16000)
    deep = tmp_path
    while len(str(deep)) < 900:  # far past the old 260-character limit; each name < 255 bytes
        deep = deep / ("verylongfoldername_" * 6)[:110]
    deep.mkdir(parents=True)
    long_file = deep / (("long name " * 20).strip() + ".flac")
    sf.write(tmp_path / "staging.flac", tone(16000, 1.2), 16000)
    os.replace(tmp_path / "staging.flac", long_file)
    assert len(str(long_file)) > 1030  # past libsndfile's own 1024-byte path limit
    out_dir = tmp_path / "out ✓"
    out_dir.mkdir()
    code, out, err = run_cli(
        capsys, "tag", uni, long_file, "--pack", tiny_mel_pack, "-f", "csv", "--out", out_dir
    )
    assert code == 0, err
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == sorted([uni.stem + ".csv", long_file.stem + ".csv"])
    code, out, err = run_cli(capsys, "tag", uni, "--pack", tiny_mel_pack)
    assert code == 0 and f"{uni}  (1.20 s" in out
    missing = deep / "nope ✗.wav"
    code, out, err = run_cli(capsys, "tag", missing, "--pack", tiny_mel_pack)
    assert code == 1 and err.strip() == f"encotag: {missing}: no such file"


def _peak_rss_of_cli(argv: list[str]) -> tuple[int, float, str]:
    """Run ``encotag`` in a fresh interpreter; exit code, its own peak RSS (MB, VmHWM) and stderr."""
    code = textwrap.dedent(
        f"""
        import sys
        from app.cli import main
        rc = main({argv!r})
        hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
        print("VMHWM_KB", hwm, file=sys.stderr)
        sys.exit(rc)
        """
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    kb = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("VMHWM_KB")]
    return proc.returncode, int(kb[0]) / 1024 if kb else float("nan"), proc.stderr


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux) for peak RSS")
def test_hour_long_file_streams_in_bounded_memory(tiny_mel_pack: Path, tmp_path: Path) -> None:
    sr = 8000
    long_path = tmp_path / "hour.wav"
    block = tone(sr, 60.0, amp=0.2)
    with sf.SoundFile(long_path, "w", sr, 1, subtype="PCM_16") as fh:
        for _ in range(60):
            fh.write(block)
    short_path = tmp_path / "short.wav"  # two minutes: full batches of windows, like the hour
    sf.write(short_path, np.concatenate([block, block]), sr, subtype="PCM_16")
    args = ["--pack", str(tiny_mel_pack), "--window", "2", "--hop", "1", "-f", "csv"]  # 3600 windows
    rc_s, rss_short, err_s = _peak_rss_of_cli(["tag", str(short_path), *args])
    rc_l, rss_long, err_l = _peak_rss_of_cli(["tag", str(long_path), *args])
    assert rc_s == 0 and rc_l == 0, err_s + err_l
    whole_file_mb = 3600 * 32000 * 4 / 2**20  # the hour at the engine rate, float32: 440 MB
    assert rss_long - rss_short < 0.25 * whole_file_mb, (rss_short, rss_long)


# ------------------------------------------------------------------------------------------ live input
def test_device_loss_mid_stream_then_restart(tiny_mel_pack: Path) -> None:
    from app.audio_input import SyntheticSource
    from models.config import WindowConfig
    from models.tagging.engine import Engine
    from models.tagging.pipeline import StreamTagger

    engine = Engine.load(tiny_mel_pack)
    st = StreamTagger(engine, WindowConfig(0.5, 0.25), input_sr=16000)
    errors: list[str] = []
    lost = SyntheticSource(tone(16000, 5.0), 16000, 400, speed=0, fail_after_s=1.5)
    lost.start(st.push, errors.append)
    assert lost.wait(10)
    assert errors == ["synthetic: device lost (simulated)"]
    assert st.stream_time == pytest.approx(1.5)
    assert st.process_latest() is not None  # what arrived before the loss is still tagged
    # restart path: forget the old stream, start a new source on the same tagger
    st.reset()
    assert st.stream_time == 0 and st.process_latest() is None
    fresh = SyntheticSource(tone(16000, 1.0), 16000, 400, speed=0, name="second device")
    fresh.start(st.push, errors.append)
    assert fresh.wait(10) and len(errors) == 1
    result = st.process_latest()
    assert result is not None and result.end == pytest.approx(1.0, abs=0.05)  # resampler delay
    assert np.isfinite(result.probs).all()


# ------------------------------------------------------------------------------------------ GUI
@pytest.fixture
def gui_window(qtbot, tiny_mel_pack: Path):  # noqa: ANN001 - pytest-qt fixture
    pytest.importorskip("pytestqt")
    from app.gui.errors import ErrorNotifier
    from app.gui.main_window import MainWindow
    from app.settings import Settings

    class Recorder(ErrorNotifier):
        def __init__(self) -> None:
            super().__init__()
            self.messages: list[str] = []

        def report(self, summary: str, details: str = "") -> None:
            self.messages.append(summary)

    made: list = []

    def factory():  # noqa: ANN202 - first source dies after 1 s, later ones are healthy
        from app.audio_input import SyntheticSource

        fail = 1.0 if not made else None
        made.append(SyntheticSource(tone(16000, 3.0), 16000, 512, speed=4.0, loop=True, fail_after_s=fail))
        return made[-1]

    notifier = Recorder()
    win = MainWindow(
        Settings(window_s=1.0, hop_s=0.5),
        pack_path=str(tiny_mel_pack),
        source_factory=factory,
        notifier=notifier,
    )
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.pack_info is not None, timeout=60000)
    yield win, notifier
    win.shutdown()


def test_gui_bad_files_are_reported_and_good_ones_tagged(qtbot, gui_window, tmp_path: Path) -> None:  # noqa: ANN001
    win, _ = gui_window
    bad = {
        "empty.wav": b"",
        "random.flac": os.urandom(4096),
        "truncated.wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1), np.float32), 16000)
    good = tmp_path / "good ✓.wav"
    sf.write(good, tone(16000, 2.0), 16000)
    paths = [tmp_path / n for n in bad] + [tmp_path / "zero.wav", tmp_path / "missing.wav", good]
    win.open_paths([str(p) for p in paths])
    qtbot.waitUntil(
        lambda: all(
            v.status in ("done", "cancelled") or v.status.startswith("error") for v in win.files.values()
        ),
        timeout=60000,
    )
    views = {v.path.name: v for v in win.files.values()}
    for name in [*bad, "zero.wav", "missing.wav"]:
        assert views[name].status.startswith("error") and name in views[name].status, views[name].status
        assert len(views[name].status.splitlines()) == 1
    assert views[good.name].status == "done" and len(views[good.name].series) == 3
    assert win.isVisible()


def test_gui_device_loss_gives_a_message_and_restarts(qtbot, gui_window) -> None:  # noqa: ANN001
    win, notifier = gui_window
    win.start_live()
    qtbot.waitUntil(lambda: any("Live input stopped" in m for m in notifier.messages), timeout=30000)
    assert any("device lost" in m for m in notifier.messages)
    qtbot.waitUntil(lambda: not win.live.running, timeout=5000)
    before = win.live.results
    win.start_live()  # the restart path: a fresh source from the same factory
    assert win.live.running
    qtbot.waitUntil(lambda: win.live.results >= before + 2, timeout=30000)
    win.stop_live()
    assert not win.live.running and win.isVisible()


# ------------------------------------------------------------------------------------------ saves
_KILL_CHILD = """
import os, sys, time
from pathlib import Path
import models.atomic, app.settings
what, target = sys.argv[1], Path(sys.argv[2])
real_fsync = os.fsync
def stall(fd):
    real_fsync(fd)
    print("IN_SAVE", flush=True)
    time.sleep(60)
os.fsync = stall
if what == "settings":
    from app.settings import Settings, save_settings
    save_settings(Settings(top_k=17), target)
else:
    from models.heads.head_file import load_head, save_head
    head = load_head(target)
    import dataclasses
    save_head(dataclasses.replace(head, card=dataclasses.replace(head.card, name="v2")), target)
"""


def _kill_mid_save(what: str, target: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_CHILD, what, str(target)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the new content is written to the temp file, not yet renamed
        assert line.strip() == "IN_SAVE"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_settings_survive_a_kill_mid_save(tmp_path: Path) -> None:
    from app.settings import Settings, load_settings, save_settings

    path = save_settings(Settings(top_k=7, theme="dark"), tmp_path / "settings.json")
    before = path.read_bytes()
    _kill_mid_save("settings", path)
    assert path.read_bytes() == before
    assert load_settings(path).top_k == 7
    save_settings(Settings(top_k=9), path)  # a leftover temp file does not block the next save
    assert load_settings(path).top_k == 9


def _head(path: Path) -> Path:
    from models.heads.head_file import save_head
    from models.heads.heads import train_head

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (20, 8)), rng.normal(3, 1, (20, 8))]).astype(np.float32)
    head, _ = train_head(x, np.repeat([0, 1], 20), ["a", "b"], name="v1", c_grid=(1.0,), n_folds=2)
    return save_head(head, path)


def test_head_survives_a_kill_mid_save(tmp_path: Path) -> None:
    from models.heads.head_file import load_head

    path = _head(tmp_path / "mine.safetensors")
    before = path.read_bytes()
    _kill_mid_save("head", path)
    assert path.read_bytes() == before and load_head(path).card.name == "v1"


def test_disk_full_during_write_keeps_the_previous_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.atomic
    from app import settings as settings_mod
    from app.settings import Settings, load_settings, save_settings
    from models.heads.head_file import load_head, save_head

    head_path = _head(tmp_path / "h.safetensors")
    head_before = head_path.read_bytes()
    s_path = save_settings(Settings(top_k=3), tmp_path / "settings.json")
    s_before = s_path.read_bytes()

    def full(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    head = load_head(head_path)
    with monkeypatch.context() as patch:  # the disk fills while the data is being written
        patch.setattr(models.atomic.os, "fsync", full)
        patch.setattr(settings_mod.os, "fsync", full)
        with pytest.raises(OSError, match="No space left"):
            save_head(head, head_path)
        with pytest.raises(OSError, match="No space left"):
            save_settings(Settings(top_k=30), s_path)
    assert head_path.read_bytes() == head_before and s_path.read_bytes() == s_before
    assert load_settings(s_path).top_k == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.safetensors", "settings.json"]


# ------------------------------------------------------------------------------------------ tampering
def test_tampered_head_is_refused_by_the_cli(tiny_mel_pack: Path, tmp_path: Path, capsys: Cap) -> None:
    from models.heads.head_file import load_head, save_head
    from models.heads.heads import train_head
    from models.tagging.engine import Engine

    engine = Engine.load(tiny_mel_pack)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, engine.embedding_size)).astype(np.float32)
    head, _ = train_head(
        x, np.repeat([0, 1, 2], 10), ["a", "b", "c"], pack_id=engine.info.pack_id,
        layout=engine.info.embedding_layout, c_grid=(1.0,), n_folds=2,
    )  # fmt: skip
    path = save_head(head, tmp_path / "head.safetensors")
    wav = tmp_path / "x.wav"
    sf.write(wav, tone(16000, 1.0), 16000)
    code, out, err = run_cli(capsys, "tag", wav, "--pack", tiny_mel_pack, "--head", path)
    assert code == 0, err
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x5A  # one weight byte changed
    path.write_bytes(bytes(data))
    with pytest.raises(Exception, match="head.safetensors"):
        load_head(path)
    code, out, err = run_cli(capsys, "tag", wav, "--pack", tiny_mel_pack, "--head", path)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "head.safetensors" in err
