"""Model packs: a folder with ``manifest.json`` and safetensors weights, saved atomically, loaded strictly.

Manifest (``format_version`` 1), every key required unless marked optional, no other keys allowed::

    format_version  1
    name, description, created (ISO 8601 UTC), licence        strings
    frontend        "mel" | "latent_direct" | "latent_proj"   (= tagger.frontend)
    sample_rate     rate the engine consumes: codec.sampling_rate for codec packs, mel.sample_rate for mel
    codec           null (mel packs) or {"source": "pack" | "official", "config": CodecConfig dict}
                    "pack": weights in codec.safetensors; "official": the official 24 kHz checkpoint
                    (models.codec.official, fetched on first use)
    tagger          TaggerConfig dict
    mel             MelConfig dict (mel packs) or null
    window          WindowConfig dict
    labels          list of num_classes strings, or instead
    labels_file     "<file in the pack>" (a JSON list of strings, hashed in files)
    trusted         list of num_classes bools, or a list of label indices: labels the pack was trained on
    embedding       {"layout": [[part, size], …], "scene_size": D, "timestamp_size": D,
                     "timestamp_hop_ms": ms}
    files           {"tagger.safetensors": sha256, ["codec.safetensors": sha256], [labels_file: sha256]}
    provenance      object (training config, data, commit, …)

``load_pack`` checks all of it, refuses an unknown ``format_version``, verifies every sha256, loads the
tensors with ``safetensors.torch.load_file`` (never unpickles) and loads them with ``strict=True`` into
freshly built modules; any problem raises :class:`PackError` "<path>: <reason>". The pack id is the sha256
over the sorted weight-file hashes; the codec id is the codec weights' sha256 (or
:data:`OFFICIAL_CODEC_ID`).

The teacher pack (EfficientAT's mn04_as as a mel pack) is built by :mod:`models.packs.teacher_pack`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from models.config import CodecConfig, MelConfig, PackInfo, TaggerConfig, WindowConfig, to_dict
from models.packs.pack_manifest import (
    FORMAT_VERSION,
    MANIFEST,
    PackError,
    one_line,
)
from models.packs.pack_read import (
    CODEC_FILE,
    MAX_MANIFEST_BYTES,
    MAX_WEIGHTS_BYTES,
    OFFICIAL_CODEC_ID,
    TAGGER_FILE,
    pack_id_of,
    read_manifest,
    sha256_file,
    trusted_list,
    verified_file,
)

if TYPE_CHECKING:
    from models.codec.codec import Codec
    from models.codec.tagging_codec import TaggingCodec
    from models.nets.tagger import Tagger

TIMESTAMP_HOP_MS = 40.0  # ≤ 50 ms (HEAR)
__all__ = [  # the names other modules import from here (several live in models.packs.pack_read)
    "CODEC_FILE", "MANIFEST", "MAX_MANIFEST_BYTES", "MAX_WEIGHTS_BYTES", "OFFICIAL_CODEC_ID", "TAGGER_FILE",
    "LoadedPack", "PackError", "load_pack", "one_line", "pack_id_of", "save_pack", "sha256_file",
]  # fmt: skip


@dataclass(frozen=True)
class LoadedPack:
    """A verified pack: configs, state dicts and the modules built from them (loaded strictly, eval mode).

    Loaded with ``tagging_only`` (what :class:`models.tagging.engine.Engine` does) the state dicts are
    ``None`` (the modules hold the weights) and ``codec`` is a
    :class:`~models.codec.tagging_codec.TaggingCodec` (encoder and codebooks, no decoder, no
    ``transformers`` import).
    """

    path: Path
    info: PackInfo
    tagger_cfg: TaggerConfig
    codec_cfg: CodecConfig | None
    codec_source: str | None  # "pack", "official" or None (mel packs)
    mel_cfg: MelConfig
    window: WindowConfig
    tagger_state: dict[str, Tensor] | None = field(repr=False)  # None when loaded tagging_only
    codec_state: dict[str, Tensor] | None = field(repr=False)
    tagger: Tagger = field(repr=False)
    codec: Codec | TaggingCodec | None = field(default=None, repr=False)  # built from codec_state
    codec_id: str | None = None
    timestamp_hop_ms: float = TIMESTAMP_HOP_MS
    manifest: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _export(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def _build_tagger(cfg: TaggerConfig, mel_cfg: MelConfig, state: Mapping[str, Tensor]) -> Tagger:
    from models.nets.tagger import Tagger

    tagger = Tagger(cfg, mel_cfg)
    tagger.load_state_dict(dict(state), strict=True)
    return tagger.eval()


def save_pack(
    out_dir: Path | str,
    *,
    name: str,
    tagger_cfg: TaggerConfig,
    tagger_state: Mapping[str, Tensor],
    codec_cfg: CodecConfig | None = None,
    codec_state: Mapping[str, Tensor] | None = None,
    labels: Sequence[str],
    trusted: Sequence[bool] | Sequence[int],
    window: WindowConfig,
    licence: str,
    provenance: Mapping[str, Any],
    description: str = "",
    mel_cfg: MelConfig | None = None,
) -> Path:
    """Write a pack folder at ``out_dir`` (replacing one that is there) atomically; returns ``out_dir``.

    The tagger (and codec) state is loaded strictly into fresh modules first, so a pack that would not
    load is never written. ``codec_cfg`` without ``codec_state`` makes an "official"-codec pack.
    Raises :class:`PackError`.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    mel_cfg = mel_cfg if mel_cfg is not None else MelConfig()
    is_mel = tagger_cfg.frontend == "mel"
    if is_mel == (codec_cfg is not None):
        raise PackError(f"{out}: a {tagger_cfg.frontend} tagger needs {'no' if is_mel else 'a'} codec config")
    if len(labels) != tagger_cfg.num_classes:
        raise PackError(f"{out}: {len(labels)} labels for {tagger_cfg.num_classes} classes")
    try:
        trusted_bools = trusted_list(trusted, tagger_cfg.num_classes)
        tagger = _build_tagger(tagger_cfg, mel_cfg, tagger_state)
        if codec_cfg is not None and codec_state is not None:
            from models.codec.codec import Codec

            Codec.from_state(codec_cfg, codec_state)
    except (ValueError, RuntimeError) as exc:
        raise PackError(f"{out}: {one_line(exc)}") from None
    layout = [[part, int(size)] for part, size in tagger.embedding_layout]
    emb_size = int(tagger.embedding_size)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": description,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "frontend": tagger_cfg.frontend,
        "sample_rate": mel_cfg.sample_rate if is_mel else codec_cfg.sampling_rate,  # type: ignore[union-attr]
        "codec": None
        if codec_cfg is None
        else {"source": "pack" if codec_state is not None else "official", "config": to_dict(codec_cfg)},
        "tagger": to_dict(tagger_cfg),
        "mel": to_dict(mel_cfg) if is_mel else None,
        "window": to_dict(window),
        "labels": list(labels),
        "trusted": trusted_bools,
        "embedding": {
            "layout": layout,
            "scene_size": emb_size,
            "timestamp_size": emb_size,
            "timestamp_hop_ms": TIMESTAMP_HOP_MS,
        },
        "files": {},
        "licence": licence,
        "provenance": dict(provenance),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        save_file(_export(tagger_state), str(tmp / TAGGER_FILE))
        manifest["files"][TAGGER_FILE] = sha256_file(tmp / TAGGER_FILE)
        if codec_state is not None:
            from models.codec.codec import inference_state

            save_file(_export(inference_state(codec_state)), str(tmp / CODEC_FILE))
            manifest["files"][CODEC_FILE] = sha256_file(tmp / CODEC_FILE)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        for item in tmp.iterdir():
            item.chmod(0o644)
        tmp.chmod(0o755)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}-{time.monotonic_ns()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _load_tensors(path: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types on a corrupt file
        raise PackError(f"{path}: not a readable safetensors file ({one_line(exc)})") from None


def load_pack(path: Path | str, *, tagging_only: bool = False) -> LoadedPack:
    """Load and verify the pack folder at ``path`` (see the module docstring); raises :class:`PackError`.

    ``tagging_only``: build a pack codec as a
    :class:`~models.codec.tagging_codec.TaggingCodec` (checked just as strictly, its decoder dropped) and
    keep no state dicts — about 150 MB less RSS for inference."""
    pm = read_manifest(path)
    root, tagger_cfg, codec_cfg, mel_cfg, window = pm.root, pm.tagger_cfg, pm.codec_cfg, pm.mel_cfg, pm.window
    files = pm.files

    tagger_path = verified_file(root, files, TAGGER_FILE)
    tagger_state = _load_tensors(tagger_path)
    try:
        tagger = _build_tagger(tagger_cfg, mel_cfg, tagger_state)
    except (RuntimeError, ValueError) as exc:
        raise PackError(f"{tagger_path}: does not fit the manifest's tagger: {one_line(exc)}") from None
    codec_state = None
    codec = None
    codec_source = pm.codec_source
    if codec_source == "pack":
        from models.codec.codec import Codec, CodecError
        from models.codec.tagging_codec import TaggingCodec

        codec_path = verified_file(root, files, CODEC_FILE)
        codec_state = _load_tensors(codec_path)
        try:
            build = TaggingCodec.from_state if tagging_only else Codec.from_state
            codec = build(codec_cfg, codec_state)  # type: ignore[arg-type]
        except (CodecError, ValueError, RuntimeError) as exc:
            raise PackError(f"{codec_path}: does not fit the manifest's codec: {one_line(exc)}") from None
    codec_id = pm.codec_id

    info = pm.info(tuple(tagger.embedding_layout), int(tagger.embedding_size))
    return LoadedPack(
        path=root,
        info=info,
        tagger_cfg=tagger_cfg,
        codec_cfg=codec_cfg,
        codec_source=codec_source,
        mel_cfg=mel_cfg,
        window=window,
        tagger_state=None if tagging_only else tagger_state,
        codec_state=None if tagging_only else codec_state,
        tagger=tagger,
        codec=codec,
        codec_id=codec_id,
        timestamp_hop_ms=pm.timestamp_hop_ms,
        manifest=pm.manifest,
    )
