"""Drawing for the main window: one timer, one rate-limited stage (one repainted view) per tick.

Spreading the views over ticks keeps each event-loop iteration short (one repaint, not five), so the
window stays responsive on slow machines while files are tagged and live tags stream in.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.gui.files import FileViews
from app.gui.layout import WindowParts
from app.gui.live import LiveTab
from app.gui.state.live import LiveSession
from app.gui.state.series import TagLabels

REFRESH_MS = 25  # one drawing stage per tick
# minimum seconds between redraws of: scope+meter, live tag plot, bars+table, trajectory, file view,
# playhead
STAGE_MIN_S = (0.06, 0.1, 0.1, 0.2, 0.2, 0.05)


class Painter:
    """Redraws the views from the live session and the registry of file views (GUI thread only).

    It reads ``live`` (results, tap), ``files`` (the views and their job progress) and ``labels()`` (the
    loaded pack's tags), and draws into ``ui`` (docks, level meter) and ``live_tab``; ``show_cursor(t)``
    is the window's "tags at time t of the current file" (the bars and table follow the cursor).
    """

    def __init__(
        self,
        live: LiveSession,
        files: FileViews,
        ui: WindowParts,
        live_tab: LiveTab,
        labels: Callable[[], TagLabels],
        show_cursor: Callable[[float], None],
    ) -> None:
        self.live, self.files, self.ui, self.live_tab = live, files, ui, live_tab
        self.labels, self.show_cursor = labels, show_cursor
        self._dirty: set[str] = set()
        self._stage = 0
        self._stage_last = [0.0] * len(STAGE_MIN_S)
        self._stages = (
            self._stage_scope, self._stage_live_plot, self._stage_bars, self._stage_trajectory,
            self._stage_file, self._stage_playhead,
        )  # fmt: skip

    def refresh(self) -> None:
        """Timer tick: run the next drawing stage that has work (one view repainted per tick).

        Spreading the views over ticks keeps each event-loop iteration short (one repaint, not five),
        so the window stays responsive on slow machines while files are tagged and live tags stream.
        """
        self._collect()
        n = len(self._stages)
        now = time.monotonic()
        for k in range(n):
            i = (self._stage + k) % n
            if now - self._stage_last[i] < STAGE_MIN_S[i]:
                continue
            if self._stages[i]():
                self._stage_last[i] = now
                self._stage = (i + 1) % n
                return

    def refresh_all(self) -> None:
        """Run every drawing stage now (screenshots, tests)."""
        self._collect()
        for stage in self._stages:
            stage()

    def _collect(self) -> None:
        if self.live.take_changes():
            self._dirty.update(("live_plot", "live_bars", "live_traj"))

    def _take(self, flag: str) -> bool:
        if flag in self._dirty:
            self._dirty.discard(flag)
            return True
        return False

    def _stage_scope(self) -> bool:
        tap = self.live.tap
        if not self.live.running or tap is None:
            return False
        recent = tap.latest_mono(int(tap.sample_rate * self.live_tab.scope.seconds))
        self.ui.level.set_block(recent[-max(1, tap.sample_rate // 20) :])
        if self.files.current() is None:
            self.live_tab.scope.set_samples(recent, tap.sample_rate)
        return True

    def _stage_live_plot(self) -> bool:
        labels = self.labels()
        if not self._take("live_plot") or not labels or not len(self.live.series):
            return False
        self.live_tab.draw(self.live.series, labels.curve)
        return True

    def _stage_bars(self) -> bool:
        view = self.files.current()
        if view is not None:
            if not view.bars_dirty:
                return False
            view.bars_dirty = False
            self.show_cursor(view.cursor_s)
            return True
        latest, labels = self.live.latest, self.labels()
        if not self._take("live_bars") or latest is None or not labels:
            return False
        self.ui.topk.set_probs(latest.probs, labels.names, labels.trusted)
        self.ui.table_model.set_probs(latest.probs, 0.5 * (latest.start + latest.end))
        return True

    def _stage_trajectory(self) -> bool:
        view = self.files.current()
        if view is not None:
            if not view.traj_dirty:
                return False
            view.traj_dirty = False
            self.ui.trajectory_view.set_snapshot(view.trajectory.snapshot(), view.cursor_s)
            return True
        if not self._take("live_traj"):
            return False
        self.ui.trajectory_view.set_snapshot(self.live.trajectory.snapshot())
        return True

    def _stage_playhead(self) -> bool:
        view = self.files.current()
        if view is None or not (view.player.playing or view.playheads[0].isVisible()):
            return False
        view.update_playhead()
        return True

    def _stage_file(self) -> bool:
        view = self.files.current()
        did = False
        for job, p in self.files.take_progress():
            view_p = self.files.get(job)
            if view_p is not None:
                view_p.set_progress(p.done, p.total)
            self.files.update_status(p)
            did = True
        if view is not None and view.curves_dirty:
            view.refresh()
            did = True
        return did
