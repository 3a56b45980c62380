"""Downloading a published file: sha256-verified, cancellable, never a partial file.

Rules of :func:`fetch_file` (the tests run them against a local HTTP server on 127.0.0.1):

- the file goes to a temporary ``.part`` file beside the destination and is renamed into place only when
  its byte count and sha256 match; a corrupt, truncated, oversized or cancelled download is deleted, so
  there is never a partial file under the final name;
- a file already at the destination (downloaded before, or put there by hand) is used when its sha256
  matches, and refused with a one-line message when it does not;
- every failure raises :class:`FetchError`, one line naming the file, the URL and where to put the file
  by hand; a cancel raises :class:`FetchCancelled`.

Used by :mod:`models.packs.fetch` (known packs) and :mod:`models.codec.official` (its cancel).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.packs.pack_read import sha256_file
from models.tagging.windows import CancelFlag, is_cancelled

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]  # (done bytes, total bytes; 0 = unknown)
Opener = Callable[[str], Any]  # url -> response with .headers, .read(n), .close()
CHUNK = 1 << 16
TIMEOUT_S = 30.0
MAX_DOWNLOAD_BYTES = 1 << 30  # nothing Encotag fetches is near 1 GiB


class FetchError(RuntimeError):
    """A download failed or did not verify; the message is one line naming the URL and the path."""


class FetchCancelled(Exception):  # noqa: N818 - a cancel, not an error
    """The download was cancelled; nothing was left behind."""


def _urlopen(url: str) -> Any:
    req = urllib.request.Request(url, headers={"User-Agent": "encotag"})
    return urllib.request.urlopen(req, timeout=TIMEOUT_S)  # noqa: S310 - http(s) URLs of known files


def by_hand(name: str, url: str, dest: Path) -> str:
    """The sentence that tells the user how to fetch ``name`` themselves."""
    return f"download {url} by hand and put it at {dest} (the file {name})"


def fetch_file(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    size: int = 0,
    progress: ProgressFn | None = None,
    cancel: CancelFlag = None,
    opener: Opener | None = None,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> str:
    """Make sure ``dest`` holds the file at ``url`` with this ``sha256`` (and ``size`` when > 0).

    Uses a file already at ``dest`` if it verifies; otherwise downloads (module docstring). Returns the
    sha256. Raises :class:`FetchError` or :class:`FetchCancelled`; never leaves a partial file.
    """
    dest = Path(dest)
    if dest.is_file():
        got = sha256_file(dest)
        if sha256 is None or got == sha256:
            return got
        raise FetchError(
            f"{dest}: sha256 {got} is not the expected {sha256}; "
            f"delete it, or {by_hand(dest.name, url, dest)}"
        )
    try:
        return _download(url, dest, sha256, size, progress, cancel, opener, max_bytes)
    except (FetchError, FetchCancelled):
        raise
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, timeouts, refused, bad URLs
        reason = " ".join(str(getattr(exc, "reason", None) or exc).split()) or type(exc).__name__
        raise FetchError(f"cannot download {dest.name} ({reason}): {by_hand(dest.name, url, dest)}") from None


def _download(
    url: str,
    dest: Path,
    sha256: str | None,
    size: int,
    progress: ProgressFn | None,
    cancel: CancelFlag,
    opener: Opener | None,
    max_bytes: int,
) -> str:
    def refuse(reason: str) -> FetchError:
        return FetchError(f"{dest.name} refused ({reason}): {by_hand(dest.name, url, dest)}")

    if is_cancelled(cancel):
        raise FetchCancelled
    dest.parent.mkdir(parents=True, exist_ok=True)
    resp = (opener or _urlopen)(url)
    try:
        headers = getattr(resp, "headers", None)
        declared = int(headers.get("Content-Length") or 0) if headers is not None else 0
        if declared < 0 or declared > max_bytes or (size and declared and declared != size):
            raise refuse(f"the server offers {declared} bytes, expected {size or f'at most {max_bytes}'}")
        total = size or declared
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            done = 0
            with os.fdopen(fd, "wb") as out:
                if progress is not None:
                    progress(0, total)
                while block := resp.read(CHUNK):
                    if is_cancelled(cancel):
                        raise FetchCancelled
                    done += len(block)
                    if done > max_bytes or (size and done > size):
                        raise refuse(f"more than {size or max_bytes} bytes")
                    out.write(block)
                    digest.update(block)
                    if progress is not None:
                        progress(done, total)
            if is_cancelled(cancel):
                raise FetchCancelled
            if (size and done != size) or (declared and done != declared):
                raise refuse(f"truncated download: {done} of {size or declared} bytes")
            got = digest.hexdigest()
            if sha256 is not None and got != sha256:
                raise refuse(f"corrupt download: sha256 {got}, expected {sha256}")
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    finally:
        resp.close()
    log.info("downloaded %s to %s (%d bytes, sha256 %s)", url, dest, done, got)
    return got
