"""Export a loaded torch :class:`~models.tagging.engine.Engine` to the ONNX files of :mod:`onnx_files`.

Once per pack and user (the app's worker does it when it is idle after a launch that loaded torch): the
tagger (BN folded; sigmoid and the embedding's low-level part inside the graph), the codec encoder
(:func:`models.codec.ort_encoder.export_encoder`, any input length) and the numpy arrays (codebooks, or
the mel basis and window). Before the record is written the torch-free
:class:`~models.tagging.onnx_engine.OnnxEngine` is built from exactly these bytes and compared with the
torch engine on a fixed signal (two 1 s windows and a length that is not a multiple of the hop): codes
equal and probabilities within :data:`PROB_ATOL`, or nothing is recorded and the engine stays torch.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from models.tagging.onnx_files import (
    STREAM_VERSION,
    OnnxFiles,
    npz_bytes,
    pack_folder,
    read_folder,
    write_folder,
)

log = logging.getLogger(__name__)

PROB_ATOL = 1e-3  # probabilities; measured up to 2.1e-4 on the session-17 pack, about 1e-6 on the one before
EMB_ATOL = 1e-3  # embeddings (activations of order 1–10)
OPSET = 17


class _TaggerGraph(nn.Module):
    """Codec packs: quantized latent (B, 128, T); mel packs: log-mel image (B, 1, n_mels, T)
    → (sigmoid probs (B, n_labels), embedding (B, D)), as ``Tagger.forward``."""

    def __init__(self, tagger: Any, mel: bool) -> None:
        super().__init__()
        self.tagger, self.mel = tagger, mel

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.mel:
            image, rep = x, x[:, 0]
        else:
            image, rep = self.tagger.representation(x)
        logits, mid = self.tagger.net(image)
        return torch.sigmoid(logits), torch.cat([mid, rep.mean(dim=2)], dim=1)


def export_tagger(engine: Any) -> bytes:
    """The engine's tagger as ONNX bytes (dynamic batch and frames)."""
    mel = engine.codec is None
    x = (
        torch.zeros(2, 1, engine.pack.mel_cfg.n_mels, 100)
        if mel
        else torch.zeros(2, engine.tagger.cfg.input_dim, 75)
    )
    buf = io.BytesIO()
    axes = {0: "batch", 3: "frames"} if mel else {0: "batch", 2: "frames"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _TaggerGraph(engine.tagger, mel).eval(),
            (x,),
            buf,  # type: ignore[arg-type]  # a file object works (TorchScript exporter)
            input_names=["input"],
            output_names=["probs", "embedding"],
            dynamic_axes={"input": axes, "probs": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buf.getvalue()


def _check_audio(sr: int, hop: int) -> list[np.ndarray]:
    rng = np.random.default_rng(27)
    t = np.arange(2 * sr) / sr
    sweep = 0.4 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.05 * rng.standard_normal(len(t))
    two = np.stack([sweep[:sr], sweep[sr:]]).astype(np.float32)
    return [two, sweep[None, : sr + hop // 3].astype(np.float32)]


def compare(engine: Any, onnx_engine: Any) -> tuple[bool, float]:
    """Whether the ONNX engine gives the torch engine's codes and probabilities (within :data:`PROB_ATOL`,
    embeddings within :data:`EMB_ATOL`) on the fixed check signal; and the largest probability gap."""
    hop = engine.codec.hop_length if engine.codec is not None else 1
    ok, worst = True, 0.0
    for x in _check_audio(engine.sample_rate, hop):
        if engine.codec is not None:
            ok = ok and bool(np.array_equal(engine.encode(x), onnx_engine.encode(x)))
        p1, e1 = engine.infer(x)
        p2, e2 = onnx_engine.infer(x)
        gap = float(np.abs(p1 - p2).max())
        worst = max(worst, gap)
        ok = ok and gap <= PROB_ATOL and float(np.abs(e1 - e2).max()) <= EMB_ATOL
    return ok, worst


def compare_stream(engine: Any, onnx_engine: Any) -> bool:
    """Whether the ONNX step graph streams the check signal (in uneven pieces) to the torch streaming
    encoder's codes."""
    x = _check_audio(engine.sample_rate, engine.codec.hop_length)[0].reshape(-1)
    ref, got = engine.stream_encoder(), onnx_engine.stream_encoder()
    if ref is None or got is None:
        return False
    a, b, start = [], [], 0
    for size in (3000, 517, 9000, 1, 12345, len(x)):
        piece = x[start : start + size]
        start += len(piece)
        a.append(ref.push(piece))
        b.append(got.push(piece))
    return bool(np.array_equal(np.concatenate(a, axis=1), np.concatenate(b, axis=1)))


def export_onnx_pack(engine: Any, root: Path | None = None) -> Path | None:
    """Export ``engine``'s pack into its cache folder (see the module docstring) unless intact files are
    there; the folder, or ``None`` (not supported, refused, or not writable; one log line)."""
    from models.codec.tagging_codec import TaggingCodec
    from models.packs.pack_read import read_manifest
    from models.tagging.onnx_engine import OnnxEngine

    if engine.codec is not None and not isinstance(engine.codec, TaggingCodec):
        return None  # the official codec (transformers) has no exported encoder
    info = engine.info
    folder = pack_folder(info.pack_id, root)
    cached = read_folder(folder, info.pack_id)
    if cached is not None and (engine.codec is None or cached.record.get("stream_version") == STREAM_VERSION):
        return folder  # (a codec pack's folder from before the step graph is exported again, once)
    try:
        import onnxruntime as ort

        data = {"tagger.onnx": export_tagger(engine)}
        record: dict[str, Any] = {
            "pack_id": info.pack_id,
            "kind": "codec" if engine.codec is not None else "mel",
            "embedding_layout": [list(p) for p in info.embedding_layout],
            "embedding_size": info.embedding_size,
            "timestamp_hop_ms": engine.timestamp_hop_ms,
            "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__, "opset": OPSET},
        }
        if engine.codec is not None:
            from models.codec.ort_encoder import export_encoder
            from models.codec.stream_graph import export_stream_step, state_shapes
            from models.codec.streaming import StreamingEncoder
            from models.tagging.onnx_engine import codebook_norms

            codec = engine.codec
            data["encoder.onnx"] = export_encoder(codec)
            books = torch.stack([b.codebook.embed for b in codec._books[: codec.n_q]]).numpy()
            data["arrays.npz"] = npz_bytes(codebooks=books)
            record.update(n_q=int(codec.n_q), hop_length=int(codec.hop_length))
            record["min_n"] = int(StreamingEncoder(codec).min_first)
            data["stream.onnx"] = export_stream_step(codec, record["min_n"], books, codebook_norms(books))
            record["stream_states"] = [[n, list(s)] for n, s in state_shapes(codec)]
            record["stream_version"] = STREAM_VERSION
        else:
            fe = engine.tagger.frontend
            data["arrays.npz"] = npz_bytes(mel_basis=fe.mel_basis.numpy(), window=fe.window.numpy())
        candidate = OnnxEngine(read_manifest(engine.pack.path), OnnxFiles(folder, record, data), threads=1)
        ok, gap = compare(engine, candidate)
        if not ok:
            log.warning(
                "ONNX files of %s not written: they differ from torch (probabilities %.1e)", info.name, gap
            )
            return None
        if engine.codec is not None:
            record["stream"] = compare_stream(engine, candidate)
            if not record["stream"]:
                log.warning("ONNX step graph of %s not kept: its codes differ from torch's", info.name)
                del data["stream.onnx"], record["stream_states"]
        write_folder(folder, dict(record, max_prob_diff=gap), data)
    except Exception as exc:  # noqa: BLE001 - the torch engine keeps working; next launch tries again
        log.warning(
            "ONNX files of %s not written: %s", info.name, str(exc).splitlines()[0] if str(exc) else exc
        )
        return None
    log.info(
        "ONNX files of %s written to %s (max probability difference to torch %.1e)", info.name, folder, gap
    )
    return folder
