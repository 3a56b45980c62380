"""Live audio input sources (Qt-free).

A source delivers float32 blocks ``(frames, channels)`` at ``sample_rate`` to one consumer, normally
``StreamTagger.push`` / ``RingBuffer.write``, from its own thread (the PortAudio callback thread for
:class:`SoundDeviceSource`, a feeder thread for :class:`SyntheticSource`). The consumer must only copy
the block. Errors after ``start`` (device unplugged, stream died) go to ``on_error(message)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

BlockCallback = Callable[[np.ndarray], None]
ErrorCallback = Callable[[str], None]


class AudioInputError(RuntimeError):
    """The input cannot be opened or used (one-line message naming the device and the reason)."""


class InputSource(Protocol):
    name: str
    sample_rate: int
    channels: int

    def start(self, on_block: BlockCallback, on_error: ErrorCallback | None = None) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int  # max input channels
    default_sample_rate: int
    hostapi: str = ""
    is_default: bool = False


def _sounddevice() -> Any:
    """Import sounddevice lazily; a missing PortAudio becomes a clear :class:`AudioInputError`."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        raise AudioInputError(
            f"PortAudio is not available ({exc}); install it (Debian/Ubuntu: apt-get install libportaudio2)"
        ) from None
    except ImportError as exc:
        raise AudioInputError(f"the sounddevice package is not installed ({exc})") from None
    return sounddevice


def list_input_devices() -> list[InputDevice]:
    """Input-capable devices PortAudio knows (raises :class:`AudioInputError` without PortAudio)."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except Exception as exc:  # noqa: BLE001 - PortAudioError and friends
        raise AudioInputError(f"cannot list audio devices: {exc}") from None
    out = []
    for i, d in enumerate(devices):
        if int(d.get("max_input_channels", 0)) <= 0:
            continue
        api = hostapis[d["hostapi"]]["name"] if 0 <= d.get("hostapi", -1) < len(hostapis) else ""
        out.append(
            InputDevice(
                index=i,
                name=str(d["name"]),
                channels=int(d["max_input_channels"]),
                default_sample_rate=int(d.get("default_samplerate") or 48000),
                hostapi=str(api),
                is_default=i == default_in,
            )
        )
    return out


NO_INPUT = (
    "No audio input device was found. Connect a microphone (or enable one in the system's sound settings),"
    " then choose it in Live ▸ Input device."
)


def _missing_input(device: int | str | None, exc: Exception) -> str:
    """The one line a user reads when ``device`` (None: the default) cannot be opened for input."""
    try:
        devices = list_input_devices()
    except AudioInputError as err:
        return str(err)
    if not devices:
        return NO_INPUT
    if device is None:
        return f"No default audio input is set ({exc}): choose a device in Live ▸ Input device."
    return f"The input device {device!r} was not found (unplugged?): choose another in Live ▸ Input device."


class SoundDeviceSource:
    """A PortAudio input stream (sounddevice). The callback hands each block to ``on_block`` unchanged."""

    def __init__(
        self,
        device: int | str | None = None,
        sample_rate: int | None = None,
        channels: int = 1,
        block_size: int = 1024,
    ) -> None:
        sd = _sounddevice()
        try:
            info = sd.query_devices(device, "input")
        except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError and friends
            raise AudioInputError(_missing_input(device, exc)) from None
        self.device = device
        self.name = str(info["name"])
        self.sample_rate = int(sample_rate or info.get("default_samplerate") or 48000)
        max_ch = int(info.get("max_input_channels", 1)) or 1
        self.channels = max(1, min(int(channels), max_ch))
        self.block_size = int(block_size)
        self.overflows = 0
        self._stream: Any = None
        self._stopping = False
        self._on_error: ErrorCallback | None = None

    def start(self, on_block: BlockCallback, on_error: ErrorCallback | None = None) -> None:
        sd = _sounddevice()
        self._on_error = on_error
        self._stopping = False

        def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            if status and getattr(status, "input_overflow", False):
                self.overflows += 1
            on_block(indata)

        def finished() -> None:
            if not self._stopping and self._on_error is not None:
                self._on_error(f"{self.name}: the input stream stopped unexpectedly (device lost?)")

        try:
            self._stream = sd.InputStream(
                device=self.device,
                samplerate=self.sample_rate,
                channels=self.channels,
                dtype="float32",
                blocksize=self.block_size,
                callback=callback,
                finished_callback=finished,
            )
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError and friends, reported as AudioInputError
            self._stream = None
            raise AudioInputError(f"{self.name}: cannot open input ({exc})") from None
        log.info(
            "input %s: %d Hz, %d ch, block %d", self.name, self.sample_rate, self.channels, self.block_size
        )

    def stop(self) -> None:
        self._stopping = True
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as exc:  # noqa: BLE001 - the device may already be gone
                log.warning("%s: error while closing the input: %s", self.name, exc)

    @property
    def active(self) -> bool:
        return self._stream is not None and bool(self._stream.active)


class SyntheticSource:
    """Feeds a given signal in blocks from a thread, through the same callback path as a device.

    ``signal``: float32 ``(n,)`` or ``(n, channels)`` at ``sample_rate``. ``speed`` 1.0 paces blocks in
    real time, larger is faster, 0 means as fast as possible. ``loop`` repeats the signal until
    ``stop``. ``fail_after_s`` simulates device loss: after that many seconds of audio the thread
    reports ``on_error`` and stops feeding. ``done`` is set when the feeder thread ends.
    """

    def __init__(
        self,
        signal: np.ndarray,
        sample_rate: int,
        block_size: int = 1024,
        *,
        speed: float = 1.0,
        loop: bool = False,
        fail_after_s: float | None = None,
        name: str = "synthetic",
    ) -> None:
        x = np.asarray(signal, dtype=np.float32)
        self.signal = x[:, None] if x.ndim == 1 else x
        self.sample_rate = int(sample_rate)
        self.channels = int(self.signal.shape[1])
        self.block_size = int(block_size)
        self.speed = float(speed)
        self.loop = loop
        self.fail_after_s = fail_after_s
        self.name = name
        self.frames_sent = 0
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_block: BlockCallback, on_error: ErrorCallback | None = None) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise AudioInputError(f"{self.name}: already started")
        self._stop.clear()
        self.done.clear()
        self._thread = threading.Thread(
            target=self._run, args=(on_block, on_error), name=self.name, daemon=True
        )
        self._thread.start()

    def _run(self, on_block: BlockCallback, on_error: ErrorCallback | None) -> None:
        n = len(self.signal)
        fail_at = None if self.fail_after_s is None else int(self.fail_after_s * self.sample_rate)
        t0 = time.monotonic()
        pos = 0
        try:
            while not self._stop.is_set() and n:
                if fail_at is not None and self.frames_sent >= fail_at:
                    if on_error is not None:
                        on_error(f"{self.name}: device lost (simulated)")
                    return
                k = min(self.block_size, n - pos)
                if fail_at is not None:
                    k = min(k, fail_at - self.frames_sent)
                block = self.signal[pos : pos + k]
                on_block(block)
                pos += k
                self.frames_sent += k
                if pos >= n:
                    if not self.loop:
                        return
                    pos = 0
                if self.speed > 0:
                    due = t0 + self.frames_sent / (self.sample_rate * self.speed)
                    delay = due - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
        except Exception as exc:  # a consumer error ends the stream like a device error would
            log.exception("%s: consumer failed", self.name)
            if on_error is not None:
                on_error(f"{self.name}: {exc}")
        finally:
            self.done.set()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the feeder ends (signal exhausted, failure or stop); True if it did."""
        return self.done.wait(timeout)
