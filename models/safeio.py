"""Defensive file I/O for everything a user can hand Encotag: bounded reads, safe writes, safe names.

- :func:`read_regular` reads a file only if it is a regular file (a FIFO, device or socket is refused
  without blocking: the file is opened with ``O_NONBLOCK`` and checked with ``fstat``) and no larger than
  a cap, so no header, manifest, head or settings file can make Encotag hang or allocate without bound.
- :func:`atomic_write_bytes` writes output files. A regular target (or a missing one) is replaced
  atomically: temp file in the same folder, fsync, ``os.replace``, folder fsync. A symlink is followed
  and its target replaced (the link stays a link). A character device or a FIFO (``-o /dev/null``,
  ``-o /dev/stdout``, a named pipe with a reader) is written directly and never replaced; a FIFO
  without a reader, a block device, a socket or a folder is refused with :class:`UnsafeTargetError`.
  Temp names are short (``.encotag-<random>.tmp``) so they fit ``NAME_MAX`` whatever the target's name,
  and the written file gets the mode the user's umask gives a new file (an existing file keeps its
  mode), not ``mkstemp``'s 0600.
- :func:`printable` turns any text (file names with newlines, terminal escapes or undecodable bytes)
  into one safe line for messages.

Qt-free and torch-free.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path

TMP_PREFIX = ".encotag-"
TMP_SUFFIX = ".tmp"


class UnsafeTargetError(OSError):
    """An output target that cannot be written safely (folder, block device, socket, FIFO with no reader)."""


class InputFileError(OSError):
    """A file that is not a regular file, is too large, or cannot be read; ``str()`` is one line."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{printable(os.fspath(path))}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[0])


# ------------------------------------------------------------------------------------------------ text
def printable(text: object, limit: int = 2000) -> str:
    """``text`` as one line with every control or undecodable character escaped (``\\n``, ``\\x1b``, …)."""
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    s = str(text)
    out = []
    for ch in s:
        code = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not valid UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif (
            unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")
            or ch in "\u202a\u202b\u202d\u202e\u2066\u2067\u2068\u2069"
        ):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    line = "".join(out)
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------------ reads
def kind_of(mode: int) -> str:
    """A word for a non-regular file type (``FIFO``, ``character device``, …)."""
    for test, name in (
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def check_regular(path: str | os.PathLike[str], max_bytes: int | None = None) -> os.stat_result:
    """``os.stat(path)`` (symlinks followed) if ``path`` is a regular file within ``max_bytes``.

    Raises :class:`InputFileError` (one line naming the file) otherwise; never opens the file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except PermissionError:
        raise InputFileError(path, "permission denied") from None
    except OSError as exc:  # ELOOP (symlink loop), ENAMETOOLONG, EIO, …
        raise InputFileError(path, exc.strerror or str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(path, f"is a {kind_of(st.st_mode)}, not a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        raise InputFileError(path, f"too large ({st.st_size:,} bytes; at most {max_bytes:,})")
    return st


def read_regular(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of regular file ``path`` (at most ``max_bytes``) or :class:`InputFileError`.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor, so a FIFO put in place
    between the check and the open cannot block, and a file that grows past the cap is refused."""
    check_regular(path, max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputFileError(path, exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(path, f"is a {kind_of(st.st_mode)}, not a regular file")
        chunks, total = [], 0
        while True:
            block = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if total > max_bytes:
                raise InputFileError(path, f"too large (more than {max_bytes:,} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        if isinstance(exc, InputFileError):
            raise
        raise InputFileError(path, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------ writes
def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read it the racy way, restoring it at once
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open(…, "w")`` would give a new file: ``0o666`` less the umask."""
    return 0o666 & ~_umask()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def resolve_target(path: str | os.PathLike[str]) -> tuple[Path, os.stat_result | None]:
    """Where writing ``path`` really goes: symlinks followed; with the target's ``stat`` (None: new file).

    Raises :class:`UnsafeTargetError` for a symlink loop or a target that cannot be examined."""
    p = Path(path)
    try:
        real = Path(os.path.realpath(p, strict=False)) if p.is_symlink() else p
    except (OSError, RuntimeError) as exc:
        raise UnsafeTargetError(errno.ELOOP, f"cannot follow the link ({exc})") from None
    try:
        return real, os.stat(real)
    except FileNotFoundError:
        return real, None
    except OSError as exc:
        raise UnsafeTargetError(exc.errno or errno.EIO, exc.strerror or str(exc)) from None


def _write_special(path: Path, st: os.stat_result, data: bytes) -> Path:
    if stat.S_ISDIR(st.st_mode):
        raise UnsafeTargetError(errno.EISDIR, "is a folder")
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        raise UnsafeTargetError(errno.EINVAL, f"is a {kind_of(st.st_mode)}; refusing to write to it")
    try:  # O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of hanging
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise UnsafeTargetError(errno.ENXIO, "FIFO has no reader") from None
        raise
    try:
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)
    return path


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[int], None]) -> Path:
    """Call ``write(fd)`` on a temp file beside ``path``'s real target, then move it into place.

    See the module docstring for symlinks and special files (``write`` then gets the device's fd)."""
    target, st = resolve_target(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeTargetError(errno.EISDIR, "is a folder")
        with tempfile.TemporaryFile() as fh:  # render to an unnamed temp file, then copy it over
            write(fh.fileno())
            fh.seek(0)
            data = fh.read()
        return _write_special(target, st, data)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(st.st_mode) if st is not None else new_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=target.parent)
    try:
        try:
            write(fd)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return Path(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` safely (see the module docstring); returns ``path``."""
    target, st = resolve_target(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_special(target, st, data)
        return Path(path)
    return atomic_write_with(path, lambda fd: _write_all(fd, data))


def clean_stale_temps(folder: str | os.PathLike[str]) -> int:
    """Remove temp files this module left in ``folder`` (call only while no writer can be active)."""
    n = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if (name.startswith(TMP_PREFIX) or name.startswith(".")) and name.endswith(TMP_SUFFIX):
            try:
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    n += 1
            except OSError:
                pass
    return n
