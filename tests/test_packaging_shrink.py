"""tools/pyi_shrink.py: the bundle's size reductions (ICU data filtering, ELF inspection, strip)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
try:
    import pyi_shrink
finally:
    sys.path.remove(str(REPO / "tools"))


def common_data(items: dict[str, bytes]) -> bytes:
    """A minimal ICU common-data blob ("CmnD") holding ``items`` (names sorted, data 16-byte aligned)."""
    header = struct.pack("<H", 32) + b"\xda\x27" + b"\x14\x00\x00\x00\x00\x00\x02\x00" + b"CmnD"
    header += b"\0" * (32 - len(header))
    names = sorted(items)
    table = 4 + 8 * len(names)
    name_bytes = b"".join(f"pkg/{n}".encode() + b"\0" for n in names)
    start = table + len(name_bytes)
    start += (-(32 + start)) % 16
    entries, body, name_pos, pos = [], b"", table, start
    for n in names:
        entries.append(struct.pack("<II", name_pos, pos))
        name_pos += len(f"pkg/{n}") + 1
        data = items[n] + b"\0" * (-len(items[n]) % 16)
        body += data
        pos += len(data)
    toc = struct.pack("<I", len(names)) + b"".join(entries) + name_bytes
    return header + toc + b"\0" * (start - len(toc)) + body


def items_of(blob: bytes) -> dict[str, bytes]:
    """Parse a common-data blob back into {name: data (with its alignment padding)}."""
    toc = struct.unpack_from("<H", blob, 0)[0]
    count = struct.unpack_from("<I", blob, toc)[0]
    entries = [struct.unpack_from("<II", blob, toc + 4 + 8 * i) for i in range(count)]
    out = {}
    for i, (name_off, data_off) in enumerate(entries):
        assert (toc + data_off) % 16 == 0
        name = blob[toc + name_off : blob.index(b"\0", toc + name_off)].decode()
        end = entries[i + 1][1] if i + 1 < count else len(blob) - toc
        out[name] = blob[toc + data_off : toc + end]
    return out


def test_icu_filter_keeps_only_wanted_items_aligned_and_sorted() -> None:
    items = {
        "root.res": b"R" * 40,
        "de.res": b"D" * 17,
        "ibm-943.cnv": b"C" * 100,
        "lang/de.res": b"L" * 33,
        "brkitr/cjdict.dict": b"J" * 70,
        "brkitr/word.brk": b"W" * 20,
        "coll/de.res": b"K" * 5,
        "unames.icu": b"U" * 8,
    }
    blob = common_data(items)
    assert items_of(blob)["pkg/ibm-943.cnv"].rstrip(b"\0") == b"C" * 100
    out, kept, dropped = pyi_shrink.filter_icu_common_data(blob, pyi_shrink.ICU_DROP.search)
    assert (kept, dropped) == (5, 3)
    parsed = items_of(out)
    assert list(parsed) == sorted(parsed)
    expected = {"brkitr/word.brk", "coll/de.res", "de.res", "root.res", "unames.icu"}
    assert {n.removeprefix("pkg/") for n in parsed} == expected
    for name in expected:
        assert parsed[f"pkg/{name}"].rstrip(b"\0") == items[name]
    same, kept_all, none = pyi_shrink.filter_icu_common_data(blob, lambda name: False)
    assert (kept_all, none) == (8, 0) and items_of(same) == items_of(blob)
    with pytest.raises(ValueError, match="CmnD"):
        pyi_shrink.filter_icu_common_data(b"\x20\x00\xda\x27" + b"\0" * 60, lambda name: False)


def _icu_library() -> Path | None:
    try:
        import PySide6
    except ImportError:
        return None
    found = sorted(Path(PySide6.__file__).parent.glob("Qt/lib/libicudata.so.*"))
    return found[0] if found else None


@pytest.mark.skipif(shutil.which("as") is None or shutil.which("ld") is None, reason="binutils not installed")
def test_shrunk_icu_library_keeps_soname_and_symbol(tmp_path: Path) -> None:
    lib = _icu_library()
    if lib is None:
        pytest.skip("PySide6 without a bundled libicudata")
    out = pyi_shrink.shrink_icu_data(lib, tmp_path / lib.name)
    assert out.is_file() and out.stat().st_size < lib.stat().st_size
    symbol, offset, size = pyi_shrink._icu_symbol(out)
    assert symbol == pyi_shrink._icu_symbol(lib)[0]
    blob = out.read_bytes()[offset : offset + size]
    names = items_of(blob)
    assert any(n.endswith("/root.res") for n in names)
    assert not any(n.endswith(".cnv") or "/lang/" in n for n in names)
    dynamic = subprocess.run(["readelf", "-d", str(out)], capture_output=True, text=True, check=True).stdout
    assert f"[{lib.name}]" in dynamic and "[$ORIGIN]" in dynamic


def test_elf_inspection_and_strip(tmp_path: Path) -> None:
    ext = Path(struct.__file__) if struct.__file__ and struct.__file__.endswith(".so") else None
    candidates = [p for p in [ext, *Path(sys.base_prefix).glob("lib/python3*/lib-dynload/*.so")] if p]
    if not candidates:
        pytest.skip("no ELF extension module found")
    lib = candidates[0]
    assert pyi_shrink.is_elf(lib) and not pyi_shrink.is_elf(Path(__file__))
    sections = pyi_shrink.elf_section_names(lib)
    assert ".dynamic" in sections and ".text" in sections
    assert not pyi_shrink.needs_strip(lib, "numpy.libs/" + lib.name)
    if shutil.which("strip") is None or shutil.which("readelf") is None:
        pytest.skip("binutils not installed")
    dynamic = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True, check=True).stdout
    needed = [line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]
    assert pyi_shrink.elf_needed(lib) == needed
    out = pyi_shrink.strip_copy(lib, tmp_path / "sub" / lib.name)
    assert out.is_file() and out.stat().st_size <= lib.stat().st_size
    assert ".symtab" not in pyi_shrink.elf_section_names(out)
    assert not pyi_shrink.needs_strip(out, out.name)
