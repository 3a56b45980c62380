"""Hand-made per-file licence lists of repository snapshots (``licences/<owner>+<name>.csv`` here).

Some repositories credit their sounds in prose, by title, per sound event or in HTML rather than in a
Markdown table. For those the licence of each file was read by hand from the repository's credits file and
written to a CSV committed here, one row per file, with the columns ``path`` (inside the repository),
``licence`` (an SPDX-like id: ``CC0-1.0``, ``CC-BY-4.0``, ``public-domain``, …), ``stated_in`` (the
repository file that states it), ``freesound_id`` (the recording's Freesound ID; several separated by
spaces where the credit names several recordings for the file; empty if unknown) and ``note`` (which credit
line). Only listed files are used; a row whose ``stated_in`` file is not in the snapshot, or that names an
excluded Freesound ID, is refused.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

LICENCE_DIR = Path(__file__).resolve().parent / "licences"
COLUMNS = ("path", "licence", "stated_in", "freesound_id", "note")


class LicenceRow(NamedTuple):
    """One file's licence, the repository file that states it and its Freesound IDs (maybe none)."""

    licence: str
    stated_in: str
    freesound_ids: tuple[str, ...]


def read_licence_csv(path: Path) -> dict[str, LicenceRow]:
    """``{repository path: row}`` from a licence CSV (nothing if the file is absent); a CSV with other
    columns, an empty or repeated path or a non-numeric Freesound ID raises ``ValueError``."""
    if not path.is_file():
        return {}
    out: dict[str, LicenceRow] = {}
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: the columns must be {','.join(COLUMNS)}")
        for n, row in enumerate(reader, start=2):
            rel = (row.get("path") or "").strip()
            ids = tuple((row.get("freesound_id") or "").split())
            if not rel or rel in out or not all(i.isdigit() for i in ids):
                raise ValueError(f"{path}:{n}: empty or repeated path, or a non-numeric Freesound ID")
            lic, stated = (row.get("licence") or "").strip(), (row.get("stated_in") or "").strip()
            out[rel] = LicenceRow(lic, stated, ids)
    return out


def csv_licence(
    rel: str, rows: dict[str, LicenceRow], banned: frozenset[str], present: set[str]
) -> tuple[str, str]:
    """``(licence, stated_in)`` of the repository path ``rel``; ``("", "")`` if it is not listed, if any
    of its Freesound IDs is in ``banned`` or if its ``stated_in`` file is not among ``present``."""
    row = rows.get(rel)
    if row is None or not row.licence or row.stated_in not in present:
        return "", ""
    if any(i in banned for i in row.freesound_ids):
        return "", ""
    return row.licence, row.stated_in


def cited_files(path: Path) -> set[str]:
    """The repository files a licence CSV cites (its ``stated_in`` column; nothing if the CSV is absent):
    :func:`models.training.snapshot_extract.extract_snapshot` copies them whatever their name, so a
    licence stated in, say, an app's sound catalogue (``Assets/Data.json``) is in the snapshot."""
    return {row.stated_in for row in read_licence_csv(path).values() if row.stated_in}
