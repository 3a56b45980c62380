"""What the ``encotag`` sub-commands share: argument types, engine loading, the window config, the
``--head`` argument, failure reporting, output paths and the one progress printer.

Exit-code convention (every command): 0 all good, 1 some inputs failed (each named on stderr in one
line, the others processed), 2 a usage error or an unusable pack/head (:class:`UsageError`, nothing
processed).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

MAX_WINDOW_S = 30.0  # longer windows only cost memory (a 300 s window took 2 GB for any file)
MAX_THREADS = 256  # libgomp aborts the process when asked for far more threads than it can start


class UsageError(Exception):
    """A problem with the command line, the pack or the head: exit code 2."""


# ------------------------------------------------------------------------------------ argument types
def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def positive_float(text: str) -> float:
    value = _number(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def seconds(text: str) -> float:
    """A window or hop length: > 0 and at most :data:`MAX_WINDOW_S` seconds."""
    value = positive_float(text)
    if value > MAX_WINDOW_S:
        raise argparse.ArgumentTypeError(f"at most {MAX_WINDOW_S:g} s: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0: {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 1: {text!r}")
    return value


def thread_count(text: str) -> int:
    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"at most {MAX_THREADS}: {text!r}")
    return value


def open_probability(text: str) -> float:
    """A rate strictly between 0 and 1 (e.g. a false-alarm rate)."""
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1): {text!r}")
    return value


def probability(text: str) -> float:
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]: {text!r}")
    return value


# ------------------------------------------------------------------------------------ engine, window, head
def add_engine_args(p: argparse.ArgumentParser, *, window: bool = True) -> None:
    """``--pack``, ``--threads`` and (with ``window``) ``--window``, ``--hop``."""
    p.add_argument("--pack", type=Path, help="model pack folder (default: the pack shipped with Encotag)")
    if window:
        p.add_argument("--window", type=seconds, metavar="S", help="window length in seconds (at most 30)")
        p.add_argument("--hop", type=seconds, metavar="S", help="hop between windows in seconds")
    p.add_argument("--threads", type=thread_count, metavar="N", help="torch CPU threads (1 to 256)")


def load_engine(args: argparse.Namespace) -> Any:
    """The Engine for ``args.pack`` (default pack if None) or :class:`UsageError`."""
    from models.packs.pack import PackError
    from models.tagging.engine import Engine, EngineError

    try:
        return Engine.load(args.pack, threads=getattr(args, "threads", None))
    except (PackError, EngineError, OSError) as exc:
        raise UsageError(str(exc).splitlines()[0] if str(exc) else repr(exc)) from None
    except Exception as exc:  # noqa: BLE001 - e.g. the official codec is not cached and cannot be fetched
        log.debug("pack load failed", exc_info=True)
        raise UsageError(f"{args.pack or 'default pack'}: cannot load the pack ({exc})") from None


def window_config(args: argparse.Namespace, engine: Any) -> Any:
    """``--window``/``--hop`` over the pack's window (a shorter ``--window`` alone shortens the hop)."""
    from models.config import WindowConfig

    default = engine.window
    window_s = args.window or default.window_s
    hop_s = args.hop or (min(default.hop_s, window_s) if args.window else default.hop_s)
    return WindowConfig(window_s=window_s, hop_s=hop_s)


def load_head_arg(name: str, engine: Any) -> Any:
    """A personal head by file path or by name in the user's heads folder (refused if for another pack)."""
    try:
        from models.heads.head_file import load_head
        from models.heads.heads import HeadError
    except ImportError:
        raise UsageError("personal heads are not available in this build") from None
    kw = {"pack_id": engine.info.pack_id, "layout": engine.info.embedding_layout}
    try:
        path = Path(name)
        if path.suffix == ".safetensors" or path.is_file():
            return load_head(path, **kw)
        from app.paths import heads_dir
        from models.heads.head_store import HeadStore

        return HeadStore(heads_dir()).load(name, **kw)
    except (HeadError, ValueError, OSError) as exc:
        from models.safeio import printable

        raise UsageError(printable(f"head {name}: {exc}")) from None


# ------------------------------------------------------------------------------------ failures, outputs
def report_failure(path: Path | str, exc: BaseException) -> None:
    """Name the file and the reason on stderr (one line); unexpected errors go to the log with a trace."""
    from models.audio import AudioError
    from models.codec.codes import CodesError
    from models.safeio import printable

    if isinstance(exc, AudioError | CodesError):
        print(f"encotag: {printable(exc)}", file=sys.stderr)
    else:
        log.debug("unexpected error on %s", path, exc_info=exc)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(printable(f"encotag: {path}: failed ({type(exc).__name__}: {reason})"), file=sys.stderr)


def output_paths(files: list[Path], out: Path | None, ext: str) -> list[Path | None]:
    """Where each input's output goes: None (stdout), ``out`` (one input) or ``out/<stem><ext>``."""
    if out is None:
        return [None] * len(files)
    if len(files) == 1 and not out.is_dir():
        return [out]
    used: set[str] = set()
    result: list[Path | None] = []
    for f in files:
        name, i = f"{f.stem}{ext}", 1
        while name in used:
            i += 1
            name = f"{f.stem}-{i}{ext}"
        used.add(name)
        result.append(out / name)
    return result


# ------------------------------------------------------------------------------------ progress
class ProgressPrinter:
    """The CLI's one progress display, on stderr.

    Call it with a ``models.tagging.results.Progress`` (``done``, ``total``, ``message``) or use
    :meth:`counter` for ``(done, total)`` callbacks. On a terminal one line is redrawn in place; elsewhere
    (a log file, a pipe) a plain line is written at each 10 % step or new message when ``piped``, and
    nothing otherwise. Totals up to ``min_total`` are not shown (a short file needs no bar); ``elapsed``
    prefixes the seconds since the printer was made. :meth:`close` clears a half-drawn line.
    """

    def __init__(
        self,
        label: str = "",
        *,
        enabled: bool = True,
        piped: bool = True,
        elapsed: bool = False,
        min_total: int = 0,
        stream: TextIO | None = None,
    ) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled and (self.tty or piped)
        self.elapsed, self.min_total = elapsed, min_total
        self._t0 = time.monotonic()
        self._last: tuple[str, int] = ("", -1)
        self._open = False  # a line drawn in place and not yet ended

    def __call__(self, p: Any) -> None:
        self.update(int(p.done), int(p.total), str(getattr(p, "message", "") or ""))

    def counter(self, message: str = "") -> Callable[[int, int], None]:
        """A ``(done, total)`` callback showing ``message``."""
        return lambda done, total: self.update(done, total, message)

    def update(self, done: int, total: int, message: str = "") -> None:
        if not self.enabled or (0 < total <= self.min_total):
            return
        if total > 0:
            frac = min(max(done / total, 0.0), 1.0)
            line, step = f"[{'#' * int(frac * 24):<24}] {done}/{total} {message}".rstrip(), int(frac * 10)
        else:
            line, step = message, -1
        if self.label:
            line = f"{self.label}: {line}"
        if self.elapsed:
            line = f"{time.monotonic() - self._t0:6.0f}s {line}"
        if self.tty:
            finished = total > 0 and done >= total
            self.stream.write("\r\x1b[K" + line[:150] + ("\n" if finished else ""))
            self._open = not finished
        elif (message, step) != self._last:
            self.stream.write(line + "\n")
        self._last = (message, step)
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._open = False
