"""``encotag encode AUDIO… --out FILE.ecodes|DIR``: audio → codec code streams (``.ecodes``).

A code stream holds the RVQ codes of one recording plus the codec id, bandwidth, frame rate, sample
rate and length (format: ``models/codec/codes.py``). ``encotag tag FILE.ecodes`` tags it from the codes
directly, which is how a stream that arrives already encoded is tagged. Needs a codec pack
(``--pack``, default: the shipped pack). With one input ``--out`` may name the file; otherwise it is a
folder that gets ``<name>.ecodes`` per input. Exit codes as ``encotag tag``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from app.commands.common import add_engine_args

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "encode",
        help="encode audio files into codec code streams (.ecodes)",
        description="Encode audio files with the pack's codec into .ecodes code-stream files "
        "(tag them later with `encotag tag FILE.ecodes`).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("--out", "-o", type=Path, required=True, help="output file (one input) or folder")
    add_engine_args(p, window=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.commands.common import UsageError, load_engine, output_paths, report_failure
    from models.audio import list_audio_files
    from models.codec.codes import SUFFIX, save_codes
    from models.safeio import printable
    from models.tagging.code_tagging import encode_file

    files = list_audio_files(args.paths)
    if not files:
        print("encotag: no input files", file=sys.stderr)
        return 1
    try:
        engine = load_engine(args)
    except UsageError as exc:
        print(f"encotag: {exc}", file=sys.stderr)
        return 2
    if engine.codec is None:
        print(
            f"encotag: {args.pack or 'default pack'}: a mel pack has no codec to encode with", file=sys.stderr
        )
        return 2
    out: Path = args.out
    if len(files) > 1:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = "is a file, not a folder" if out.exists() else exc.strerror or str(exc)
            print(f"encotag: {printable(out)}: {why} (several inputs need an output folder)", file=sys.stderr)
            return 2
    failures = 0
    for path, target in zip(files, output_paths(files, out, SUFFIX), strict=True):
        assert target is not None
        try:
            stream = encode_file(engine, path)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            report_failure(path, exc)
            failures += 1
            continue
        try:  # a full disk or an unwritable target is the output's fault, not the input's
            save_codes(target, stream)
        except OSError as exc:
            print(f"encotag: {printable(target)}: cannot write ({exc.strerror or exc})", file=sys.stderr)
            failures += 1
            continue
        print(
            printable(
                f"{path} → {target}  ({stream.duration:.2f} s, {stream.codes.shape[0]} codebooks, "
                f"{stream.codes.shape[1]} frames)"
            )
        )
    return 1 if failures else 0
