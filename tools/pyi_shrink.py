"""Size reductions for the PyInstaller bundle, applied by ``build.spec`` to the collected binaries.

Standard library plus binutils (``strip``, ``as``, ``ld``); nothing here is imported by Encotag itself.

* :func:`strip_copy` — a copy of an ELF shared library without its static symbol table (``strip
  --strip-unneeded``). The dynamic symbols, ``.eh_frame`` (C++ exceptions) and code are untouched. Used on
  the libraries that ship "not stripped" (torch's ``libtorch_cpu.so`` alone goes from 434 to 345 MB).
  Libraries that auditwheel/patchelf rewrote (``<package>.libs/``) are never stripped: binutils breaks their
  program headers ("ELF load command address/offset not page-aligned", seen with numpy's OpenBLAS).
* :func:`shrink_icu_data` — a copy of Qt's ``libicudata.so.<N>`` (32 MB of ICU data: locale display names,
  legacy code-page converters, …) holding only the data items Qt needs. See :data:`ICU_DROP`.

Every function returns the path of a new file and never modifies its input.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

ELF_MAGIC = b"\x7fELF"

# ICU data items Qt does not use, as regular expressions on the item name (after "icudt<N>l/"):
#   unit/ curr/ lang/ region/  — display names of units, currencies, languages and regions (Qt uses its own
#                                CLDR tables for QLocale);
#   zone/                      — localized time-zone names (QTimeZone::displayName returns an empty
#                                string without them; Encotag shows no time-zone names);
#   translit/ rbnf/            — transliteration and rule-based number spelling (no Qt API uses them);
#   *.cnv                      — legacy code-page converters (QStringConverter needs them only for non-Unicode
#                                encodings; UTF-8/16/32 and Latin-1 are built into ICU and Qt);
#   brkitr/*.dict              — CJK/Thai/Lao/Khmer/Burmese word dictionaries (Qt's text layout uses its own
#                                Unicode tables and libthai, not ICU break iterators).
# Kept: the locale data itself (*.res at the top), collation (coll/), break rules
# (brkitr/*.brk, *.res), normalisation (*.nrm), properties (*.icu), StringPrep (*.spp), converter aliases.
ICU_DROP = re.compile(r"^(unit|curr|lang|region|zone|translit|rbnf)/|\.cnv$|^brkitr/[^/]+\.dict$")


def is_elf(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == ELF_MAGIC


def _section_headers(fh: BinaryIO) -> list[tuple[int, ...]]:
    """Section headers ``(name, type, flags, addr, offset, size, link)`` of a 64-bit little-endian ELF
    file open at any position (empty list for anything else)."""
    fh.seek(0)
    head = fh.read(64)
    if head[:4] != ELF_MAGIC or head[4] != 2 or head[5] != 1:
        return []
    (shoff,) = struct.unpack_from("<Q", head, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
    if shoff == 0 or shnum == 0:
        return []
    fh.seek(shoff)
    table = fh.read(shentsize * shnum)
    return [struct.unpack_from("<IIQQQQI", table, i * shentsize) for i in range(shnum)]


def _read_at(fh: BinaryIO, offset: int, size: int) -> bytes:
    fh.seek(offset)
    return fh.read(size)


def elf_section_names(path: Path) -> list[str]:
    """Section names of a 64-bit little-endian ELF file (empty list for anything else)."""
    with open(path, "rb") as fh:
        headers = _section_headers(fh)
        if not headers:
            return []
        (shstrndx,) = struct.unpack_from("<H", _read_at(fh, 0x3E, 2))
        strings = _read_at(fh, headers[shstrndx][4], headers[shstrndx][5])
    return [strings[h[0] : strings.index(b"\0", h[0])].decode("ascii", "replace") for h in headers]


def elf_needed(path: Path) -> list[str]:
    """The DT_NEEDED entries (library names) of a 64-bit little-endian ELF file."""
    with open(path, "rb") as fh:
        headers = _section_headers(fh)
        dynamic = [h for h in headers if h[1] == 6]  # SHT_DYNAMIC
        if not dynamic:
            return []
        dyn = _read_at(fh, dynamic[0][4], dynamic[0][5])
        link = dynamic[0][6]
        strings = _read_at(fh, headers[link][4], headers[link][5])
    names = []
    for i in range(0, len(dyn) - 15, 16):
        tag, val = struct.unpack_from("<qQ", dyn, i)
        if tag == 0:
            break
        if tag == 1:  # DT_NEEDED
            names.append(strings[val : strings.index(b"\0", val)].decode("ascii", "replace"))
    return names


def needs_strip(src: Path, dest: str) -> bool:
    """True for an ELF file with a static symbol table that is safe to strip."""
    if any(part.endswith(".libs") for part in Path(dest).parts[:-1]):
        return False  # auditwheel-repaired (patchelf): strip corrupts these
    if (src.parent / f".{src.name}.hmac").exists() or Path(f"{src}.hmac").exists():
        return False  # FIPS self-check (e.g. libgcrypt) hashes the file
    return is_elf(src) and ".symtab" in elf_section_names(src)


def strip_copy(src: Path, out: Path) -> Path:
    """Copy ``src`` to ``out`` and strip the copy's static symbols (``strip --strip-unneeded``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, out)
    out.chmod(out.stat().st_mode | 0o200)
    subprocess.run(["strip", "--strip-unneeded", str(out)], check=True, capture_output=True)
    return out


def _icu_symbol(lib: Path) -> tuple[str, int, int]:
    """(symbol name, file offset, size) of the ``icudt<N>_dat`` blob in an ICU data library."""
    syms = subprocess.run(
        ["readelf", "-W", "--dyn-syms", str(lib)], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(
        r":\s+([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+OBJECT\s+GLOBAL\s+\S+\s+(\d+)\s+(icudt\d+_dat)\b", syms
    )
    if not match:
        raise ValueError(f"{lib}: no icudt*_dat symbol")
    addr, size = int(match.group(1), 16), int(match.group(2), 0)
    secs = subprocess.run(["readelf", "-W", "-S", str(lib)], capture_output=True, text=True, check=True)
    for line in secs.stdout.splitlines():
        cols = re.match(r"\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if cols and cols.group(1) == match.group(3):
            sec_addr, sec_off = int(cols.group(3), 16), int(cols.group(4), 16)
            return match.group(4), sec_off + addr - sec_addr, size
    raise ValueError(f"{lib}: section of {match.group(4)} not found")


def filter_icu_common_data(blob: bytes, drop: Callable[[str], object]) -> tuple[bytes, int, int]:
    """ICU common data ("CmnD") without the items ``drop`` selects; returns (data, kept, dropped).

    Layout: header (its size in the first uint16), then the table of contents — uint32 count, count ×
    (uint32 name offset, uint32 data offset), both relative to the start of the table — then the names,
    then the items, each 16-byte aligned. Items stay in their (sorted) order; ICU binary-searches names.
    """
    header_size = struct.unpack_from("<H", blob, 0)[0]
    if blob[2:4] != b"\xda\x27" or blob[12:16] != b"CmnD":
        raise ValueError("not ICU common data (CmnD)")
    toc = header_size
    count = struct.unpack_from("<I", blob, toc)[0]
    entries = [struct.unpack_from("<II", blob, toc + 4 + 8 * i) for i in range(count)]
    items = []
    for i, (name_off, data_off) in enumerate(entries):
        name = blob[toc + name_off : blob.index(b"\0", toc + name_off)]
        end = entries[i + 1][1] if i + 1 < count else len(blob) - toc
        items.append((name, blob[toc + data_off : toc + end]))
    prefix = items[0][0].split(b"/", 1)[0] + b"/" if items else b""
    kept = [(n, d) for n, d in items if not drop(n[len(prefix) :].decode("ascii"))]
    names = b"".join(n + b"\0" for n, _ in kept)
    table_size = 4 + 8 * len(kept)
    data_start = table_size + len(names)
    data_start += (-(header_size + data_start)) % 16
    out_entries, body, name_pos, pos = [], bytearray(), table_size, data_start
    for name, data in kept:
        out_entries.append(struct.pack("<II", name_pos, pos))
        name_pos += len(name) + 1
        padded = data + b"\0" * ((-len(data)) % 16)
        body += padded
        pos += len(padded)
    table = struct.pack("<I", len(kept)) + b"".join(out_entries) + names
    table += b"\0" * (data_start - len(table))
    return blob[:header_size] + table + bytes(body), len(kept), len(items) - len(kept)


def shrink_icu_data(src: Path, out: Path, drop: Callable[[str], object] = ICU_DROP.search) -> Path:
    """Rebuild ICU data library ``src`` at ``out`` with the items ``drop`` selects left out.

    Same soname, same exported symbol (``icudt<N>_dat``), same ``$ORIGIN`` run path; assembled with
    ``as`` and linked with ``ld`` (binutils).
    """
    symbol, offset, size = _icu_symbol(src)
    with open(src, "rb") as fh:
        fh.seek(offset)
        blob = fh.read(size)
    data, _, dropped = filter_icu_common_data(blob, drop)
    if dropped == 0:
        return src
    work = out.parent / f"{out.name}.work"
    work.mkdir(parents=True, exist_ok=True)
    (work / "data.bin").write_bytes(data)
    (work / "data.s").write_text(
        "\t.section .rodata\n\t.balign 16\n"
        f"\t.globl {symbol}\n\t.type {symbol}, @object\n{symbol}:\n"
        '\t.incbin "data.bin"\n'
        f"\t.size {symbol}, . - {symbol}\n"
        '\t.section .note.GNU-stack,"",@progbits\n',
        encoding="ascii",
    )
    subprocess.run(["as", "-o", "data.o", "data.s"], cwd=work, check=True, capture_output=True)
    subprocess.run(
        ["ld", "-shared", "-soname", src.name, "-rpath", "$ORIGIN", "-o", str(out.resolve()), "data.o"],
        cwd=work,
        check=True,
        capture_output=True,
    )
    shutil.rmtree(work, ignore_errors=True)
    return out
