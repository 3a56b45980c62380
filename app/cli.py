"""The ``encotag`` command line: one entry point, one module per sub-command.

Each module in ``app.commands`` exposes ``register(subparsers)`` which adds its parser and sets
``func=run``; ``run(args) -> int`` returns the exit code (0 ok, 1 some inputs failed, 2 usage).
Command modules import torch and the engine lazily inside ``run`` so that ``--help`` and
``--version`` stay fast. With no sub-command the GUI starts.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from app import __version__

COMMANDS = ("gui", "tag", "embed", "encode", "info", "pack", "eval", "corpus", "train", "head", "bench")

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="encotag",
        description="Encotag: tells you what you are hearing (EnCodec latents → MobileNetV3 → AudioSet).",
    )
    parser.add_argument("--version", action="version", version=f"encotag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"app.commands.{name}")
        except ModuleNotFoundError as exc:  # a command not present in this build
            if exc.name != f"app.commands.{name}":
                raise
            log.debug("command %s not available", name)
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    top_level = ("--help", "--version", "-h", "-v", "--verbose")
    if not argv or argv[0].startswith("--") and argv[0] not in top_level:
        argv = ["gui", *argv]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help/--version
        return int(exc.code or 0)
    if args.command is None:
        args = parser.parse_args([*argv, "gui"])
    args.argv = tuple(argv)  # the command line as given (training records it in its provenance)
    from app.logsetup import setup_logging

    setup_logging(verbose=args.verbose, command=args.command)
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        print("encotag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `encotag tag … | head -1`: the reader went away; nothing more to say there
        _silence_stdout()
        print("encotag: output closed early (broken pipe)", file=sys.stderr)
        return 1
    except (Exception, MemoryError, RecursionError) as exc:  # never a traceback: one line, details in the log
        from models.safeio import printable

        log.debug("unexpected error in %s", args.command, exc_info=True)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        where = f" {exc.filename}:" if isinstance(exc, OSError) and exc.filename else ""
        text = f"encotag:{where} {exc.strerror or reason}" if isinstance(exc, OSError) else None
        text = text or f"encotag: error ({type(exc).__name__}{': ' + reason if reason else ''})"
        print(printable(text), file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
