"""``encotag info [--pack DIR] [--labels]``: what a model pack is and what it knows.

Prints the pack's name, id, kind (mel or codec) and sample rate, window/hop, label counts (all and
trusted, i.e. trained/validated on), the embedding layout, the licence and a provenance summary.
``--labels`` also lists every label (``*`` marks labels the pack was not trained on). Exit 0, or 2 when
the pack cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

MAX_VALUE = 100  # provenance values are cut to this many characters


def register(sub: Any) -> None:
    p = sub.add_parser("info", help="describe the model pack (labels, sizes, licence, provenance)")
    p.add_argument("--pack", type=Path, help="model pack folder (default: the pack shipped with Encotag)")
    p.add_argument("--labels", action="store_true", help="list every label")
    p.set_defaults(func=run)


def _short(value: Any) -> str:
    from models.safeio import printable

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return printable(text, MAX_VALUE)


def describe(pack: Any, show_labels: bool = False) -> str:
    """A human-readable summary of a :class:`models.packs.pack.LoadedPack`."""
    info = pack.info
    n_trusted = sum(bool(t) for t in info.trusted)
    if pack.codec_source is None:
        kind = f"mel front end, {info.sample_rate} Hz input"
    else:
        codec = f"{pack.codec_source} EnCodec, {info.sample_rate} Hz, {pack.codec_cfg.bandwidth:g} kbps"
        kind = f"codec ({codec}), {pack.tagger_cfg.frontend} tagger"
    n_params = sum(int(t.numel()) for t in pack.tagger_state.values())
    if pack.codec_state:
        n_params += sum(int(t.numel()) for t in pack.codec_state.values())
    layout = ", ".join(f"{name} {size}" for name, size in info.embedding_layout)
    lines = [
        f"pack:        {_short(info.name)}",
        f"folder:      {_short(str(pack.path))}",
        f"pack id:     {info.pack_id}",
        f"format:      {info.format_version}",
        f"kind:        {kind}",
        f"tagger:      MobileNetV3 width {pack.tagger_cfg.width:g}, {pack.tagger_cfg.num_classes} outputs",
        f"parameters:  {n_params:,} stored values",
        f"window:      {pack.window.window_s:g} s, hop {pack.window.hop_s:g} s",
        f"labels:      {len(info.labels)} ({n_trusted} trusted: trained/validated on)",
        f"embedding:   {info.embedding_size} dims = {layout}",
        f"licence:     {_short(info.licence)}",
    ]
    if info.provenance:
        lines.append("provenance:")
        lines += [f"  {_short(key)}: {_short(value)}" for key, value in info.provenance.items()]
    if show_labels:
        lines.append("labels (* = not trained on):")
        lines += [
            f"  {i:3d}  {_short(label)}{'' if info.trusted[i] else '  *'}"
            for i, label in enumerate(info.labels)
        ]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from models.packs.pack import PackError, load_pack
    from models.resources import default_pack_dir

    path = args.pack or default_pack_dir()
    try:
        if args.pack is None and not (Path(path) / "manifest.json").is_file():
            raise PackError(f"{path}: no default model pack installed; pass --pack DIR")
        pack = load_pack(path)
    except PackError as exc:
        print(f"encotag: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from models.safeio import printable

        print(printable(f"encotag: {exc.filename or path}: {exc.strerror or exc}"), file=sys.stderr)
        return 2
    sys.stdout.write(describe(pack, args.labels))
    return 0
