"""Portable detectors: a head and its model pack as one ONNX graph, with a JSON card beside it (Qt-free).

:func:`export_onnx` writes ``OUT.onnx``: input ``audio`` (B, n) float32, mono, at the pack's sample rate
(24 kHz for codec packs, 32 kHz for mel packs), ``n`` = one analysis window (``window_s`` × rate);
outputs ``head_probs`` (B, K) (the head's softmax over its classes) and ``audioset_probs`` (B, 527)
(sigmoid). Everything is inside: for a codec pack the EnCodec encoder, the residual vector quantizer
(the quantized latent is the sum of the chosen codebook rows) and the tagger; for a mel pack the
log-mel front end (pre-emphasis, STFT, mel banks) and the tagger; then the head. ``OUT.json`` (the
card): classes, thresholds, sample rate, window and hop, input length, pack name and id, head and pack
licences, output names. Cut a recording into windows of ``input_samples`` every ``hop_s`` and run the
graph; a class is detected where its probability is at or above its threshold (background excluded).

The graph is made by ``torch.onnx.export`` (opset 18, the dynamo exporter, which needs ``onnx`` and
``onnxscript``); checking and timing it needs ``onnxruntime`` — all three are in the ``onnx`` extra,
never in the PyInstaller bundle.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic import atomic_write_bytes
from models.heads.heads import BACKGROUND, Head
from models.tagging.windows import window_samples

OPSET = 18
CARD_FORMAT = "encotag-onnx-detector"


class OnnxExportError(RuntimeError):
    """The export cannot be done (missing packages, a head of another pack); one line."""


def _module(engine: Any, head: Head) -> Any:
    """The torch module audio → (head_probs, audioset_probs) (built lazily: torch imported here)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from models.codec.codec import num_quantizers

    class PortableDetector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.codec = engine.codec
            self.tagger = engine.tagger
            self.n_q = num_quantizers(engine.codec.cfg, engine.codec.cfg.bandwidth) if engine.codec else 0
            self.kind = head.card.kind
            for name, value in (("mean", head.mean), ("scale", head.scale), *head.params.items()):
                self.register_buffer(f"head_{name}", torch.from_numpy(np.asarray(value, np.float32).copy()))

        def _latent(self, audio: torch.Tensor) -> torch.Tensor:
            residual = self.codec._encode_layers(audio.unsqueeze(1))
            quantized = torch.zeros_like(residual)
            for book in self.codec._books[: self.n_q]:
                embed = book.codebook.embed
                flat = residual.permute(0, 2, 1).reshape(-1, residual.shape[1])
                et = embed.t()
                dist = -(flat.pow(2).sum(1, keepdim=True) - 2 * flat @ et + et.pow(2).sum(0, keepdim=True))
                idx = dist.argmax(dim=-1).view(residual.shape[0], residual.shape[2])
                chosen = F.embedding(idx, embed).permute(0, 2, 1)
                quantized = quantized + chosen
                residual = residual - chosen
            return quantized

        def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = self._latent(audio) if self.codec is not None else audio
            out = self.tagger(x)
            p = self.get_buffer
            z = (out.embedding - p("head_mean")) / p("head_scale")
            if self.kind == "mlp":
                h = torch.relu(z @ p("head_w1").t() + p("head_b1"))
                logits = h @ p("head_w2").t() + p("head_b2")
            else:
                logits = z @ p("head_w").t() + p("head_b")
            return torch.softmax(logits, dim=1), torch.sigmoid(out.logits)

    return PortableDetector().eval()


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote and measured (times: seconds per window, CPU, batch of one)."""

    path: Path
    card_path: Path
    max_abs_diff_head: float | None = None  # onnxruntime vs Encotag's torch path, on ``check_audio``
    max_abs_diff_audioset: float | None = None
    onnx_s_per_window: float | None = None
    torch_s_per_window: float | None = None


def card(engine: Any, head: Head, name: str, input_samples: int) -> dict[str, Any]:
    """The JSON card written beside the graph."""
    info = engine.info
    return {
        "format": CARD_FORMAT,
        "format_version": 1,
        "head": name,
        "classes": list(head.classes),
        "background": BACKGROUND if BACKGROUND in head.classes else None,
        "thresholds": [round(float(t), 6) for t in head.thresholds],
        "kind": head.card.kind,
        "sample_rate": int(engine.sample_rate),
        "window_s": float(engine.window.window_s),
        "hop_s": float(engine.window.hop_s),
        "input_samples": int(input_samples),
        "inputs": {"audio": "float32 (batch, input_samples), mono, at sample_rate"},
        "outputs": {"head_probs": "float32 (batch, classes)", "audioset_probs": "float32 (batch, 527)"},
        "audioset_labels": list(engine.labels),
        "pack": {"name": info.name, "pack_id": info.pack_id, "licence": getattr(info, "licence", "")},
        "licence": "the head: yours; the model weights: the pack's licence above",
        "cv_accuracy": head.card.cv_accuracy,
        "cv_grouping": head.card.cv_grouping,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def export_onnx(
    engine: Any,
    head: Head,
    out: str | Path,
    *,
    name: str | None = None,
    check_audio: np.ndarray | None = None,
    time_runs: int = 0,
) -> OnnxExport:
    """Write ``out`` (.onnx) and its card (``out`` with ``.json``) for ``head`` on ``engine``'s pack.

    With ``check_audio`` (B, n) float32 windows the graph is run by onnxruntime and compared with
    Encotag's own outputs (``Engine.infer`` + ``Head.predict``); with ``time_runs`` both are timed on
    one window. Raises :class:`OnnxExportError` (one line) when the packages are missing.
    """
    try:
        import onnx  # noqa: F401 - the exporter needs it
        import onnxscript  # noqa: F401
        import torch
    except ImportError as exc:
        raise OnnxExportError(
            f"ONNX export needs the 'onnx' extra (pip install 'encotag[onnx]'): {exc}"
        ) from None
    out = Path(out)
    if out.suffix != ".onnx":
        out = out.with_suffix(".onnx")
    if head.card.embedding_size != engine.embedding_size:
        raise OnnxExportError(
            f"head '{head.card.name}' takes {head.card.embedding_size}-dim embeddings; "
            f"the pack makes {engine.embedding_size}"
        )
    win_n, _ = window_samples(engine.window, int(engine.sample_rate))
    module = _module(engine, head)
    example = torch.zeros(2, win_n)
    tmp = out.with_name(f".{out.name}.tmp")
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            input_names=["audio"],
            output_names=["head_probs", "audioset_probs"],
            dynamic_shapes={"audio": {0: torch.export.Dim("batch", min=1, max=1024)}},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
        )
    assert program is not None
    program.save(str(tmp))
    blob = tmp.read_bytes()
    tmp.unlink(missing_ok=True)
    atomic_write_bytes(out, blob)
    card_path = out.with_suffix(".json")
    atomic_write_bytes(
        card_path, (json.dumps(card(engine, head, name or head.card.name, win_n), indent=1) + "\n").encode()
    )
    result = OnnxExport(out, card_path)
    if check_audio is None and not time_runs:
        return result
    return _verify(engine, head, result, check_audio, time_runs, win_n)


def _verify(
    engine: Any, head: Head, result: OnnxExport, audio: np.ndarray | None, runs: int, win_n: int
) -> OnnxExport:
    import dataclasses

    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(result.path), opts, providers=["CPUExecutionProvider"])
    diffs: dict[str, float | None] = {"max_abs_diff_head": None, "max_abs_diff_audioset": None}
    if audio is not None:
        x = np.asarray(audio, np.float32).reshape(-1, win_n)
        hp, ap = sess.run(["head_probs", "audioset_probs"], {"audio": x})
        probs, emb = engine.infer(x)
        diffs = {
            "max_abs_diff_head": float(np.abs(hp - head.predict(emb)).max()),
            "max_abs_diff_audioset": float(np.abs(ap - probs).max()),
        }
    times: dict[str, float | None] = {"onnx_s_per_window": None, "torch_s_per_window": None}
    if runs:
        rng = np.random.default_rng(0)
        one = (0.1 * rng.normal(size=(1, win_n))).astype(np.float32)
        sess.run(None, {"audio": one})
        engine.infer(one)

        def timed(fn: Any) -> float:
            t0 = time.process_time()
            for _ in range(runs):
                fn()
            return (time.process_time() - t0) / runs

        times = {
            "onnx_s_per_window": timed(lambda: sess.run(None, {"audio": one})),
            "torch_s_per_window": timed(lambda: head.predict(engine.infer(one)[1])),
        }
    return dataclasses.replace(result, **diffs, **times)  # type: ignore[arg-type]
