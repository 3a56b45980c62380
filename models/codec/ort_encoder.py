"""ONNX Runtime backend for the codec encoder (optional: the ``onnx`` extra; never in the bundle).

The encoder of a :class:`~models.codec.tagging_codec.TaggingCodec` is exported once per codec (the
codec id, its weights' sha256, names the file) to ``<cache>/onnx/encoder-<id>-<versions>.onnx`` with
torch's TorchScript exporter, its sha256 recorded beside it, and run by ONNX Runtime on the CPU. On this
machine it encodes 1.3–2.7× faster than torch with one thread, and far faster than torch with two
threads on a busy machine (docs/PERFORMANCE.md, "encoder backends").

:func:`attach_ort_encoder` is what the engine calls: it builds (or reuses) the ONNX file, checks the
ORT latents against torch on a fixed test signal (max abs difference ≤ :data:`CHECK_ATOL`, codes equal)
and only then sets the codec's ``encoder_backend``; any failure (no ``onnxruntime``, an export error, a
changed cache file, a mismatch) leaves torch in place and logs one line. ``ENCOTAG_ENCODER=torch``
turns the backend off, ``ENCOTAG_ENCODER=onnx`` asks for it even where the engine would not pick it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from models.codec.padded import encode_padded
from models.codec.tagging_codec import TaggingCodec
from models.tagging.onnx_files import GRAPH  # the graph version, shared with the pack's ONNX files

log = logging.getLogger(__name__)

CHECK_ATOL = 1e-4  # latents of order 1; measured differences are about 2e-6
OPSET = 17
MAX_ONNX_BYTES = 1 << 30


def backend_choice() -> str:
    """``ENCOTAG_ENCODER``: ``auto`` (default), ``onnx`` or ``torch``."""
    value = os.environ.get("ENCOTAG_ENCODER", "auto").strip().lower()
    return value if value in ("auto", "onnx", "torch") else "auto"


def cache_dir() -> Path:
    """``<user cache>/onnx`` (``$ENCOTAG_HOME/cache/onnx`` when set; the rule of ``app.paths.cache_dir``)."""
    from models.tagging.onnx_files import onnx_cache_dir

    return onnx_cache_dir()


class _EncoderGraph(nn.Module):
    def __init__(self, codec: TaggingCodec) -> None:
        super().__init__()
        self.codec = codec

    def forward(self, audio: Tensor, lengths: Tensor) -> Tensor:
        return encode_padded(self.codec, audio, lengths)


def export_encoder(codec: TaggingCodec) -> bytes:
    """The codec's encoder as ONNX bytes (:func:`models.codec.padded.encode_padded`): audio (B, 1, N)
    float32, N a multiple of the hop, and lengths (B,) int64 → latent (B, D, N / hop)."""
    x = torch.zeros(2, 1, codec.hop_length * 8)
    lengths = torch.tensor([codec.hop_length * 8, codec.hop_length * 8 - 1], dtype=torch.int64)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _EncoderGraph(codec).eval(),
            (x, lengths),
            buf,  # type: ignore[arg-type]  # a file object works (TorchScript exporter)
            input_names=["audio", "lengths"],
            output_names=["latent"],
            dynamic_axes={
                "audio": {0: "batch", 2: "samples"},
                "lengths": {0: "batch"},
                "latent": {0: "batch", 2: "frames"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    return buf.getvalue()


class OrtEncoder:
    """An ONNX Runtime session of an exported encoder; ``__call__(audio (B, 1, n)) → latent tensor``.

    The graph (version :data:`GRAPH`) encodes right-padded signals of given lengths as if each were alone
    (:mod:`models.codec.padded`): any length of at least :attr:`min_n` samples (7 frames) is padded to a
    multiple of the hop and cut back to ``ceil(n / hop)`` frames; shorter inputs go through the torch
    encoder, so every length gives the whole-signal encoding. :meth:`batched` runs several signals of
    different lengths in one call (:func:`models.codec.padded.latents`)."""

    def __init__(self, model: bytes, threads: int, codec: TaggingCodec) -> None:
        import onnxruntime as ort

        from models.codec.streaming import StreamingEncoder

        self.codec = codec
        self.hop = int(codec.hop_length)
        self.min_n = StreamingEncoder(codec).min_first
        self.calls = {"onnxruntime": 0, "torch": 0}

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.enable_cpu_mem_arena = False  # the arena kept every block size's buffers: +180 MB on 2 minutes
        opts.enable_mem_pattern = False
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def __call__(self, audio: Tensor) -> Tensor:
        n = audio.shape[-1]
        if n < self.min_n:
            self.calls["torch"] += 1
            return self.codec._encode_layers(audio)
        x = audio.detach().to(torch.float32).numpy()
        pad = -n % self.hop
        if pad:
            x = np.pad(x, ((0, 0), (0, 0), (0, pad)))
        lengths = np.full(x.shape[0], n, np.int64)
        return self.batched(np.ascontiguousarray(x), lengths)[..., : -(-n // self.hop)]

    def batched(self, audio: np.ndarray, lengths: np.ndarray) -> Tensor:
        """Latent (B, D, N / hop) of ``audio`` (B, 1, N) float32 (N a multiple of the hop) whose item ``b``
        is a signal of ``lengths[b]`` (int64, ≥ :attr:`min_n`) samples followed by padding."""
        self.calls["onnxruntime"] += 1
        feed = {"audio": np.ascontiguousarray(audio, np.float32), "lengths": np.asarray(lengths, np.int64)}
        return torch.from_numpy(self.session.run(None, feed)[0])


def _versions() -> str:
    import onnxruntime as ort

    raw = f"{torch.__version__}|{ort.__version__}|{OPSET}|{GRAPH}".encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def _cached_model(codec: TaggingCodec, codec_id: str, folder: Path) -> bytes:
    """The encoder's ONNX bytes from the cache (hash checked), else exported and written (atomic)."""
    from models.safeio import atomic_write_bytes, read_regular

    key = "".join(ch for ch in codec_id if ch.isalnum())[:64] or "unnamed"
    path = folder / f"encoder-{key}-{_versions()}.onnx"
    record = path.with_suffix(".sha256")
    if path.is_file() and record.is_file():
        data = read_regular(path, MAX_ONNX_BYTES)
        want = read_regular(record, 128).decode("ascii", "replace").strip()
        if hashlib.sha256(data).hexdigest() == want:
            return data
        log.warning("%s: changed since it was written; exporting the encoder again", path)
    data = export_encoder(codec)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
        atomic_write_bytes(record, hashlib.sha256(data).hexdigest().encode("ascii"))
    except OSError as exc:  # a read-only cache only costs the export next time
        log.warning("cannot cache the ONNX encoder: %s", exc)
    return data


def check_signal(sr: int, hop: int, frames: int = 40, extra: int = 0) -> Tensor:
    """The fixed test signal of the backend check (B = 2, a tone sweep and noise),
    (2, 1, frames · hop + extra) float32 at ``sr``."""
    rng = np.random.default_rng(27)
    t = np.arange(frames * hop + extra) / sr
    sweep = 0.4 * np.sin(2 * np.pi * (200 + 1500 * t) * t)
    noise = 0.2 * rng.standard_normal(len(t))
    return torch.from_numpy(np.stack([sweep, noise]).astype(np.float32)[:, None, :])


def agrees(codec: TaggingCodec, backend: Any, x: Tensor | None = None) -> tuple[bool, float]:
    """Whether ``backend`` gives torch's latents (within :data:`CHECK_ATOL`) and codes on ``x`` (default:
    the check signal at a multiple of the hop and at a length that is not one)."""
    hop = codec.hop_length
    xs = [check_signal(codec.sample_rate, hop), check_signal(codec.sample_rate, hop, 30, hop // 3)]
    same, diff = True, 0.0
    with torch.inference_mode():
        for xi in xs if x is None else [x]:
            ref = codec._encode_layers(xi)
            got = backend(xi)
            d = float((ref - got).abs().max()) if ref.shape == got.shape else float("inf")
            same = same and d <= CHECK_ATOL
            same = same and bool(torch.equal(codec.quantize_codes(ref), codec.quantize_codes(got)))
            diff = max(diff, d)
    return same, diff


def attach_ort_encoder(codec: TaggingCodec, codec_id: str, threads: int, folder: Path | None = None) -> bool:
    """Give ``codec`` the ONNX Runtime encoder if it is installed and agrees with torch; True if it did."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    try:
        backend = OrtEncoder(_cached_model(codec, codec_id, folder or cache_dir()), threads, codec)
        ok, diff = agrees(codec, backend)
    except Exception as exc:  # noqa: BLE001 - any failure keeps the torch encoder
        log.warning("ONNX Runtime encoder not used: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return False
    if not ok:
        log.warning("ONNX Runtime encoder not used: differs from torch (max %.2e)", diff)
        return False
    codec.encoder_backend = backend
    log.info("codec encoder: ONNX Runtime (%d threads; max difference to torch %.1e)", threads, diff)
    return True
