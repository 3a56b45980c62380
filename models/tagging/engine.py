"""Engine: a loaded model pack ready to run (torch lives here and below; the app talks numpy to it).

Mel packs consume audio @ 32 kHz; codec packs consume audio @ the codec's rate (24 kHz) — resampling is
the caller's job (``models.audio.resample``). The engine owns its pack's modules and prepares them for
inference only: the tagger is BN-folded and channels-last (``Tagger.optimize_for_inference``), a pack
codec has its weight norm fused (``Codec.fuse``); never save them from an engine. :meth:`Engine.load`
loads the pack ``tagging_only``: a pack codec is a
:class:`~models.codec.tagging_codec.TaggingCodec` (same codes,
no decoder, no ``transformers`` import) and the pack keeps no state dicts. Every method runs
under ``torch.inference_mode`` on CPU and returns float32 numpy arrays.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from models.config import PackInfo, WindowConfig
from models.packs.pack import LoadedPack, PackError, load_pack
from models.tagging.windows import EngineError as EngineError  # defined without torch, for both engines
from models.tagging.windows import cached_silence_codes

if TYPE_CHECKING:
    from models.codec.codec import Codec
    from models.codec.streaming import StreamingEncoder
    from models.codec.tagging_codec import TaggingCodec

log = logging.getLogger(__name__)

MIN_SECONDS = 0.05  # shorter inputs are zero-padded to this length


def auto_threads() -> int:
    """Torch threads for a busy machine: the cores the load average leaves free (at least 1). OpenMP
    threads that wait for each other on cores other processes hold are worse than one thread: on the
    2-core machine at load 7–9 the encoder ran 23× real time on 1 thread and 0.5× on 2 (PERFORMANCE.md)."""
    import os

    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


class Engine:
    """A pack's tagger (and codec) in eval mode.

    Attributes: ``info`` (:class:`PackInfo`), ``sample_rate`` (Hz ``infer`` consumes), ``labels``,
    ``embedding_size`` (D), ``window`` (:class:`WindowConfig`), ``codec`` (``None`` for mel packs),
    ``codec_id`` (identifies the codec for ``.ecodes`` files), ``timestamp_hop_ms``.
    """

    def __init__(
        self,
        pack: LoadedPack,
        threads: int | None = None,
        *,
        batch_size: int = 16,
        codec_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        if threads is not None:
            torch.set_num_threads(max(1, min(int(threads), 256)))  # libgomp aborts far above
        elif auto_threads() < torch.get_num_threads():
            log.info("torch threads %d → %d: the machine is busy", torch.get_num_threads(), auto_threads())
            torch.set_num_threads(auto_threads())
        self.pack = pack
        self.info: PackInfo = pack.info
        self.sample_rate: int = pack.info.sample_rate
        self.labels: tuple[str, ...] = pack.info.labels
        self.embedding_size: int = pack.info.embedding_size
        self.window: WindowConfig = pack.window
        self.batch_size = max(1, int(batch_size))
        self.tagger = pack.tagger.optimize_for_inference()  # BN folded + channels-last: ~1.7-2.6x faster
        self.codec_id = pack.codec_id
        self.codec: Codec | TaggingCodec | None = None
        if pack.codec_source == "pack":
            assert pack.codec is not None
            self.codec = pack.codec.fuse()
        elif pack.codec_source == "official":
            from models.codec.official import official_codec

            cfg = pack.codec_cfg
            assert cfg is not None
            codec = official_codec(codec_progress, bandwidth=cfg.bandwidth)
            if dataclasses.replace(codec.cfg, bandwidth=cfg.bandwidth) != cfg:
                raise PackError(f"{pack.path}: the official codec does not match the pack's codec config")
            self.codec = codec
        self.encoder_backend = "torch" if self.codec is not None else "none"
        if self.codec is not None and self._use_ort():
            self.encoder_backend = "onnxruntime"
        if self.codec is not None:
            self._frame_ms = 1000.0 * self.codec.hop_length / self.codec.sample_rate
        else:
            self._frame_ms = 1000.0 * pack.mel_cfg.hop_length / pack.mel_cfg.sample_rate
        self._frame_hop = max(1, round(pack.timestamp_hop_ms / self._frame_ms))
        self.timestamp_hop_ms = self._frame_hop * self._frame_ms
        self._silence: dict[int, np.ndarray] = {}

    def _use_ort(self) -> bool:
        """Give a pack codec the ONNX Runtime encoder where it is installed, unless ``ENCOTAG_ENCODER=torch``
        (:mod:`models.codec.ort_encoder`: checked against torch, torch kept on any failure)."""
        from models.codec.ort_encoder import attach_ort_encoder, backend_choice
        from models.codec.tagging_codec import TaggingCodec

        if backend_choice() == "torch" or not isinstance(self.codec, TaggingCodec):
            return False
        return attach_ort_encoder(self.codec, self.codec_id or "", torch.get_num_threads())

    @classmethod
    def load(
        cls,
        path: Path | str | None = None,
        threads: int | None = None,
        codec_progress: Callable[[int, int], None] | None = None,
    ) -> Engine:
        """Load the pack at ``path`` (``None``: the default pack shipped in ``resources/packs/default``)."""
        if path is None:
            from models.resources import default_pack_dir

            path = default_pack_dir()
            if not (Path(path) / "manifest.json").is_file():
                raise PackError(
                    f"{path}: no default model pack; build one (e.g. `encotag pack teacher --out {path}`) "
                    "or choose a pack folder"
                )
        return cls(load_pack(path, tagging_only=True), threads=threads, codec_progress=codec_progress)

    @property
    def is_codec_pack(self) -> bool:
        return self.codec is not None

    # ------------------------------------------------------------------ helpers
    def _audio(self, audio: np.ndarray | Tensor) -> Tensor:
        x = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not isinstance(audio, Tensor) else audio)
        x = x.detach().to("cpu", torch.float32)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2 or x.shape[1] == 0:
            raise EngineError(f"audio must be (B, n) with n > 0, got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            x = torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
        min_n = math.ceil(MIN_SECONDS * self.sample_rate)
        if x.shape[1] < min_n:
            x = torch.nn.functional.pad(x, (0, min_n - x.shape[1]))
        return x

    def _need_codec(self, what: str) -> Codec | TaggingCodec:
        if self.codec is None:
            raise EngineError(f"{what} needs a codec pack; {self.info.name} is a mel pack")
        return self.codec

    def _tagger_input(self, x: Tensor) -> Tensor:
        """Audio (b, n) → what the tagger consumes: audio itself (mel) or the codec latent (b, 128, T)."""
        return self.codec.latent(x) if self.codec is not None else x

    def _run(self, inputs: Tensor, from_codes: bool = False) -> tuple[np.ndarray, np.ndarray]:
        probs, embs = [], []
        with torch.inference_mode():
            for start in range(0, inputs.shape[0], self.batch_size):
                chunk = inputs[start : start + self.batch_size]
                x = self.codec.unembed(chunk) if from_codes else self._tagger_input(chunk)  # type: ignore[union-attr]
                out = self.tagger(x)
                probs.append(torch.sigmoid(out.logits).float().numpy())
                embs.append(out.embedding.float().numpy())
        return np.concatenate(probs, axis=0), np.concatenate(embs, axis=0)

    # ------------------------------------------------------------------ API
    def infer(self, audio: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Audio (B, n) float32 @ ``sample_rate`` → (probs (B, n_labels) in [0, 1], embedding (B, D)),
        float32. A 1-D input counts as B = 1."""
        return self._run(self._audio(audio))

    def infer_codes(self, codes: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Codes (B, n_q, T) int of this pack's codec → same as :meth:`infer` (codec packs only)."""
        self._need_codec("infer_codes")
        c = torch.as_tensor(np.asarray(codes) if not isinstance(codes, Tensor) else codes).long()
        if c.dim() == 2:
            c = c.unsqueeze(0)
        if c.dim() != 3 or c.shape[2] == 0:
            raise EngineError(f"codes must be (B, n_q, T) with T > 0, got shape {tuple(c.shape)}")
        return self._run(c, from_codes=True)

    def encode(self, audio: np.ndarray | Tensor) -> np.ndarray:
        """Audio (B, n) float32 @ ``sample_rate`` → codes (B, n_q, ceil(n / hop)) int64 (codec packs)."""
        codec = self._need_codec("encode")
        x = self._audio(audio)
        return np.concatenate(
            [codec.encode(x[s : s + self.batch_size]).numpy() for s in range(0, x.shape[0], self.batch_size)]
        )

    def encode_many(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Codes (n_q, ceil(n_i / hop)) int64 of several signals (each (n_i,) float32 @ ``sample_rate``),
        each equal to :meth:`encode` of that signal alone: a pack codec encodes them right-padded in
        groups of similar length (:func:`models.codec.padded.latents`), other codecs one by one."""
        from models.codec.padded import latents
        from models.codec.tagging_codec import TaggingCodec

        codec = self._need_codec("encode_many")
        xs = [self._audio(a)[0].numpy() for a in audios]  # float32, sanitised, at least MIN_SECONDS
        if not isinstance(codec, TaggingCodec):
            return [self.encode(x[None])[0] for x in xs]
        with torch.inference_mode():
            return [codec.quantize_codes(lat[None])[0].numpy() for lat in latents(codec, xs)]

    def stream_encoder(self) -> StreamingEncoder | None:
        """A fresh :class:`~models.codec.streaming.StreamingEncoder` over this pack's codec (the live path
        of codec packs), or ``None`` when the codec has none (mel packs, the ``transformers`` codec)."""
        from models.codec.streaming import StreamingEncoder
        from models.codec.tagging_codec import TaggingCodec

        if not isinstance(self.codec, TaggingCodec):
            return None
        return StreamingEncoder(self.codec)

    def silence_codes(self, n: int) -> np.ndarray:
        """Codes ``(n_q, ceil(n / hop))`` int64 of ``n`` samples of silence (encoded once per ``n``, then
        cached: code windows past the end of a file are padded with them). Read-only; copy to modify."""
        return cached_silence_codes(self._silence, self.encode, n)

    def timestamp_embeddings(self, audio: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Audio (B, n) float32 @ ``sample_rate`` → (embeddings (B, F, D) float32, timestamps (F,) ms).

        One embedding per ``timestamp_hop_ms`` (40 ms: 4 mel frames or 3 latent frames at 75 frames/s),
        from the tagger's per-frame features over the whole input (the network's context around each
        frame); timestamps are the centres of the frames, evenly spaced.
        """
        x = self._audio(audio)
        out = []
        with torch.inference_mode():
            for start in range(0, x.shape[0], self.batch_size):
                inp = self._tagger_input(x[start : start + self.batch_size])
                out.append(self.tagger.timestamp_embeddings(inp, self._frame_hop).float().numpy())
        emb = np.concatenate(out, axis=0)
        h = self._frame_hop
        f = np.arange(emb.shape[1], dtype=np.float64)
        if self.codec is None:  # centred STFT: mel frame k is centred at k · frame_ms
            ts = (f * h + (h - 1) / 2.0) * self._frame_ms
        else:  # latent frame k covers [k, k + 1) · frame_ms
            ts = (f + 0.5) * h * self._frame_ms
        return emb, ts
