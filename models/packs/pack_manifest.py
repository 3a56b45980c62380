"""Model pack manifests: the format version, the error type and the strict checks of ``manifest.json``.

The manifest's keys are listed in :mod:`models.packs.pack`; this module checks a parsed manifest (a JSON
object) key by key and builds its frozen configs, raising :class:`PackError` "<path>: <reason>" on the
first problem. Torch-free.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from models.config import CodecConfig, MelConfig, TaggerConfig, WindowConfig, from_dict
from models.packs.config_checks import check_config

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_KEYS_REQUIRED = {
    "format_version", "name", "description", "created", "frontend", "sample_rate", "codec", "tagger", "mel",
    "window", "trusted", "embedding", "files", "licence", "provenance",
}  # fmt: skip
_KEYS_OPTIONAL = {"labels", "labels_file"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class PackError(ValueError):
    """A pack that cannot be used; the message is one line, "<path>: <reason>" (control characters
    escaped)."""

    def __init__(self, message: str) -> None:
        from models.safeio import printable

        super().__init__(printable(message))


def one_line(exc: BaseException) -> str:
    """The first lines of ``exc``'s message joined into one (at most 400 characters), else its type name."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:3])[:400] or type(exc).__name__


def require(cond: bool, where: Path, reason: str) -> None:
    if not cond:
        raise PackError(f"{where}: {reason}")


def check_manifest(m: Any, mp: Path) -> None:
    require(isinstance(m, dict), mp, "manifest is not a JSON object")
    version = m.get("format_version")
    require(
        version == FORMAT_VERSION and not isinstance(version, bool),
        mp,
        f"unsupported format version {version!r} (this Encotag reads {FORMAT_VERSION})",
    )
    missing = _KEYS_REQUIRED - set(m)
    require(not missing, mp, f"missing keys {sorted(missing)}")
    unknown = set(m) - _KEYS_REQUIRED - _KEYS_OPTIONAL
    require(not unknown, mp, f"unknown keys {sorted(unknown)}")
    require(("labels" in m) != ("labels_file" in m), mp, "exactly one of labels / labels_file is needed")
    if "labels_file" in m:
        lf = m["labels_file"]
        require(isinstance(lf, str) and bool(_SAFE_NAME.match(lf)), mp, f"bad labels_file {lf!r}")
    for key in ("name", "description", "created", "licence", "frontend"):
        require(isinstance(m[key], str), mp, f"{key} must be a string")
    rate = m["sample_rate"]
    require(
        isinstance(rate, int) and not isinstance(rate, bool) and 1000 <= rate <= 192_000,
        mp,
        "sample_rate must be an integer in [1000, 192000]",
    )
    for key in ("tagger", "window", "embedding", "files", "provenance"):
        require(isinstance(m[key], dict), mp, f"{key} must be an object")
    require(m["mel"] is None or isinstance(m["mel"], dict), mp, "mel must be an object or null")
    codec = m["codec"]
    require(codec is None or isinstance(codec, dict), mp, "codec must be an object or null")
    if codec is not None:
        require(set(codec) == {"source", "config"}, mp, "codec needs exactly 'source' and 'config'")
        require(codec["source"] in ("pack", "official"), mp, f"unknown codec source {codec['source']!r}")
        require(isinstance(codec["config"], dict), mp, "codec.config must be an object")
    require(isinstance(m["trusted"], list), mp, "trusted must be a list")
    require(len(m["trusted"]) <= 10_000, mp, "trusted has too many entries")
    if "labels" in m:
        require(isinstance(m["labels"], list) and len(m["labels"]) <= 10_000, mp, "labels must be a list")
    emb = m["embedding"]
    require(
        set(emb) == {"layout", "scene_size", "timestamp_size", "timestamp_hop_ms"},
        mp,
        "embedding needs layout, scene_size, timestamp_size, timestamp_hop_ms",
    )
    layout = emb["layout"]
    require(
        isinstance(layout, list)
        and 1 <= len(layout) <= 64
        and all(
            isinstance(part, list)
            and len(part) == 2
            and isinstance(part[0], str)
            and isinstance(part[1], int)
            and not isinstance(part[1], bool)
            and 0 < part[1] <= 1 << 16
            for part in layout
        ),
        mp,
        "embedding.layout must be a list of [name, size] pairs",
    )
    for key in ("scene_size", "timestamp_size"):
        require(
            isinstance(emb[key], int) and not isinstance(emb[key], bool),
            mp,
            f"embedding.{key} must be an integer",
        )
    require(len(m["files"]) <= 8, mp, "files lists too many files")
    for name, digest in m["files"].items():
        require(bool(_SAFE_NAME.match(str(name))), mp, f"bad file name {name!r}")
        require(isinstance(digest, str) and bool(_HEX64.match(digest)), mp, f"bad sha256 for {name}")


def configs(m: dict[str, Any], mp: Path) -> tuple[TaggerConfig, CodecConfig | None, MelConfig, WindowConfig]:
    try:
        tagger_cfg = from_dict(TaggerConfig, m["tagger"])
        codec_cfg = from_dict(CodecConfig, m["codec"]["config"]) if m["codec"] is not None else None
        mel_cfg = from_dict(MelConfig, m["mel"]) if m["mel"] is not None else MelConfig()
        window = from_dict(WindowConfig, m["window"])
        for cfg in (tagger_cfg, codec_cfg, mel_cfg, window):
            if cfg is not None:
                check_config(cfg)
    except (TypeError, ValueError) as exc:
        raise PackError(f"{mp}: bad config: {one_line(exc)}") from None
    require(tagger_cfg.frontend == m["frontend"], mp, "frontend differs from tagger.frontend")
    is_mel = tagger_cfg.frontend == "mel"
    require(
        is_mel == (codec_cfg is None),
        mp,
        f"a {tagger_cfg.frontend} pack needs {'no' if is_mel else 'a'} codec",
    )
    require(is_mel == (m["mel"] is not None), mp, "mel config must be given exactly for mel packs")
    rate = mel_cfg.sample_rate if is_mel else codec_cfg.sampling_rate  # type: ignore[union-attr]
    require(m["sample_rate"] == rate, mp, f"sample_rate {m['sample_rate']} differs from the model's {rate}")
    require(window.window_s > 0 and 0 < window.hop_s, mp, "window and hop must be > 0")
    return tagger_cfg, codec_cfg, mel_cfg, window
