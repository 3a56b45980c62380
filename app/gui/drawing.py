"""Drawing for the main window: one timer, one rate-limited stage (one repainted view) per tick.

Spreading the views over ticks keeps each event-loop iteration short (one repaint, not five), so the
window stays responsive on slow machines while files are tagged and live tags stream in.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

REFRESH_MS = 25  # one drawing stage per tick
# minimum seconds between redraws of: scope+meter, live tag plot, bars+table, trajectory, file view,
# playhead
STAGE_MIN_S = (0.06, 0.1, 0.1, 0.2, 0.2, 0.05)


class Painter:
    """Redraws the views of ``win`` from its live session and file views (GUI thread only)."""

    def __init__(self, win: MainWindow) -> None:
        self.win = win
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
        if self.win.live.flush():
            self._dirty.update(("live_plot", "live_bars", "live_traj"))
        if self.win._live_dirty:
            self.win._live_dirty = False
            self._dirty.update(("live_plot", "live_bars", "live_traj"))

    def _take(self, flag: str) -> bool:
        if flag in self._dirty:
            self._dirty.discard(flag)
            return True
        return False

    def _stage_scope(self) -> bool:
        tap = self.win.live.tap
        if not self.win.live.running or tap is None:
            return False
        recent = tap.latest_mono(int(tap.sample_rate * self.win.live_tab.scope.seconds))
        self.win.level.set_block(recent[-max(1, tap.sample_rate // 20) :])
        if self.win.current_file() is None:
            self.win.live_tab.scope.set_samples(recent, tap.sample_rate)
        return True

    def _stage_live_plot(self) -> bool:
        if not self._take("live_plot") or not self.win.labels or not len(self.win.live.series):
            return False
        self.win.live_tab.draw(self.win.live.series, self.win.curve_labels)
        return True

    def _stage_bars(self) -> bool:
        view = self.win.current_file()
        if view is not None:
            if not view.bars_dirty:
                return False
            view.bars_dirty = False
            self.win._cursor_moved(view.cursor_s)
            return True
        latest = self.win.live.latest
        if not self._take("live_bars") or latest is None or not self.win.labels:
            return False
        self.win.topk.set_probs(latest.probs, self.win.labels, self.win.trusted)
        self.win.table_model.set_probs(latest.probs, 0.5 * (latest.start + latest.end))
        return True

    def _stage_trajectory(self) -> bool:
        view = self.win.current_file()
        if view is not None:
            if not view.traj_dirty:
                return False
            view.traj_dirty = False
            self.win.trajectory_view.set_snapshot(view.trajectory.snapshot(), view.cursor_s)
            return True
        if not self._take("live_traj"):
            return False
        self.win.trajectory_view.set_snapshot(self.win.live.trajectory.snapshot())
        return True

    def _stage_playhead(self) -> bool:
        view = self.win.current_file()
        if view is None or not (view.player.playing or view.playheads[0].isVisible()):
            return False
        view.update_playhead()
        return True

    def _stage_file(self) -> bool:
        view = self.win.current_file()
        did = False
        for job, p in list(self.win._progress.items()):
            view_p = self.win.files.get(job)
            if view_p is not None:
                view_p.set_progress(p.done, p.total)
            self.win._update_job_status(p)
            did = True
        self.win._progress.clear()
        if view is not None and view._dirty:
            view.refresh()
            did = True
        return did
