"""The live state (Qt-free): the audio-callback side (:class:`LiveTap`) and one live run's results
(:class:`LiveSession`: source, tap, result series, trajectory). The live tab draws from it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from app.gui.state.series import ResultBatch, ResultSeries
from app.gui.state.trajectory import Trajectory
from models.tagging.results import WindowResult

log = logging.getLogger(__name__)

LIVE_HISTORY_S = 20 * 60  # live results kept for plots and export (bounded memory)


class LiveTap:
    """The audio-callback side of the live path (Qt-free, callback-safe).

    ``write(block)`` is what an input source calls for every block (float32 ``(n,)`` or ``(n, ch)``): it
    copies the block into the display ring (level meter, scope) and, once the engine is ready, into the
    ``StreamTagger``'s ring. Nothing else happens on the audio thread.
    """

    def __init__(self, sample_rate: int, channels: int = 1, display_s: float = 10.0) -> None:
        from models.tagging.pipeline import RingBuffer

        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.display = RingBuffer(max(1, int(display_s * sample_rate)), channels)
        self.tagger: Any = None  # models.tagging.pipeline.StreamTagger, attached by the worker

    def write(self, block: np.ndarray) -> None:
        self.display.write(block)
        tagger = self.tagger
        if tagger is not None:
            tagger.push(block)

    __call__ = write

    def latest_mono(self, n: int) -> np.ndarray:
        """The newest ``n`` frames as mono float32 (for display)."""
        x, _ = self.display.read_latest(n)
        return x if x.ndim == 1 else x.mean(axis=1)


class LiveSession:
    """State of one live run: the source, its tap, the result series and the trajectory."""

    def __init__(self, hop_s: float = 0.25) -> None:
        self.series = ResultSeries(max_len=int(LIVE_HISTORY_S / max(hop_s, 0.01)))
        self.trajectory = Trajectory(capacity=600)
        self.source: Any = None
        self.tap: LiveTap | None = None
        self.results = 0
        self.latest: WindowResult | None = None
        self._pending: list[WindowResult] = []
        self._redraw = False

    def mark_dirty(self) -> None:
        """Redraw the live views at the next drawing stages (new labels, theme, selection)."""
        self._redraw = True

    def take_changes(self) -> bool:
        """File pending results (:meth:`flush`); True if the live views need redrawing since the last call."""
        changed = self.flush() or self._redraw
        self._redraw = False
        return changed

    @property
    def running(self) -> bool:
        return self.source is not None

    def start(self, source: Any, on_error: Callable[[str], None]) -> LiveTap:
        """Start ``source`` (an ``app.audio_input`` InputSource) writing into a fresh :class:`LiveTap`."""
        tap = LiveTap(int(source.sample_rate), int(getattr(source, "channels", 1)))
        source.start(tap.write, on_error)
        self.source, self.tap = source, tap
        return tap

    def stop(self) -> None:
        source, self.source = self.source, None
        if source is not None:
            try:
                source.stop()
            except Exception:  # noqa: BLE001 - a dying device must not take the app with it
                log.exception("error while stopping the input")

    def clear(self) -> None:
        self._redraw = True
        self.series.clear()
        self.trajectory.clear()
        self.latest = None
        self.results = 0

    def add(self, result: WindowResult) -> None:
        """Queue a result from the worker (GUI thread); :meth:`flush` files them into the series."""
        self._pending.append(result)
        self.latest = result
        self.results += 1

    def flush(self) -> bool:
        """Move pending results into the series and trajectory; True if anything changed."""
        if not self._pending:
            return False
        if len(self.series) and self._pending[0].end < self.series.ends[-1]:
            self.clear()  # the stream clock restarted (new device or window settings)
            self.latest = self._pending[-1]
            self.results = len(self._pending)
        pending, self._pending = self._pending, []
        if len({r.embedding.shape for r in pending}) > 1:  # the pack changed mid-batch: keep the newest
            pending = [r for r in pending if r.embedding.shape == pending[-1].embedding.shape]
        batch = ResultBatch.from_results(pending)
        try:
            self.series.append(batch)
        except ValueError:  # another model pack (other embedding size): start a fresh history
            self.clear()
            self.latest, self.results = pending[-1], len(pending)
            self.series.append(batch)
        self.trajectory.extend(0.5 * (batch.starts + batch.ends), batch.embeddings)
        return True
