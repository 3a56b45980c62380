"""Model packs: a folder with ``manifest.json`` and safetensors weights, saved atomically, loaded strictly.

Manifest (``format_version`` 1), every key required unless marked optional, no other keys allowed::

    format_version  1
    name, description, created (ISO 8601 UTC), licence        strings
    frontend        "mel" | "latent_direct" | "latent_proj"   (= tagger.frontend)
    sample_rate     rate the engine consumes: codec.sampling_rate for codec packs, mel.sample_rate for mel
    codec           null (mel packs) or {"source": "pack" | "official", "config": CodecConfig dict}
                    "pack": weights in codec.safetensors; "official": the official 24 kHz checkpoint
                    (models.official, fetched on first use)
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

The teacher pack (EfficientAT's mn04_as as a mel pack) is built by :mod:`models.teacher_pack`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from models.config import CodecConfig, MelConfig, PackInfo, TaggerConfig, WindowConfig, from_dict, to_dict

if TYPE_CHECKING:
    from models.codec import Codec
    from models.tagger import Tagger
    from models.tagging_codec import TaggingCodec

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TAGGER_FILE = "tagger.safetensors"
CODEC_FILE = "codec.safetensors"
OFFICIAL_CODEC_ID = "official-encodec-24khz"
TIMESTAMP_HOP_MS = 40.0  # ≤ 50 ms (HEAR)

_KEYS_REQUIRED = {
    "format_version", "name", "description", "created", "frontend", "sample_rate", "codec", "tagger", "mel",
    "window", "trusted", "embedding", "files", "licence", "provenance",
}  # fmt: skip
_KEYS_OPTIONAL = {"labels", "labels_file"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class PackError(ValueError):
    """A pack that cannot be used; the message is one line, "<path>: <reason>"."""


@dataclass(frozen=True)
class LoadedPack:
    """A verified pack: configs, state dicts and the modules built from them (loaded strictly, eval mode).

    Loaded with ``tagging_only`` (what :class:`models.engine.Engine` does) the state dicts are ``None``
    (the modules hold the weights) and ``codec`` is a :class:`~models.tagging_codec.TaggingCodec`
    (encoder and codebooks, no decoder, no ``transformers`` import).
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def pack_id_of(weight_hashes: Sequence[str]) -> str:
    """sha256 over the sorted weight-file hashes (one per line)."""
    return hashlib.sha256("\n".join(sorted(weight_hashes)).encode("ascii")).hexdigest()


def one_line(exc: BaseException) -> str:
    """The first lines of ``exc``'s message joined into one (at most 400 characters), else its type name."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:3])[:400] or type(exc).__name__


def _export(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def _build_tagger(cfg: TaggerConfig, mel_cfg: MelConfig, state: Mapping[str, Tensor]) -> Tagger:
    from models.tagger import Tagger

    tagger = Tagger(cfg, mel_cfg)
    tagger.load_state_dict(dict(state), strict=True)
    return tagger.eval()


def _trusted_list(trusted: Sequence[Any], n: int) -> list[bool]:
    items = list(trusted)
    if len(items) == n and all(isinstance(t, bool) for t in items):
        return items
    if all(isinstance(t, int) and not isinstance(t, bool) for t in items):
        if any(t < 0 or t >= n for t in items):
            raise ValueError(f"trusted index out of range 0..{n - 1}")
        chosen = set(items)
        return [i in chosen for i in range(n)]
    raise ValueError(f"trusted must be {n} booleans or a list of label indices")


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
        trusted_bools = _trusted_list(trusted, tagger_cfg.num_classes)
        tagger = _build_tagger(tagger_cfg, mel_cfg, tagger_state)
        if codec_cfg is not None and codec_state is not None:
            from models.codec import Codec

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
            from models.codec import inference_state

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


# ---------------------------------------------------------------------------------------------- loading
def _require(cond: bool, where: Path, reason: str) -> None:
    if not cond:
        raise PackError(f"{where}: {reason}")


def _check_manifest(m: Any, mp: Path) -> None:
    _require(isinstance(m, dict), mp, "manifest is not a JSON object")
    version = m.get("format_version")
    _require(
        version == FORMAT_VERSION and not isinstance(version, bool),
        mp,
        f"unsupported format version {version!r} (this Encotag reads {FORMAT_VERSION})",
    )
    missing = _KEYS_REQUIRED - set(m)
    _require(not missing, mp, f"missing keys {sorted(missing)}")
    unknown = set(m) - _KEYS_REQUIRED - _KEYS_OPTIONAL
    _require(not unknown, mp, f"unknown keys {sorted(unknown)}")
    _require(("labels" in m) != ("labels_file" in m), mp, "exactly one of labels / labels_file is needed")
    if "labels_file" in m:
        lf = m["labels_file"]
        _require(isinstance(lf, str) and bool(_SAFE_NAME.match(lf)), mp, f"bad labels_file {lf!r}")
    for key in ("name", "description", "created", "licence", "frontend"):
        _require(isinstance(m[key], str), mp, f"{key} must be a string")
    _require(isinstance(m["sample_rate"], int) and m["sample_rate"] > 0, mp, "sample_rate must be > 0")
    for key in ("tagger", "window", "embedding", "files", "provenance"):
        _require(isinstance(m[key], dict), mp, f"{key} must be an object")
    _require(m["mel"] is None or isinstance(m["mel"], dict), mp, "mel must be an object or null")
    codec = m["codec"]
    _require(codec is None or isinstance(codec, dict), mp, "codec must be an object or null")
    if codec is not None:
        _require(set(codec) == {"source", "config"}, mp, "codec needs exactly 'source' and 'config'")
        _require(codec["source"] in ("pack", "official"), mp, f"unknown codec source {codec['source']!r}")
        _require(isinstance(codec["config"], dict), mp, "codec.config must be an object")
    _require(isinstance(m["trusted"], list), mp, "trusted must be a list")
    emb = m["embedding"]
    _require(
        set(emb) == {"layout", "scene_size", "timestamp_size", "timestamp_hop_ms"},
        mp,
        "embedding needs layout, scene_size, timestamp_size, timestamp_hop_ms",
    )
    for name, digest in m["files"].items():
        _require(bool(_SAFE_NAME.match(str(name))), mp, f"bad file name {name!r}")
        _require(isinstance(digest, str) and bool(_HEX64.match(digest)), mp, f"bad sha256 for {name}")


def _configs(m: dict[str, Any], mp: Path) -> tuple[TaggerConfig, CodecConfig | None, MelConfig, WindowConfig]:
    try:
        tagger_cfg = from_dict(TaggerConfig, m["tagger"])
        codec_cfg = from_dict(CodecConfig, m["codec"]["config"]) if m["codec"] is not None else None
        mel_cfg = from_dict(MelConfig, m["mel"]) if m["mel"] is not None else MelConfig()
        window = from_dict(WindowConfig, m["window"])
    except (TypeError, ValueError) as exc:
        raise PackError(f"{mp}: bad config: {one_line(exc)}") from None
    _require(tagger_cfg.frontend == m["frontend"], mp, "frontend differs from tagger.frontend")
    is_mel = tagger_cfg.frontend == "mel"
    _require(
        is_mel == (codec_cfg is None),
        mp,
        f"a {tagger_cfg.frontend} pack needs {'no' if is_mel else 'a'} codec",
    )
    _require(is_mel == (m["mel"] is not None), mp, "mel config must be given exactly for mel packs")
    rate = mel_cfg.sample_rate if is_mel else codec_cfg.sampling_rate  # type: ignore[union-attr]
    _require(m["sample_rate"] == rate, mp, f"sample_rate {m['sample_rate']} differs from the model's {rate}")
    _require(window.window_s > 0 and 0 < window.hop_s, mp, "window and hop must be > 0")
    return tagger_cfg, codec_cfg, mel_cfg, window


def _verified_file(root: Path, files: dict[str, str], name: str) -> Path:
    path = root / name
    _require(name in files, root / MANIFEST, f"{name} has no sha256 in 'files'")
    _require(path.is_file(), path, "missing file")
    digest = sha256_file(path)
    _require(
        digest == files[name], path, f"sha256 mismatch (file {digest[:12]}…, manifest {files[name][:12]}…)"
    )
    return path


def _load_tensors(path: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types on a corrupt file
        raise PackError(f"{path}: not a readable safetensors file ({one_line(exc)})") from None


def load_pack(path: Path | str, *, tagging_only: bool = False) -> LoadedPack:
    """Load and verify the pack folder at ``path`` (see the module docstring); raises :class:`PackError`.

    ``tagging_only``: build a pack codec as a :class:`~models.tagging_codec.TaggingCodec` (checked just as
    strictly, its decoder dropped) and keep no state dicts — about 150 MB less RSS for inference."""
    root = Path(path)
    mp = root / MANIFEST
    _require(root.is_dir(), root, "not a pack folder")
    _require(mp.is_file(), mp, "missing file")
    try:
        m = json.loads(mp.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PackError(f"{mp}: not valid JSON ({one_line(exc)})") from None
    _check_manifest(m, mp)
    tagger_cfg, codec_cfg, mel_cfg, window = _configs(m, mp)
    files: dict[str, str] = m["files"]
    expected = {TAGGER_FILE} | ({CODEC_FILE} if m["codec"] and m["codec"]["source"] == "pack" else set())
    if "labels_file" in m:
        expected.add(str(m["labels_file"]))
    _require(set(files) == expected, mp, f"'files' must list exactly {sorted(expected)}")
    if "labels_file" in m:
        try:
            labels = json.loads(_verified_file(root, files, m["labels_file"]).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PackError(f"{root / m['labels_file']}: not valid JSON ({one_line(exc)})") from None
    else:
        labels = m["labels"]
    n = tagger_cfg.num_classes
    _require(
        isinstance(labels, list) and len(labels) == n and all(isinstance(x, str) for x in labels),
        mp,
        f"labels must be {n} strings",
    )
    try:
        trusted = _trusted_list(m["trusted"], n)
    except ValueError as exc:
        raise PackError(f"{mp}: {exc}") from None

    tagger_path = _verified_file(root, files, TAGGER_FILE)
    tagger_state = _load_tensors(tagger_path)
    try:
        tagger = _build_tagger(tagger_cfg, mel_cfg, tagger_state)
    except (RuntimeError, ValueError) as exc:
        raise PackError(f"{tagger_path}: does not fit the manifest's tagger: {one_line(exc)}") from None
    codec_state = None
    codec = None
    codec_id = None
    codec_source = None if m["codec"] is None else m["codec"]["source"]
    if codec_source == "pack":
        from models.codec import Codec, CodecError
        from models.tagging_codec import TaggingCodec

        codec_path = _verified_file(root, files, CODEC_FILE)
        codec_state = _load_tensors(codec_path)
        try:
            build = TaggingCodec.from_state if tagging_only else Codec.from_state
            codec = build(codec_cfg, codec_state)  # type: ignore[arg-type]
        except (CodecError, ValueError, RuntimeError) as exc:
            raise PackError(f"{codec_path}: does not fit the manifest's codec: {one_line(exc)}") from None
        codec_id = files[CODEC_FILE]
    elif codec_source == "official":
        codec_id = OFFICIAL_CODEC_ID

    layout = tuple((str(p), int(s)) for p, s in m["embedding"]["layout"])
    emb = m["embedding"]
    _require(layout == tuple(tagger.embedding_layout), mp, "embedding layout differs from the tagger's")
    size = int(tagger.embedding_size)
    _require(
        emb["scene_size"] == size and emb["timestamp_size"] == size, mp, f"embedding sizes must be {size}"
    )
    hop_ms = emb["timestamp_hop_ms"]
    _require(isinstance(hop_ms, int | float) and 0 < hop_ms <= 50, mp, "timestamp_hop_ms must be in (0, 50]")

    weight_hashes = [files[TAGGER_FILE]] + ([files[CODEC_FILE]] if CODEC_FILE in files else [])
    info = PackInfo(
        name=m["name"],
        pack_id=pack_id_of(weight_hashes),
        format_version=FORMAT_VERSION,
        sample_rate=m["sample_rate"],
        labels=tuple(labels),
        trusted=tuple(trusted),
        embedding_size=size,
        embedding_layout=layout,
        licence=m["licence"],
        provenance=dict(m["provenance"]),
    )
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
        timestamp_hop_ms=float(hop_ms),
        manifest=m,
    )
