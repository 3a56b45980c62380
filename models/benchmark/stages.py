"""Per-stage and end-to-end measurements of one pack, run inside one worker process.

Stages (audio seconds per compute second = real-time factor, RTF; batch 1 unless stated):

- ``decode``: soundfile reads the whole clip (44.1 kHz mono 16-bit WAV);
- ``resample``: soxr HQ from 44.1 kHz to the engine's rate (24 kHz codec, 32 kHz mel);
- ``frontend``: what turns audio into the tagger's input — codec packs: ``encoder`` (EnCodec conv +
  LSTM encoder) and ``rvq`` (residual vector quantizer encode + unembed), mel packs: ``log-mel``;
- ``tagger``: the MobileNetV3 (+ its latent front end) on that input;
- ``heads``: a personal head (logistic regression) on the windows' embeddings;
- ``clip``: ``Engine.infer`` on the whole clip as one window (what the reference figures measure);
- ``file``: ``tag_file`` over the clip (the pack's 1 s windows every 0.25 s, batched — what
  ``encotag tag`` runs), ``codes_clip`` / ``codes_file``: the same from a ``.ecodes`` code stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from models.benchmark.timing import Timing, peak_rss_mb, rss_mb, time_call

log = logging.getLogger(__name__)

DECODE_SR = 44100


def _row(stage: str, audio_s: float, t: Timing, **extra: Any) -> dict[str, Any]:
    return {
        "stage": stage,
        "audio_s": audio_s,
        "best_s": t.best,
        "median_s": t.median,
        "repeats": t.repeats,
        "rtf": t.rtf(audio_s),
        **extra,
    }


def _random_head(engine: Any) -> Any:
    from models.heads.heads import train_head

    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, engine.embedding_size)).astype(np.float32)
    y = np.repeat(np.arange(3), 20)
    head, _ = train_head(x, y, ["a", "b", "c"], c_grid=(1.0,), n_folds=2)
    return head


class _AudioWindowsEngine:
    """``engine`` without ``infer_codes``: ``tag_file`` then encodes every window's audio separately
    (the file path before encode-once; measured for comparison)."""

    def __init__(self, engine: Any) -> None:
        self.sample_rate, self.window, self.infer = engine.sample_rate, engine.window, engine.infer


def stage_rows(
    engine: Any, clip_path: Path, *, repeat: int, budget_s: float, unfused_tagger: Any = None
) -> list[dict[str, Any]]:
    """Per-stage timings of ``engine`` on the clip at ``clip_path`` (44.1 kHz WAV). ``unfused_tagger``
    (the pack's tagger as loaded, before ``optimize_for_inference``) adds a ``tagger_unfused`` row."""
    import soundfile as sf
    import torch

    from models.audio import resample
    from models.codec.codes import CodeStream, load_codes, save_codes
    from models.tagging.code_tagging import tag_codes
    from models.tagging.pipeline import tag_file

    def timed(fn: Callable[[], Any]) -> Timing:
        return time_call(fn, repeat=repeat, budget_s=budget_s)

    info = sf.info(str(clip_path))
    dur = info.frames / info.samplerate
    rows = [_row("decode", dur, timed(lambda: sf.read(str(clip_path), dtype="float32")))]
    raw, _ = sf.read(str(clip_path), dtype="float32")
    rows.append(_row("resample", dur, timed(lambda: resample(raw, info.samplerate, engine.sample_rate))))
    audio = resample(raw, info.samplerate, engine.sample_rate)
    x = torch.from_numpy(audio)[None]
    tagger = engine.tagger
    with torch.inference_mode():
        if engine.codec is not None:
            codec = engine.codec
            rows.append(_row("encoder", dur, timed(lambda: codec.embed(x))))
            emb = codec.embed(x)
            rows.append(_row("rvq", dur, timed(lambda: codec.unembed(codec.quantize_codes(emb)))))
            tag_in = codec.unembed(codec.quantize_codes(emb))
            rows.append(_row("tagger", dur, timed(lambda: tagger(tag_in))))
            if unfused_tagger is not None:
                rows.append(_row("tagger_unfused", dur, timed(lambda: unfused_tagger(tag_in))))
        else:
            rows.append(_row("log-mel", dur, timed(lambda: tagger.frontend(x))))
            image = tagger.frontend(x)
            rows.append(_row("tagger", dur, timed(lambda: tagger.net(image))))
            if unfused_tagger is not None:
                rows.append(_row("tagger_unfused", dur, timed(lambda: unfused_tagger.net(image))))
    rows.append(_row("clip", dur, timed(lambda: engine.infer(audio[None]))))
    n_windows = sum(1 for _ in tag_file(engine, clip_path))
    _, emb_w = engine.infer(np.zeros((n_windows, engine.sample_rate), np.float32))
    head = _random_head(engine)
    rows.append(_row("heads", dur, timed(lambda: head.predict(emb_w)), windows=n_windows))
    rows.append(_row("file", dur, timed(lambda: list(tag_file(engine, clip_path))), windows=n_windows))
    if engine.codec is not None:
        codes = engine.encode(audio[None])[0]
        codes_path = clip_path.with_suffix(f".{engine.codec_id[:12]}.ecodes")
        stream = CodeStream(
            codes=codes,
            codec_id=engine.codec_id,
            bandwidth=engine.codec.cfg.bandwidth,
            frame_rate=engine.codec.frame_rate,
            sample_rate=engine.sample_rate,
            n_samples=len(audio),
        )
        save_codes(codes_path, stream)

        def from_codes_clip() -> Any:
            s = load_codes(codes_path, codec_id=engine.codec_id)
            return engine.infer_codes(s.codes[None])

        def from_codes_file() -> Any:
            s = load_codes(codes_path, codec_id=engine.codec_id)
            return list(tag_codes(engine, s))

        per_window = _AudioWindowsEngine(engine)
        rows.append(_row("file_per_window", dur, timed(lambda: list(tag_file(per_window, clip_path)))))
        rows.append(_row("codes_clip", dur, timed(from_codes_clip)))
        rows.append(_row("codes_file", dur, timed(from_codes_file), windows=n_windows))
    return rows


def scaling_rows(
    engine: Any, lengths_s: list[float], batches: list[int], *, repeat: int, budget_s: float
) -> list[dict[str, Any]]:
    """``Engine.infer`` cost vs clip length (batch 1) and vs batch size (1 s windows)."""
    from models.benchmark.live import synthetic_signal

    sr = engine.sample_rate
    rows = []
    for s in lengths_s:
        x = synthetic_signal(sr, s)[None]
        t = time_call(partial(engine.infer, x), repeat=repeat, budget_s=budget_s)
        rows.append(_row("length", s, t, length_s=s, batch=1, ms_per_item=1000 * t.best))
    one = synthetic_signal(sr, 1.0)
    for b in batches:
        x = np.repeat(one[None], b, axis=0)
        old = engine.batch_size
        engine.batch_size = max(old, b)
        t = time_call(partial(engine.infer, x), repeat=repeat, budget_s=budget_s)
        engine.batch_size = old
        rows.append(_row("batch", float(b), t, length_s=1.0, batch=b, ms_per_item=1000 * t.best / b))
    return rows


def long_file_row(engine: Any, path: Path) -> dict[str, Any]:
    """One pass of ``tag_file`` over an hour-long file: RTF and how much memory the pass added."""
    import soundfile as sf

    from models.tagging.pipeline import TagStats, tag_file

    dur = sf.info(str(path)).duration
    before = rss_mb()
    stats = TagStats()
    t0 = time.perf_counter()
    n = sum(1 for _ in tag_file(engine, path, stats=stats))
    t = time.perf_counter() - t0
    return _row(
        "long_file",
        dur,
        Timing(t, t, 1),
        windows=n,
        rss_before_mb=before,
        rss_after_mb=rss_mb(),
        peak_rss_mb=peak_rss_mb(),
        buffer_samples=stats.buffer_capacity,
    )


def folder_row(engine: Any, files: list[Path]) -> dict[str, Any]:
    """Tag every file in ``files`` once as ``encotag tag FOLDER`` does (short files decoded ahead in a
    thread and tagged in groups, :func:`models.tagging.folder.tag_many`; long ones streamed): files/s, RTF."""
    import soundfile as sf

    from models.tagging.folder import tag_many
    from models.tagging.pipeline import tag_file

    total = sum(sf.info(str(p)).duration for p in files)
    t0 = time.perf_counter()
    for item in tag_many(engine, files):
        if item.results is None and item.error is None:
            for _ in tag_file(engine, item.path):
                pass
    t = time.perf_counter() - t0
    return _row("folder", total, Timing(t, t, 1), files=len(files), files_per_s=len(files) / t)


def folder_one_by_one_row(engine: Any, files: list[Path]) -> dict[str, Any]:
    """The same files through ``tag_file`` one after another (the folder path before decode-ahead and
    groups; a codec's short files still use its ONNX Runtime encoder where the engine has it)."""
    import soundfile as sf

    from models.tagging.pipeline import tag_file

    total = sum(sf.info(str(p)).duration for p in files)
    t0 = time.perf_counter()
    for p in files:
        for _ in tag_file(engine, p):
            pass
    t = time.perf_counter() - t0
    return _row("folder_one_by_one", total, Timing(t, t, 1), files=len(files), files_per_s=len(files) / t)


def live_row(engine: Any, seconds: float) -> dict[str, Any]:
    """The live path at 48 kHz in real time for ``seconds``: compute per hop and latency."""
    from models.benchmark.live import LiveProbe, synthetic_signal

    probe = LiveProbe(engine, synthetic_signal(48000, 20.0), 48000)
    probe.start()
    try:
        probe.measure(engine.window.window_s + min(2.0, seconds / 4))  # fill one window, warm up
        stats = probe.measure(seconds)
    finally:
        probe.stop()
    return {"stage": "live", "audio_s": stats.seconds, "hop_s": engine.window.hop_s, **stats.summary()}


def onnx_engine_rows(
    engine: Any,
    clip_path: Path,
    files: list[Path],
    live_s: float,
    *,
    threads: int,
    repeat: int,
    budget_s: float,
) -> dict[str, Any] | None:
    """The torch-free engine (:mod:`models.tagging.onnx_engine`) of ``engine``'s pack, exported into a
    temporary cache: its ``clip``, ``file``, folder and live rows, as the torch engine's above; ``None``
    when ``onnxruntime`` is missing or the pack is not exported (mel packs are, the official codec is not)."""
    import tempfile

    import soundfile as sf

    from models.tagging.onnx_engine import OnnxEngine
    from models.tagging.onnx_export import export_onnx_pack
    from models.tagging.onnx_files import read_folder
    from models.tagging.pipeline import tag_file

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    from models.packs.pack_read import read_manifest

    with tempfile.TemporaryDirectory(prefix="encotag-bench-onnx-") as tmp:
        folder = export_onnx_pack(engine, Path(tmp))
        files_ = read_folder(folder, engine.info.pack_id) if folder is not None else None
        if files_ is None:
            return None
        onnx = OnnxEngine(read_manifest(engine.pack.path), files_, threads=threads)
    from models.audio import resample

    info = sf.info(str(clip_path))
    dur = info.frames / info.samplerate
    raw, _ = sf.read(str(clip_path), dtype="float32")
    audio = resample(raw, info.samplerate, onnx.sample_rate)
    out: dict[str, Any] = {"streams": onnx.stream_encoder() is not None}

    def timed(fn: Callable[[], Any]) -> Timing:
        return time_call(fn, repeat=repeat, budget_s=budget_s)

    out["clip"] = _row("clip", dur, timed(lambda: onnx.infer(audio[None])))
    list(tag_file(onnx, clip_path))  # warm-up
    out["file"] = _row("file", dur, timed(lambda: list(tag_file(onnx, clip_path))))
    if files:
        out["folder"] = folder_row(onnx, files)
    if live_s > 0:
        out["live"] = live_row(onnx, live_s)
    return out
