"""What an audio file's own header claims, read directly, to spot files cut short.

libsndfile reports the frames a truncated WAV *has*, not the frames its header claims, and an Ogg file
cut mid-stream as if it ended there. :func:`claimed_frames` reads the RIFF/RF64 ``data`` chunk size and
:func:`ogg_cut_short` checks that the last Ogg page is complete and carries the end-of-stream flag, so
:func:`models.audio.iter_audio` can warn that only part of a file was decoded. Both read at most 64 KiB
from an already-open regular file and never raise for malformed input (they return None / False).
"""

from __future__ import annotations

import os
import struct

_PROBE = 1 << 16


def _read_at(path: str | os.PathLike[str], offset: int, n: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(max(0, offset))
        return fh.read(n)


def claimed_frames(path: str | os.PathLike[str], block_align: int) -> int | None:
    """Frames the ``data`` chunk of a RIFF/RIFX WAV says it holds, or None (not a WAV, size unknown)."""
    try:
        head = _read_at(path, 0, _PROBE)
    except OSError:
        return None
    if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RIFX"):
        return None
    order = "<" if head[:4] == b"RIFF" else ">"
    pos = 12
    while pos + 8 <= len(head):
        cid = head[pos : pos + 4]
        (size,) = struct.unpack(order + "I", head[pos + 4 : pos + 8])
        if cid == b"data":
            if size in (0, 0xFFFFFFFF) or block_align <= 0:  # streaming writers leave it unset
                return None
            return size // block_align
        pos += 8 + size + (size & 1)
    return None


def ogg_cut_short(path: str | os.PathLike[str]) -> bool:
    """True if the file's last Ogg page is incomplete or lacks the end-of-stream flag."""
    try:
        size = os.path.getsize(path)
        tail = _read_at(path, size - _PROBE, _PROBE)
    except OSError:
        return False
    base = max(0, size - _PROBE)
    at = tail.rfind(b"OggS")
    while at >= 0:
        page = tail[at:]
        if len(page) >= 27 and page[4] == 0:  # stream structure version 0: a real page header
            nseg = page[26]
            if len(page) < 27 + nseg:
                return True
            body = sum(page[27 : 27 + nseg])
            if base + at + 27 + nseg + body > size:
                return True  # the page runs past the end of the file
            return not page[5] & 0x04
        at = tail.rfind(b"OggS", 0, at)
    return False
