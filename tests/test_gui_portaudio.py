"""Live capture and file playback through PortAudio for real, with a private PulseAudio null sink.

A known tone is played into the null sink with ``paplay``; the app's ``SoundDeviceSource`` records the
sink's monitor through PortAudio's ALSA ``pulse`` device, exactly the path a microphone takes. Skips
when PulseAudio, paplay or PortAudio's ``pulse`` device are not installed (Debian: ``apt-get install
pulseaudio pulseaudio-utils libasound2-plugins libportaudio2``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TONE_HZ = 440.0
SINK = "encotag_test_null"


@pytest.fixture
def null_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A private PulseAudio daemon with a null sink; its monitor is the default PortAudio input."""
    for tool in ("pulseaudio", "paplay", "pactl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    try:
        import sounddevice as sd
    except OSError as exc:
        pytest.skip(f"PortAudio not available: {exc}")
    runtime = tmp_path / "pulse"
    runtime.mkdir()
    env = dict(os.environ, PULSE_RUNTIME_PATH=str(runtime), PULSE_SERVER=f"unix:{runtime}/native")
    daemon = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--log-target=stderr",
         "--load=module-native-protocol-unix", f"--load=module-null-sink sink_name={SINK}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.skip("PulseAudio could not be started here")
            time.sleep(0.2)
        env.update(PULSE_SINK=SINK, PULSE_SOURCE=f"{SINK}.monitor")
        for key in ("PULSE_RUNTIME_PATH", "PULSE_SERVER", "PULSE_SINK", "PULSE_SOURCE"):
            monkeypatch.setenv(key, env[key])
        sd._terminate()  # re-scan devices now that the server runs (ALSA's 'pulse' needs it)
        sd._initialize()
        from app.audio_input import list_input_devices

        if "pulse" not in [d.name for d in list_input_devices()]:
            pytest.skip("PortAudio has no ALSA 'pulse' input (libasound2-plugins missing)")
        yield env
    finally:
        daemon.terminate()
        daemon.wait(10)
        sd._terminate()
        sd._initialize()


def _play(env: dict[str, str], path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["paplay", f"--device={SINK}", str(path)], env=env)


def _dominant_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[int(np.argmax(spec))])


def test_live_capture_through_portaudio(
    qtbot, null_sink: dict[str, str], tiny_mel_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.audio_input import SoundDeviceSource
    from app.gui.main_window import MainWindow
    from app.settings import Settings

    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    sr = 48000
    t = np.arange(int(8 * sr)) / sr
    tone = tmp_path / "tone.wav"
    sf.write(tone, (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32), sr)

    sources: list[SoundDeviceSource] = []

    def factory() -> SoundDeviceSource:  # the same class the window uses for a real microphone
        sources.append(SoundDeviceSource("pulse", sample_rate=sr))
        return sources[-1]

    win = MainWindow(Settings(window_s=1.0, hop_s=0.25), pack_path=str(tiny_mel_pack), source_factory=factory)
    qtbot.addWidget(win)
    player = None
    try:
        qtbot.waitUntil(lambda: win.pack_info is not None, timeout=30000)
        win.start_live()
        assert win.live.running, "the PortAudio input did not start"
        player = _play(null_sink, tone)
        qtbot.waitUntil(lambda: len(win.live.series) >= 6, timeout=60000)
        tap = win.live.tap
        assert tap is not None
        captured = tap.latest_mono(sr)  # the newest second, recorded through PortAudio
        assert captured.size == sr
        assert float(np.sqrt(np.mean(captured**2))) > 0.05
        assert _dominant_hz(captured, sr) == pytest.approx(TONE_HZ, abs=3.0)
        assert sources[0].active
        win.stop_live()
        assert not sources[0].active
    finally:
        if player is not None:
            player.terminate()
            player.wait(10)
        win.shutdown()


def test_file_playback_moves_the_playhead(
    qtbot, null_sink: dict[str, str], tiny_mel_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sounddevice as sd

    from app.gui.main_window import MainWindow
    from app.settings import Settings

    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    sr = 44100
    t = np.arange(int(6 * sr)) / sr
    tone = tmp_path / "tone.flac"
    sf.write(tone, (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32), sr)
    win = MainWindow(Settings(window_s=1.0, hop_s=0.5), pack_path=str(tiny_mel_pack))
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: win.pack_info is not None, timeout=30000)
        (job,) = win.open_paths([tone])
        view = win.files[job]
        qtbot.waitUntil(lambda: view.status == "done", timeout=60000)
        view.set_cursor(1.0)
        win.toggle_play()
        qtbot.waitUntil(lambda: view.player.position() > 1.5, timeout=10000)
        assert view.player.playing and view.player.error is None
        recorded = sd.rec(int(0.5 * 48000), samplerate=48000, channels=1, device="pulse", blocking=True)[:, 0]
        assert _dominant_hz(recorded, 48000) == pytest.approx(TONE_HZ, abs=3.0)
        win.refresh_all()
        assert view.playheads[0].isVisible() and view.playheads[0].value() > 1.5
        assert view.play_button.text() == "■ Stop"
        win.toggle_play()
        assert not view.player.playing
        win.refresh_all()
        assert not view.playheads[0].isVisible()
    finally:
        win.shutdown()
