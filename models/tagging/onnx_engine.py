"""A pack's tagger without torch: ONNX Runtime sessions, the RVQ and the log-mel in numpy.

:func:`load_onnx_engine` reads the pack's manifest (:mod:`models.packs.pack_read`: sha256 of every
weight file checked, no torch) and the pack's ONNX files from the user cache (:mod:`onnx_files`: every
sha256 checked, written by :mod:`onnx_export` after the torch engine verified them). It imports neither
torch nor ``transformers``: about 1 s to the first tags where ``import torch`` alone takes 16–20 s on a
busy machine (docs/PERFORMANCE.md). It returns ``None`` (the caller loads the torch engine, which
exports the files) when ``onnxruntime`` is not installed, the files are not there or any hash differs.

:class:`OnnxEngine` has what tagging needs of :class:`models.tagging.engine.Engine` (``infer``,
``encode``, ``infer_codes``, ``silence_codes``; windows as :mod:`models.tagging.windows`), so
``tag_file``, the code windows and ``StreamTagger`` run unchanged; ``stream_encoder`` streams through the
step graph (:mod:`models.tagging.onnx_stream`) where the cache has one. Not here: ``timestamp_embeddings``.

Shapes: audio ``(B, n)`` float32 at ``sample_rate`` (24 kHz codec, 32 kHz mel); codes ``(B, n_q, T)``
int64, ``T = ceil(n / hop)``; probs ``(B, n_labels)``, embeddings ``(B, D)`` float32. Codec inputs
shorter than the encoder's reflections need (``min_n``, 93 ms at 24 kHz) are zero-padded to it and
their frames cut back, where the torch engine pads inside the layers instead: such codes may differ.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.config import CodecConfig, PackInfo, WindowConfig
from models.tagging.onnx_files import STREAM_VERSION, OnnxFiles, pack_folder, read_folder
from models.tagging.windows import EngineError, cached_silence_codes

log = logging.getLogger(__name__)

MIN_SECONDS = 0.05  # as models.tagging.engine: shorter inputs are zero-padded to this length


def engine_choice() -> str:
    """``ENCOTAG_ENGINE``: ``auto`` (default: ONNX Runtime where its files are cached), ``torch``."""
    value = os.environ.get("ENCOTAG_ENGINE", "auto").strip().lower()
    return value if value in ("auto", "torch") else "auto"


def _session(model: bytes, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def codebook_norms(codebooks: np.ndarray) -> np.ndarray:
    """Squared norms ``(n_q, size)`` float32 of the codewords (what :func:`rvq_codes` adds per row)."""
    return np.stack([(embed.T * embed.T).sum(0) for embed in codebooks])


def rvq_codes(latent: np.ndarray, codebooks: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
    """Residual VQ: latent ``(B, D, T)`` float32, codebooks ``(n_q, size, D)`` → codes ``(B, n_q, T)``
    int64; the arithmetic of ``TaggingCodec.quantize_codes`` (nearest codeword by squared distance,
    ``|r|² - 2 r·e + |e|²`` summed in that order, the first of equal distances), computed in place.
    ``norms``: :func:`codebook_norms` of ``codebooks`` (computed here when not given)."""
    b, d, t = latent.shape
    norms = codebook_norms(codebooks) if norms is None else norms
    residual = np.ascontiguousarray(latent.transpose(0, 2, 1).reshape(-1, d), np.float32)
    codes = np.empty((codebooks.shape[0], b * t), np.int64)
    for q, embed in enumerate(codebooks):
        dist = residual @ embed.T
        dist *= -2.0
        dist += (residual * residual).sum(1, keepdims=True)
        dist += norms[q]
        idx = dist.argmin(axis=1)
        residual -= embed[idx]
        codes[q] = idx
    return codes.reshape(codebooks.shape[0], b, t).transpose(1, 0, 2).copy()


def unembed(codes: np.ndarray, codebooks: np.ndarray) -> np.ndarray:
    """Codes ``(B, n_q, T)`` → quantized latent ``(B, D, T)`` float32 (sum of the codewords)."""
    if codes.ndim != 3 or codes.shape[1] > codebooks.shape[0]:
        raise EngineError(f"codes must be (B, ≤{codebooks.shape[0]}, T), got shape {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= codebooks.shape[1]):
        raise EngineError(f"codes out of range 0..{codebooks.shape[1] - 1}")
    out = np.zeros((codes.shape[0], codebooks.shape[2], codes.shape[2]), np.float32)
    for q in range(codes.shape[1]):
        out += codebooks[q][codes[:, q]].transpose(0, 2, 1)
    return out


def log_mel(
    audio: np.ndarray, mel_basis: np.ndarray, window: np.ndarray, n_fft: int, hop: int, pre: float
) -> np.ndarray:
    """EfficientAT's log-mel (``models.nets.frontends.MelFrontend``) in numpy: audio ``(B, n)`` float32 →
    image ``(B, 1, n_mels, (n - 1) // hop + 1)`` float32; needs ``n ≥ n_fft // 2 + 2``."""
    if audio.shape[1] < n_fft // 2 + 2:
        raise EngineError(f"audio too short for the mel front end: {audio.shape[1]} samples")
    x = audio[:, 1:] - pre * audio[:, :-1]
    x = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    win = np.zeros(n_fft, np.float32)
    off = (n_fft - len(window)) // 2
    win[off : off + len(window)] = window
    n_frames = 1 + (x.shape[1] - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=1)[:, ::hop][:, :n_frames]
    spec = np.fft.rfft(frames * win, axis=-1)  # (B, T, n_fft // 2 + 1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = np.log(np.matmul(mel_basis, power.transpose(0, 2, 1)) + 1e-5)
    return ((mel + 4.5) / 5.0)[:, None].astype(np.float32)


@dataclass(frozen=True)
class CodecGeometry:
    """What tagging reads of a codec (``hop_length``, ``n_q``, ``cfg``, rates), without the codec."""

    cfg: CodecConfig
    n_q: int
    hop_length: int
    sample_rate: int

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length


class OnnxEngine:
    """A pack's tagger (and encoder) as ONNX Runtime sessions; the attributes of ``Engine`` that tagging
    reads (``info``, ``sample_rate``, ``labels``, ``embedding_size``, ``window``, ``codec``, ``codec_id``,
    ``timestamp_hop_ms``, ``encoder_backend``)."""

    backend = "onnxruntime"

    def __init__(self, pm: Any, files: OnnxFiles, threads: int = 1, batch_size: int = 16) -> None:
        rec, arrays = files.record, files.arrays()
        layout = tuple((str(p), int(s)) for p, s in rec["embedding_layout"])
        self.info: PackInfo = pm.info(layout, int(rec["embedding_size"]))
        self.sample_rate: int = self.info.sample_rate
        self.labels = self.info.labels
        self.embedding_size = self.info.embedding_size
        self.window: WindowConfig = pm.window
        self.batch_size = max(1, int(batch_size))
        self.timestamp_hop_ms = float(rec["timestamp_hop_ms"])
        self.codec_id = pm.codec_id
        self.tagger = _session(files.data["tagger.onnx"], threads)
        self.codec: CodecGeometry | None = None
        self.encoder: Any = None
        self._silence: dict[int, np.ndarray] = {}
        self._threads = max(1, int(threads))
        # the step graph of models.codec.stream_graph, version 2 (latent and codes); others are not used
        stream_ok = rec.get("stream_version") == STREAM_VERSION
        self._stream_bytes: bytes | None = files.data.get("stream.onnx") if stream_ok else None
        self._stream_states = [(str(n), tuple(s)) for n, s in rec.get("stream_states", [])]
        self._stream_session: Any = None
        if rec["kind"] == "codec":
            self.codebooks = arrays["codebooks"][: int(rec["n_q"])]
            self.norms = codebook_norms(self.codebooks)
            self.codec = CodecGeometry(
                pm.codec_cfg, int(rec["n_q"]), int(rec["hop_length"]), self.sample_rate
            )
            self.encoder = _session(files.data["encoder.onnx"], threads)
            self.min_n = int(rec["min_n"])
        else:
            self.mel_basis, self.mel_window = arrays["mel_basis"], arrays["window"]
            self.mel_cfg = pm.mel_cfg
        self.encoder_backend = "onnxruntime" if self.codec is not None else "none"

    @property
    def is_codec_pack(self) -> bool:
        return self.codec is not None

    def _audio(self, audio: np.ndarray) -> np.ndarray:
        x = np.asarray(audio, dtype=np.float32)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] == 0:
            raise EngineError(f"audio must be (B, n) with n > 0, got shape {tuple(x.shape)}")
        if not np.isfinite(x).all():
            x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
        min_n = math.ceil(MIN_SECONDS * self.sample_rate)
        if x.shape[1] < min_n:
            x = np.pad(x, ((0, 0), (0, min_n - x.shape[1])))
        return np.ascontiguousarray(x)

    def _need_codec(self, what: str) -> CodecGeometry:
        if self.codec is None:
            raise EngineError(f"{what} needs a codec pack; {self.info.name} is a mel pack")
        return self.codec

    def _encode(self, x: np.ndarray) -> np.ndarray:
        """Audio ``(b, n)`` (checked) → codes ``(b, n_q, ceil(n / hop))``: the graph's inputs are the audio
        right-padded to a multiple of the hop and its length (``lengths`` (b,) int64, all ``max(n, min_n)``;
        :mod:`models.codec.padded`)."""
        n = x.shape[1]
        hop = self._need_codec("encode").hop_length
        if n < self.min_n:
            x = np.pad(x, ((0, 0), (0, self.min_n - n)))
        length = x.shape[1]
        audio = np.pad(x, ((0, 0), (0, -length % hop)))[:, None, :]
        lengths = np.full(x.shape[0], length, np.int64)
        latent = self.encoder.run(None, {"audio": np.ascontiguousarray(audio), "lengths": lengths})[0]
        return rvq_codes(latent[:, :, : -(-n // hop)], self.codebooks, self.norms)

    def _tag(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        name = self.tagger.get_inputs()[0].name
        probs, emb = self.tagger.run(None, {name: np.ascontiguousarray(inputs, np.float32)})
        return np.asarray(probs, np.float32), np.asarray(emb, np.float32)

    def _batches(self, x: np.ndarray, fn: Any) -> tuple[np.ndarray, np.ndarray]:
        parts = [fn(x[s : s + self.batch_size]) for s in range(0, x.shape[0], self.batch_size)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _infer_chunk(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.codec is not None:
            return self._tag(unembed(self._encode(x), self.codebooks))
        c = self.mel_cfg
        return self._tag(log_mel(x, self.mel_basis, self.mel_window, c.n_fft, c.hop_length, c.preemphasis))

    def infer(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Audio ``(B, n)`` → (probs ``(B, n_labels)``, embedding ``(B, D)``), as ``Engine.infer``."""
        return self._batches(self._audio(audio), self._infer_chunk)

    def infer_codes(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes ``(B, n_q, T)`` of this pack's codec → as :meth:`infer` (codec packs only)."""
        self._need_codec("infer_codes")
        c = np.asarray(codes)
        c = c[None] if c.ndim == 2 else c
        if c.ndim != 3 or c.shape[2] == 0:
            raise EngineError(f"codes must be (B, n_q, T) with T > 0, got shape {tuple(c.shape)}")
        return self._batches(c.astype(np.int64), lambda k: self._tag(unembed(k, self.codebooks)))

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Audio ``(B, n)`` → codes ``(B, n_q, ceil(n / hop))`` int64 (codec packs)."""
        self._need_codec("encode")
        x = self._audio(audio)
        return np.concatenate(
            [self._encode(x[s : s + self.batch_size]) for s in range(0, len(x), self.batch_size)]
        )

    def encode_many(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Codes ``(n_q, ceil(n_i / hop))`` int64 of several signals (each ``(n_i,)`` float32), as
        ``Engine.encode_many`` gives them (:func:`models.tagging.folder.tag_many`); here one by one."""
        self._need_codec("encode_many")
        return [self._encode(self._audio(a))[0] for a in audios]

    def silence_codes(self, n: int) -> np.ndarray:
        """Codes ``(n_q, ceil(n / hop))`` of ``n`` samples of silence, cached; read-only."""
        return cached_silence_codes(self._silence, self.encode, n)

    def stream_encoder(self) -> Any:
        """A new :class:`~models.tagging.onnx_stream.OnnxStreamingEncoder` (its session built on the first
        call), or ``None`` when the cache has no step graph: the live path then tags audio windows."""
        if self.codec is None or self._stream_bytes is None or not self._stream_states:
            return None
        from models.tagging.onnx_stream import OnnxStreamingEncoder

        if self._stream_session is None:
            self._stream_session = _session(self._stream_bytes, self._threads)
        return OnnxStreamingEncoder(
            self._stream_session, self._stream_states, self.codec.n_q, self.codebooks.shape[2],
            self.codec.hop_length, self.min_n,
        )  # fmt: skip


def load_onnx_engine(
    path: Path | str | None = None, threads: int = 1, cache: Path | None = None
) -> OnnxEngine | None:
    """The :class:`OnnxEngine` of the pack at ``path`` (``None``: the shipped default pack) if
    ``onnxruntime`` is installed and the pack's ONNX files are cached and intact; else ``None``.
    Raises :class:`~models.packs.pack_manifest.PackError` for a broken pack, as ``Engine.load`` would."""
    if engine_choice() == "torch":
        return None
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    from models.packs.pack_read import CODEC_FILE, TAGGER_FILE, read_manifest, verified_file

    if path is None:
        from models.resources import default_pack_dir

        path = default_pack_dir()
    pm = read_manifest(path)
    if pm.codec_source == "official":
        return None  # the official codec's encoder is not exported (transformers)
    for name in (TAGGER_FILE, CODEC_FILE) if pm.codec_source == "pack" else (TAGGER_FILE,):
        verified_file(pm.root, pm.files, name)  # the weights the files were exported from
    files = read_folder(pack_folder(pm.pack_id, cache), pm.pack_id)
    if files is None:
        return None
    try:
        return OnnxEngine(pm, files, threads)
    except Exception as exc:  # noqa: BLE001 - a session that does not build: the torch engine instead
        log.warning("ONNX Runtime engine not used: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return None
