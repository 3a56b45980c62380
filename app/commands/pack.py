"""``encotag pack teacher|verify|list|fetch``: build the teacher pack, check a pack, list the installed
packs, fetch a known pack (``list`` and ``fetch``: :mod:`app.commands.pack_catalog`).

- ``encotag pack teacher --out DIR [--teacher DIR]`` converts EfficientAT's mn04_as (default
  ``../shared/teachers/efficientat_mn04_as``, looked up beside the source checkout, then relative to
  the current folder) into a mel pack at DIR.
- ``encotag pack verify DIR`` loads a pack strictly (manifest, hashes, tensor shapes) and prints its id.

Exit codes: 0 ok, 1 the pack is broken or could not be built, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

TEACHER_PARTS = ("shared", "teachers", "efficientat_mn04_as")


def default_teacher_dir() -> Path:
    """``../shared/teachers/efficientat_mn04_as`` beside the repository, else relative to the cwd."""
    beside_repo = Path(__file__).resolve().parents[3].joinpath(*TEACHER_PARTS)
    return beside_repo if beside_repo.is_dir() else Path("..").joinpath(*TEACHER_PARTS)


def register(sub: Any) -> None:
    p = sub.add_parser("pack", help="list, fetch, build or verify model packs")
    psub = p.add_subparsers(dest="pack_command", metavar="ACTION", required=True)
    t = psub.add_parser("teacher", help="convert the EfficientAT mn04_as teacher into a mel pack")
    t.add_argument("--out", type=Path, required=True, help="pack folder to write")
    t.add_argument("--teacher", type=Path, default=None, help="teacher folder (default ../shared/teachers/…)")
    t.set_defaults(func=run)
    v = psub.add_parser("verify", help="load a pack strictly and print its id")
    v.add_argument("dir", type=Path, help="pack folder")
    v.set_defaults(func=run)
    from app.commands.pack_catalog import register as register_catalog

    register_catalog(psub)


def run(args: argparse.Namespace) -> int:
    from models.packs.pack import PackError, load_pack
    from models.packs.teacher_pack import build_teacher_pack
    from models.safeio import printable

    try:
        if args.pack_command == "teacher":
            teacher = args.teacher or default_teacher_dir()
            out = build_teacher_pack(teacher, args.out)
            pack = load_pack(out)
            print(f"{out}: {pack.info.name} (pack id {pack.info.pack_id})")
            return 0
        pack = load_pack(args.dir)
    except PackError as exc:
        print(f"encotag: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(printable(f"encotag: {exc.filename or ''}: {exc.strerror or exc}"), file=sys.stderr)
        return 1
    n_trusted = sum(bool(t) for t in pack.info.trusted)
    print(
        printable(
            f"ok: {args.dir}: {pack.info.name}, pack id {pack.info.pack_id}, {len(pack.info.labels)} labels "
            f"({n_trusted} trusted)"
        )
    )
    return 0
