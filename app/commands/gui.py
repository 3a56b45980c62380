"""``encotag gui``: the desktop app (also what ``encotag`` with no arguments runs)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "gui",
        help="start the desktop app (default)",
        description="Start the Encotag window. The scripting options run it unattended for tests and docs.",
    )
    p.add_argument("--open", nargs="+", metavar="FILE", default=[], help="files or folders to tag at start")
    p.add_argument("--live", action="store_true", help="start listening to the input device at start")
    p.add_argument(
        "--synthetic",
        metavar="FILE",
        help="feed the live input from FILE (looped in real time) instead of a device",
    )
    p.add_argument("--pack", metavar="DIR", help="model pack folder (default: the shipped pack)")
    p.add_argument(
        "--compare", metavar="DIR", help="compare the first opened file with this pack (Model menu)"
    )
    p.add_argument("--theme", choices=("system", "light", "dark"), help="override the saved theme")
    p.add_argument("--screenshot", metavar="OUT.png", help="save a screenshot of the window before exiting")
    p.add_argument(
        "--exit-after", type=float, metavar="SECONDS", help="quit SECONDS after the model loaded (scripts)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.exit_after is not None and args.exit_after <= 0:
        print("encotag gui: --exit-after must be > 0", flush=True)
        return 2
    from app.gui.application import GuiOptions, run_gui

    return run_gui(
        GuiOptions(
            open=tuple(args.open),
            live=args.live,
            synthetic=args.synthetic,
            pack=args.pack,
            screenshot=args.screenshot,
            exit_after=args.exit_after,
            theme=args.theme,
            compare=args.compare,
        )
    )
