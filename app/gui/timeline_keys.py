"""Keys of a file timeline: Space plays from the cursor / pauses (the cursor stays where the sound
stopped), ←/→ move the cursor by one analysis hop (Shift: ten hops), Home/End go to the start/end,
0 resets the zoom (also *View ▸ Reset zoom*, Ctrl+0).

An event filter on the file view and every widget inside it (plots, their viewports, the Play button),
so the keys work wherever the focus is within the tab; the cursor stays in view when it moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from app.gui.file_view import FileView

BIG_STEP = 10  # hops per Shift+arrow


def file_end(view: FileView) -> float:
    """The end of the file in seconds (its overview's duration, else the last tagged window)."""
    if view.overview is not None:
        return float(view.overview.duration)
    return float(view.series.ends[-1]) if len(view.series) else 0.0


def reset_zoom(view: FileView) -> None:
    """Show the whole file again."""
    view.wave.setXRange(0.0, max(file_end(view), 1e-3), padding=0.01)


def _keep_in_view(view: FileView, t: float) -> None:
    lo, hi = view.tags.getViewBox().viewRange()[0]
    if not lo <= t <= hi:
        width = hi - lo
        start = min(max(0.0, t - width / 2), max(0.0, file_end(view) - width))
        view.wave.setXRange(start, start + width, padding=0)


class TimelineKeys(QObject):
    """The key handling of one :class:`~app.gui.file_view.FileView` (``hop()``: the analysis hop, s)."""

    def __init__(self, view: FileView, hop: Callable[[], float]) -> None:
        super().__init__(view)
        self.view, self.hop = view, hop
        view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        for w in [view, *view.findChildren(QWidget)]:
            w.installEventFilter(self)

    def move_cursor(self, t: float) -> None:
        t = min(max(0.0, t), file_end(self.view))
        self.view.set_cursor(t)
        _keep_in_view(self.view, t)

    def handle(self, key: int, shift: bool = False) -> bool:
        """Act on ``key`` (a ``Qt.Key``); returns whether it is a timeline key."""
        view = self.view
        step = max(self.hop(), 0.01) * (BIG_STEP if shift else 1)
        if key == Qt.Key.Key_Space:  # a pause: stopping leaves the cursor where the sound stopped
            position = view.player.position() if view.player.playing else None
            view.toggle_play()
            if position is not None:
                self.move_cursor(position)
        elif key == Qt.Key.Key_Left:
            self.move_cursor(view.cursor_s - step)
        elif key == Qt.Key.Key_Right:
            self.move_cursor(view.cursor_s + step)
        elif key == Qt.Key.Key_Home:
            self.move_cursor(0.0)
        elif key == Qt.Key.Key_End:
            self.move_cursor(file_end(view))
        elif key == Qt.Key.Key_0:
            reset_zoom(view)
        else:
            return False
        return True

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if mods in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier):
                return self.handle(event.key(), bool(mods & Qt.KeyboardModifier.ShiftModifier))
        return False
