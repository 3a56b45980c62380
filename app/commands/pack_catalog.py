"""``encotag pack list`` and ``encotag pack fetch NAME``: the installed packs, and known packs fetched.

- ``encotag pack list``: one block per installed pack (the shipped one, the user's packs folder
  ``<user data>/packs``, the pack chosen in the settings): name, folder, kind (codec tokens or mel), size,
  licence, trusted-label count and the evaluation figures recorded in its manifest; ``*`` marks the pack
  the app uses.
- ``encotag pack fetch efficientat-mn04`` downloads the EfficientAT mn04_as weights (MIT, 4 MB) from
  their GitHub release, verifies the sha256 and builds the mel reference pack in the packs folder;
  ``encotag pack fetch encodec-24khz`` fetches the official EnCodec 24 kHz weights (for packs whose
  codec is "official") into the cache. Offline, the error names the file, its URL and where to put it.

Exit codes: 0 ok, 1 the fetch failed, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

CODEC_KEY = "encodec-24khz"


def register(psub: Any) -> None:
    ls = psub.add_parser(
        "list", help="list the installed packs: kind, size, licence, trusted labels, figures"
    )
    ls.set_defaults(func=run_list)
    f = psub.add_parser("fetch", help="download and build a known pack (or the official EnCodec weights)")
    from models.packs.fetch import KNOWN_PACKS

    f.add_argument("name", choices=[*sorted(KNOWN_PACKS), CODEC_KEY], help="what to fetch")
    f.set_defaults(func=run_fetch)


def current_pack() -> Path | None:
    """The pack folder the app uses (the settings' ``pack_path``), None for the shipped default."""
    from app.settings import load_settings

    try:
        chosen = load_settings().pack_path
    except (OSError, ValueError):
        chosen = None
    return Path(chosen) if chosen else None


def format_summary(s: Any, current: bool) -> str:
    mark = "*" if current else " "
    official = " (official EnCodec 24 kHz, fetched on first use)" if s.needs_official_codec else ""
    if s.error:
        return f"{mark} {s.path}\n    unreadable: {s.error}\n"
    return (
        f"{mark} {s.name}{' (shipped)' if s.shipped else ''}\n"
        f"    folder:     {s.path}\n"
        f"    kind:       {s.kind}{official}\n"
        f"    size:       {s.size_text}\n"
        f"    licence:    {s.licence}\n"
        f"    trusted:    {s.n_trusted} of {s.n_labels} labels\n"
        f"    evaluation: {s.figures_text}\n"
    )


def run_list(args: argparse.Namespace) -> int:
    from app.paths import packs_dir
    from models.packs.catalog import installed_packs
    from models.packs.fetch import KNOWN_PACKS, is_installed

    chosen = current_pack()
    packs = installed_packs(packs_dir(), [chosen])
    for s in packs:
        current = (s.path == chosen) if chosen is not None else s.shipped
        sys.stdout.write(format_summary(s, current))
    missing = [k for k in KNOWN_PACKS.values() if not is_installed(k, packs_dir())]
    for k in missing:
        sys.stdout.write(f"  (not installed: {k.title}, {k.licence}; `encotag pack fetch {k.key}`)\n")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from app.commands.common import ProgressPrinter
    from app.paths import downloads_dir, packs_dir
    from models.download import FetchCancelled, FetchError
    from models.packs.pack import PackError
    from models.safeio import printable

    bar = ProgressPrinter(f"fetching {args.name}", piped=False)
    try:
        if args.name == CODEC_KEY:
            from models.codec.official import CodecUnavailable, default_cache_dir, official_codec

            try:
                official_codec(bar.counter("model.safetensors"))
            except CodecUnavailable as exc:
                raise FetchError(str(exc)) from None
            out = default_cache_dir()
        else:
            from models.packs.fetch import ensure_known_pack

            out = ensure_known_pack(args.name, packs_dir(), downloads_dir(),
                                    progress=bar.counter(args.name))  # fmt: skip
    except (FetchError, PackError) as exc:
        bar.close()
        print(printable(f"encotag: {exc}"), file=sys.stderr)
        return 1
    except (FetchCancelled, KeyboardInterrupt):
        bar.close()
        print("encotag: cancelled; nothing was kept", file=sys.stderr)
        return 1
    bar.close()
    print(printable(f"ok: {args.name} at {out}"))
    return 0
