"""File playback through PortAudio for the file view's moving playhead (Qt-free).

A decoder thread streams the file (``models.audio.iter_audio``, mono at ``sample_rate``) into a small
bounded queue; the PortAudio output callback only takes blocks from that queue (never waits: an
underrun plays silence). ``position()`` is the time of the sample being played, for the playhead.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

NO_OUTPUT = (
    "No audio output device was found: connect speakers or headphones (or enable an output in the"
    " system's sound settings) to play files."
)
QUEUE_BLOCKS = 8
BLOCK_S = 0.25


class FilePlayer:
    """Plays one file at a time from a start time; ``stop`` ends playback; thread-safe."""

    def __init__(self, sample_rate: int = 44100) -> None:
        self.sample_rate = int(sample_rate)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._start_s = 0.0
        self._played = 0  # frames handed to the device
        self.path: Path | None = None
        self.error: str | None = None

    @property
    def playing(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def position(self) -> float:
        """Seconds into the file of the audio being played."""
        return self._start_s + self._played / self.sample_rate

    def play(
        self, path: str | Path, start_s: float = 0.0, on_error: Callable[[str], None] | None = None
    ) -> None:
        """Start playing ``path`` from ``start_s`` seconds (stops what was playing)."""
        self.stop()
        self.path = Path(path)
        self._start_s = max(0.0, float(start_s))
        self._played = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self.path, self._start_s, self._stop, on_error), name="encotag-playback",
            daemon=True,
        )  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _run(
        self, path: Path, start_s: float, stop: threading.Event, on_error: Callable[[str], None] | None
    ) -> None:
        from models.audio import iter_audio

        blocks: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=QUEUE_BLOCKS)
        state: dict[str, Any] = {"cur": np.zeros(0, np.float32), "pos": 0, "eof": False}
        finished = threading.Event()

        def callback(outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
            filled = 0
            while filled < frames:
                cur, pos = state["cur"], state["pos"]
                if pos >= cur.size:
                    if state["eof"]:
                        break
                    try:
                        nxt = blocks.get_nowait()
                    except queue.Empty:
                        break  # underrun: the rest of this buffer is silence
                    if nxt is None:
                        state["eof"] = True
                        break
                    state["cur"], state["pos"] = nxt, 0
                    continue
                k = min(frames - filled, cur.size - pos)
                outdata[filled : filled + k, 0] = cur[pos : pos + k]
                state["pos"] = pos + k
                filled += k
            outdata[filled:] = 0
            self._played += filled
            if state["eof"] and state["pos"] >= state["cur"].size:
                raise _callback_stop()

        try:
            import sounddevice as sd

            try:
                sd.query_devices(kind="output")
            except Exception:  # noqa: BLE001 - PortAudio: "Error querying device -1"
                raise OSError(NO_OUTPUT) from None
            skip = int(round(start_s * self.sample_rate))
            with sd.OutputStream(
                samplerate=self.sample_rate, channels=1, dtype="float32", callback=callback,
                finished_callback=finished.set,
            ):  # fmt: skip
                for block in iter_audio(path, self.sample_rate, block_s=BLOCK_S):
                    if skip >= block.size:
                        skip -= block.size
                        continue
                    block, skip = block[skip:], 0
                    while not stop.is_set():
                        try:
                            blocks.put(block, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                blocks.put(None)
                while not stop.is_set() and not finished.wait(0.1):
                    pass
        except Exception as exc:  # noqa: BLE001 - no output device, unreadable file, …: reported, not raised
            reason = " ".join(str(exc).split()) or type(exc).__name__
            self.error = reason if reason == NO_OUTPUT else f"{path}: cannot play ({reason})"
            log.warning("%s", self.error)
            if on_error is not None:
                on_error(self.error)


def _callback_stop() -> BaseException:
    import sounddevice as sd

    return sd.CallbackStop()
