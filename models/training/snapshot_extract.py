"""Extract the audio of a public repository snapshot (a bare git directory) into a plain folder.

``encotag corpus snapshot GIT_DIR --out ROOT`` writes ``ROOT/<owner>+<name>/`` with every audio file and
every licence-like text file (README, LICENSE, COPYING, credits, sources, ``*.md``/``*.txt``, and the
files the repository's licence CSV cites) of the snapshot's commit, plus ``SNAPSHOT.json``: repository,
commit, the files written and the files whose objects are absent from the snapshot (large files often
are). Missing objects are skipped, not fatal, so a partial snapshot still gives everything it holds.
Files are written atomically; a re-run skips files already present with the right size. Nothing here
executes or unpickles repository content: blobs are copied as bytes.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from models.safeio import atomic_write_bytes
from models.training.corpus_sources import AUDIO_EXT
from models.training.snapshot_licences import LICENCE_DIR, cited_files

SNAPSHOT_FILE = "SNAPSHOT.json"
MAX_AUDIO_BYTES = 512 * 1024 * 1024  # one audio file (a snapshot rarely holds more than 4 MB per file)
MAX_TEXT_BYTES = 2 * 1024 * 1024
TEXT_NAME = re.compile(
    r"(^|/)(readme|licen[cs]e|copying|credits?|sources?|authors?|copyright|attribution)[^/]*$"
    r"|\.(md|txt)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ExtractReport:
    """What :func:`extract_snapshot` did: the target folder, repository, commit and file counts."""

    folder: Path
    repo: str
    commit: str
    written: int
    kept: int
    missing: int


def _git(git_dir: Path, *args: str, binary: bool = False) -> bytes:
    res = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"git {' '.join(args[:2])}: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout


def repo_name_of(git_dir: Path) -> str:
    """``owner/name`` from a mirror path like ``/work/.mirror/owner+name/repo`` or ``…/owner+name/repo/.git``
    (else the folder name)."""
    if git_dir.name == ".git":  # a work tree's git folder: name it after the work tree
        git_dir = git_dir.parent
    for part in (git_dir.name, git_dir.parent.name):
        if "+" in part:
            owner, _, name = part.partition("+")
            return f"{owner}/{name}"
    return git_dir.name


def wanted(path: str, size: int) -> bool:
    """An audio file, or a licence-like text file of sane size."""
    low = path.lower()
    if low.endswith(AUDIO_EXT):
        return 0 < size <= MAX_AUDIO_BYTES
    return bool(TEXT_NAME.search(path)) and 0 < size <= MAX_TEXT_BYTES


def _safe_relpath(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and all(parts)


def extract_snapshot(
    git_dir: Path, out_root: Path, commit: str = "HEAD", repo: str = "", cited: Collection[str] = ()
) -> ExtractReport:
    """Copy the audio and licence files of ``commit`` in ``git_dir`` to ``out_root/<owner>+<name>/``:
    licence-like names (:func:`wanted`), ``cited`` paths, and the files the repository's committed licence
    CSV cites (:func:`models.training.snapshot_licences.cited_files`), each at most ``MAX_TEXT_BYTES``."""
    repo = repo or repo_name_of(git_dir)
    cited = set(cited) | cited_files(LICENCE_DIR / f"{repo.replace('/', '+')}.csv")
    sha = _git(git_dir, "rev-parse", f"{commit}^{{commit}}").decode().strip()
    folder = out_root / repo.replace("/", "+")
    folder.mkdir(parents=True, exist_ok=True)
    listing = _git(git_dir, "ls-tree", "-r", "-l", "-z", sha)
    present = set(
        _git(git_dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").decode().split()
    )
    written = kept = 0
    files: list[str] = []
    missing: list[str] = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, obj, size_s = meta.decode().split()
        path = raw_path.decode("utf-8", errors="surrogateescape")
        if kind != "blob" or mode == "120000" or not _safe_relpath(path):
            continue
        if not size_s.isdigit():  # ls-tree cannot size an absent object
            if path.lower().endswith(AUDIO_EXT):
                missing.append(path)
            continue
        size = int(size_s)
        if not (wanted(path, size) or (path in cited and 0 < size <= MAX_TEXT_BYTES)):
            continue
        if obj not in present:
            missing.append(path)
            continue
        dest = folder / path
        files.append(path)
        if dest.is_file() and dest.stat().st_size == size:
            kept += 1
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, _git(git_dir, "cat-file", "blob", obj))
        written += 1
    meta_doc = {"repo": repo, "commit": sha, "files": sorted(files), "missing": sorted(missing)}
    atomic_write_bytes(folder / SNAPSHOT_FILE, json.dumps(meta_doc, indent=1, ensure_ascii=False).encode())
    return ExtractReport(folder, repo, sha, written, kept, len(missing))


def read_snapshot(folder: Path) -> dict[str, object] | None:
    """The ``SNAPSHOT.json`` of ``folder`` (repo, commit, files, missing), or None if absent or damaged."""
    path = folder / SNAPSHOT_FILE
    try:
        if not path.is_file() or path.stat().st_size > 64 * 1024 * 1024:
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("repo"), str)
        or not isinstance(doc.get("commit"), str)
    ):
        return None
    return doc
