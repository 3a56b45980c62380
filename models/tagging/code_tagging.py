"""Tagging from codec codes: encode audio to a code stream and tag windows of codes.

A codec pack's tagger reads the quantized latent, i.e. the codes. Tagging a file therefore only needs
the codes **once**: :func:`iter_codes` encodes the file block by block (bounded memory; each block with
``context_s`` of the audio before it, whose frames are dropped, so joins see left context as in a
whole-file encode — the encoder is causal), and :func:`code_windower` (a
:class:`models.tagging.windows.Windower` over frames) cuts the code stream into the pack's windows, like
``tag_file`` cuts audio. With overlapping windows (1 s every 0.25 s) this encodes
each second of audio once instead of four times; the tagger was distilled on windows sliced from the
codes of whole 10 s clips, which is what this gives.

Window convention (:mod:`models.tagging.windows`, as ``models.tagging.pipeline.tag_file``):
windows of ``win_n`` samples start at 0, hop, 2·hop, …; one padded window covers an uncovered tail
(or a stream shorter than a window). Window ``[s, s + win_n)`` uses latent frames
``[round(s / hop_length), … + round(win_n / hop_length))``; frames past the end are filled with the
codes of silence.

- :func:`encode_file` → :class:`~models.codec.codes.CodeStream` (``encotag encode``),
- :func:`tag_codes` (a loaded ``.ecodes`` stream; ``encotag tag FILE.ecodes``),
- :func:`tag_audio_codes` (an audio file through its codes; what ``tag_file`` runs for codec packs).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from models.codec.codes import CodesError, CodeStream, check_stream
from models.tagging.results import Progress, WindowResult
from models.tagging.windows import (
    CODE_LOOKAHEAD,
    CodecEngineLike,
    Windower,
    count_windows,
    is_cancelled,
    uses_codes,
    window_samples,
)

ENCODE_BLOCK_S = 10.0
CONTEXT_S = 1.0
CODE_BUFFER_FRAMES = 1024  # the code windower's buffer beyond one window (about 14 s at 75 frames/s)


def _codec(engine: Any, what: str) -> Any:
    if not uses_codes(engine):
        raise CodesError(f"{what}: needs a codec pack; {engine.info.name} is a mel pack")
    return engine.codec


def code_windower(engine: CodecEngineLike, win_n: int, hop_n: int, what: str = "code windows") -> Windower:
    """The :class:`~models.tagging.windows.Windower` of ``engine``'s codes (codec packs): windows of frames,
    emitted once the audio covers them, padded with the codes of silence."""
    hop = int(_codec(engine, what).hop_length)
    return Windower(
        win_n,
        hop_n,
        unit=hop,
        capacity=max(1, round(win_n / hop)) + CODE_LOOKAHEAD + CODE_BUFFER_FRAMES,
        lookahead=CODE_LOOKAHEAD,
        silence=lambda: engine.silence_codes(win_n),
    )


def iter_codes(
    engine: Any,
    path: str | os.PathLike[str],
    block_s: float = ENCODE_BLOCK_S,
    context_s: float = CONTEXT_S,
    *,
    stats: dict[str, int] | None = None,
) -> Iterator[np.ndarray]:
    """Codes ``(n_q, f)`` int64 of an audio file, block by block, in order (ceil(n / hop) frames in all).

    ``stats`` receives ``n_samples`` (engine-rate samples), ``frames_in`` and ``peak_block_frames`` (of
    the decoder) once the file is done. Raises ``models.audio.AudioError`` for unreadable files.
    """
    from models.audio import iter_audio

    codec = _codec(engine, str(path))
    sr, hop = int(engine.sample_rate), int(codec.hop_length)
    block_n = max(1, round(block_s * sr / hop)) * hop
    ctx_n = max(0, round(context_s * sr / hop)) * hop
    pending = np.zeros(0, np.float32)
    context = np.zeros(0, np.float32)
    n_samples = 0
    io: dict[str, int] = {}

    def encode(block: np.ndarray) -> np.ndarray:
        nonlocal context
        x = np.concatenate([context, block])
        codes = engine.encode(x[None])[0]
        context = x[-ctx_n:] if ctx_n else np.zeros(0, np.float32)
        return np.asarray(codes[:, -(-len(x) // hop) - (-(-len(block) // hop)) :], dtype=np.int64)

    for chunk in iter_audio(path, sr, stats=io):
        n_samples += len(chunk)
        pending = np.concatenate([pending, chunk])
        while len(pending) >= block_n:
            yield encode(pending[:block_n])
            pending = pending[block_n:]
    if len(pending):
        yield encode(pending)
    if stats is not None:
        stats.update(io, n_samples=n_samples)


def encode_file(engine: Any, path: str | os.PathLike[str], block_s: float = ENCODE_BLOCK_S) -> CodeStream:
    """The whole file's :class:`CodeStream` (see :func:`iter_codes`; the codes themselves are small:
    8 int16 per 13.3 ms at 6 kbps, about 4 MB per hour)."""
    codec = _codec(engine, str(path))
    st: dict[str, int] = {}
    parts = list(iter_codes(engine, path, block_s, stats=st))
    n_q = int(codec.n_q)
    codes = np.concatenate(parts, axis=1) if parts else np.zeros((n_q, 0), np.int64)
    return CodeStream(
        codes=codes,
        codec_id=engine.codec_id,
        bandwidth=float(codec.cfg.bandwidth),
        frame_rate=float(codec.frame_rate),
        sample_rate=int(engine.sample_rate),
        n_samples=int(st.get("n_samples", 0)),
    )


def _tag_blocks(
    engine: Any,
    blocks: Iterable[np.ndarray],
    n_samples: Callable[[], int],
    window: Any,
    head: Any,
    *,
    batch_size: int,
    progress: Callable[[Progress], Any] | None,
    cancel: Any,
    est_total: int,
    name: str,
) -> Iterator[WindowResult]:
    window = window or engine.window
    sr = int(engine.sample_rate)
    win_n, hop_n = window_samples(window, sr)
    cw = code_windower(engine, win_n, hop_n, name)
    ks: list[int] = []
    wins: list[np.ndarray] = []
    done = 0

    def run_batch() -> list[WindowResult]:
        nonlocal done
        probs, emb = engine.infer_codes(np.stack(wins))
        head_probs = np.asarray(head.predict(emb), np.float32) if head is not None else None
        total = n_samples() or 0
        out = [
            WindowResult(
                start=k * hop_n / sr,
                end=(k * hop_n + win_n if not total else min(k * hop_n + win_n, total)) / sr,
                probs=np.asarray(probs[i], np.float32),
                embedding=np.asarray(emb[i], np.float32),
                head_probs=None if head_probs is None else head_probs[i],
            )
            for i, k in enumerate(ks)
        ]
        done += len(ks)
        ks.clear()
        wins.clear()
        if progress is not None:
            progress(Progress(done, max(est_total, done), name))
        return out

    for block in blocks:
        for k, w in cw.feed(block):
            ks.append(k)
            wins.append(w.copy())  # a view into the windower's buffer
            if len(ks) == batch_size:
                yield from run_batch()
                if is_cancelled(cancel):
                    return
    for k, w in cw.finish(n_samples()) if cw.fed else ():  # no codes at all: no windows
        ks.append(k)
        wins.append(w.copy())
        if len(ks) == batch_size:
            yield from run_batch()
            if is_cancelled(cancel):
                return
    if ks:
        yield from run_batch()


def tag_codes(
    engine: Any,
    stream: CodeStream,
    window: Any = None,
    head: Any = None,
    *,
    batch_size: int = 8,
    progress: Callable[[Progress], Any] | None = None,
    cancel: Any = None,
) -> Iterator[WindowResult]:
    """:class:`WindowResult` per window of a code stream made by ``engine``'s codec."""
    codec = _codec(engine, "tag_codes")
    if stream.codec_id != engine.codec_id:
        raise CodesError(f"code stream made by codec {stream.codec_id}, not {engine.codec_id}")
    check_stream(stream, codec, int(engine.sample_rate), "code stream")
    win_n, hop_n = window_samples(window or engine.window, int(engine.sample_rate))
    n = int(stream.n_samples)
    blocks = [np.asarray(stream.codes, np.int64)] if stream.codes.shape[1] else []
    return _tag_blocks(
        engine,
        blocks,
        lambda: n,
        window,
        head,
        batch_size=batch_size,
        progress=progress,
        cancel=cancel,
        est_total=count_windows(max(n, 1), win_n, hop_n),
        name="code stream",
    )


def tag_audio_codes(
    engine: Any,
    path: str | os.PathLike[str],
    window: Any = None,
    head: Any = None,
    progress: Callable[[Progress], Any] | None = None,
    cancel: Any = None,
    *,
    batch_size: int = 8,
    stats: Any = None,
) -> Iterator[WindowResult]:
    """Tag an audio file through its codes (encoded once, see the module docstring); ``stats`` is a
    ``models.tagging.pipeline.TagStats`` to fill. Raises ``models.audio.AudioError`` for unreadable files."""
    from models.audio import probe

    sr = int(engine.sample_rate)
    win_n, hop_n = window_samples(window or engine.window, sr)
    info = probe(path)
    est = count_windows(math.ceil(info.frames * sr / info.sample_rate), win_n, hop_n)
    st: dict[str, int] = {}
    results = _tag_blocks(
        engine,
        iter_codes(engine, path, stats=st),
        lambda: int(st.get("n_samples", 0)),
        window,
        head,
        batch_size=batch_size,
        progress=progress,
        cancel=cancel,
        est_total=est,
        name=os.fspath(path),
    )
    n = 0
    for r in results:
        n += 1
        yield r
    if stats is not None:
        stats.windows = n
        stats.samples = int(st.get("n_samples", 0))
        stats.frames_in = int(st.get("frames_in", 0))
        stats.peak_block_frames = int(st.get("peak_block_frames", 0))
        stats.truncated = bool(st.get("truncated", 0))
        stats.frames_expected = int(st.get("frames_expected", 0))
