"""Start the desktop app: QApplication, theme, error hooks, main window, and the scripted smoke path.

``encotag gui --open FILE --screenshot OUT.png --exit-after SECONDS`` (and ``--live`` / ``--synthetic
FILE``) runs the real window, saves a screenshot just before exiting and returns 0; tests and
``tools/screenshot.sh`` use it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from app.gui.errors import ErrorNotifier, install_error_hooks
from app.gui.main_window import MainWindow
from app.gui.theme import apply_theme
from app.settings import load_settings

log = logging.getLogger(__name__)

MODEL_WAIT_S = 300.0  # --exit-after gives up waiting for the model after this long
SYNTHETIC_RATE = 48000  # a test source behaves like a 48 kHz device


@dataclass(frozen=True)
class GuiOptions:
    """What ``encotag gui`` was asked to do (all optional)."""

    open: tuple[str, ...] = ()
    live: bool = False
    synthetic: str | None = None  # feed the live input from this file (looped, real time)
    pack: str | None = None
    screenshot: str | None = None
    exit_after: float | None = None
    theme: str | None = None
    compare: str | None = None  # once the model is ready, compare the current file with this pack


def synthetic_factory(path: str | Path, speed: float = 1.0) -> Callable[[], Any]:
    """A source factory: ``SyntheticSource`` looping ``path`` at 48 kHz in real time."""

    def make() -> Any:
        from app.audio_input import SyntheticSource
        from models.audio import load_audio

        signal = load_audio(path, SYNTHETIC_RATE)
        return SyntheticSource(signal, SYNTHETIC_RATE, 1024, speed=speed, loop=True, name=Path(path).name)

    return make


def save_screenshot(win: MainWindow, path: str | Path) -> Path:
    """Render the window into a PNG at ``path`` (folders created)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    win.refresh_all()
    if not win.grab().save(str(out)):
        raise OSError(f"{out}: cannot write the screenshot")
    log.info("screenshot saved to %s", out)
    return out


def run_gui(opts: GuiOptions) -> int:
    """Run the app until the window closes (or ``exit_after`` seconds); returns the exit code."""
    app = QApplication.instance()
    owns_app = not isinstance(app, QApplication)
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName("Encotag")
    app.setOrganizationName("Encotag")
    app.setDesktopFileName("encotag")
    settings = load_settings()
    dark = apply_theme(app, opts.theme or settings.theme)
    notifier = ErrorNotifier()
    install_error_hooks(notifier)
    factory = synthetic_factory(opts.synthetic) if opts.synthetic else None
    win = MainWindow(settings, pack_path=opts.pack, source_factory=factory, notifier=notifier, dark=dark)
    if opts.theme is None:  # "system": follow the platform when it switches between light and dark
        hints = app.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(win.system_scheme_changed)
    win.show()
    if opts.open:
        win.open_paths(opts.open)
    if opts.live or opts.synthetic:
        win.start_live()
    packs = next((e for e in win.extensions if hasattr(e, "compare")), None)
    if opts.compare and packs is not None:
        compared: list[int | None] = []

        def compare_once(*_args: object) -> None:  # the first time the model is ready
            if not compared:
                compared.append(packs.compare(opts.compare))

        win.model_settled.connect(compare_once)
    status = {"code": 0}
    if opts.exit_after is not None:

        def finish() -> None:
            if status.get("finished"):
                return
            status["finished"] = 1
            if opts.screenshot:
                try:
                    save_screenshot(win, opts.screenshot)
                except OSError as exc:
                    log.error("%s", exc)
                    status["code"] = 1
            win.close()

        def arm(*_args: object) -> None:
            QTimer.singleShot(int(opts.exit_after * 1000), finish)  # type: ignore[operator]

        # the countdown starts when the model is ready (or failed), so scripts see tags whatever the
        # machine's start-up time
        win.model_settled.connect(arm)
        QTimer.singleShot(int((opts.exit_after + MODEL_WAIT_S) * 1000), finish)  # a model that never loads
    elif opts.screenshot:
        log.warning("--screenshot needs --exit-after; no screenshot will be taken")
    if owns_app:
        code = app.exec()  # quits when the last window closes
    else:  # embedded (tests): run until this window closes, leave the host's application running
        loop = QEventLoop()
        win.closed.connect(loop.quit)
        code = loop.exec()
    return status["code"] or int(code)
