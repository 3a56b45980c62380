"""Fetching known packs and listing installed ones (models.download, models.packs.fetch/catalog and the
``encotag pack list|fetch`` commands). Every download comes from a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.download import FetchCancelled, FetchError, fetch_file
from models.packs import fetch as known
from tests.conftest import require_shared
from tests.local_http import LocalServer

BODY = bytes(range(256)) * 400  # 100 KiB
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_verifies_and_reports_progress(server: LocalServer, tmp_path: Path) -> None:
    url = server.serve("f.bin", BODY)
    seen: list[tuple[int, int]] = []
    dest = tmp_path / "dl" / "f.bin"
    assert fetch_file(url, dest, sha256=SHA, size=len(BODY), progress=lambda d, t: seen.append((d, t))) == SHA
    assert dest.read_bytes() == BODY and _leftovers(dest.parent) == ["f.bin"]
    assert seen[0] == (0, len(BODY)) and seen[-1] == (len(BODY), len(BODY))
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    # a verified file in place is used without asking the server again
    n = len(server.requests)
    assert fetch_file(server.closed_url("f.bin"), dest, sha256=SHA) == SHA
    assert len(server.requests) == n


@pytest.mark.parametrize("mode", ["corrupt", "short"])
def test_corrupt_or_truncated_download_is_refused(server: LocalServer, tmp_path: Path, mode: str) -> None:
    url = server.serve("f.bin", BODY, mode)
    dest = tmp_path / "dl" / "f.bin"
    with pytest.raises(FetchError) as info:
        fetch_file(url, dest, sha256=SHA, size=len(BODY))
    msg = str(info.value)
    assert ("corrupt download" if mode == "corrupt" else "truncated") in msg
    assert url in msg and str(dest) in msg and "\n" not in msg
    assert _leftovers(dest.parent) == []  # never a partial file, under any name


def test_cancelled_download_leaves_nothing_behind(server: LocalServer, tmp_path: Path) -> None:
    url = server.serve("big.bin", BODY * 4, "slow")
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 16384:
            cancel.set()

    dest = tmp_path / "dl" / "big.bin"
    with pytest.raises(FetchCancelled):
        fetch_file(url, dest, sha256=None, progress=progress, cancel=cancel)
    assert 16384 <= seen[-1] < len(BODY) * 4
    assert _leftovers(dest.parent) == []


def test_offline_message_names_file_url_and_place(tmp_path: Path) -> None:
    url = LocalServer.closed_url("mn04_as_mAP_432.pt")
    dest = tmp_path / "downloads" / "mn04_as_mAP_432.pt"
    with pytest.raises(FetchError) as info:
        fetch_file(url, dest, sha256=SHA)
    msg = str(info.value)
    assert msg.startswith("cannot download mn04_as_mAP_432.pt")
    assert f"download {url} by hand and put it at {dest}" in msg and "\n" not in msg


def test_hand_placed_file_is_checked(tmp_path: Path) -> None:
    url = LocalServer.closed_url("f.bin")
    dest = tmp_path / "f.bin"
    dest.write_bytes(BODY)
    assert fetch_file(url, dest, sha256=SHA) == SHA  # the right file: used, no network needed
    dest.write_bytes(BODY[:-1])
    with pytest.raises(FetchError, match="is not the expected"):
        fetch_file(url, dest, sha256=SHA)


def test_oversized_download_refused_before_reading(server: LocalServer, tmp_path: Path) -> None:
    url = server.serve("f.bin", BODY)
    with pytest.raises(FetchError, match="the server offers 102400 bytes, expected 1000"):
        fetch_file(url, tmp_path / "f.bin", sha256=SHA, size=1000)
    with pytest.raises(FetchError, match="expected at most 5000"):
        fetch_file(url, tmp_path / "f.bin", sha256=SHA, max_bytes=5000)
    assert _leftovers(tmp_path) == []


def test_known_pack_is_fetched_and_built_from_a_local_server(server: LocalServer, tmp_path: Path) -> None:
    """The real teacher file, served locally, becomes the mel reference pack (skips without ../shared)."""
    from models.packs.catalog import summarize
    from models.packs.pack import load_pack

    weights = require_shared("teachers", "efficientat_mn04_as", "mn04_as_mAP_432.pt").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == known.MN04.sha256 and len(weights) == known.MN04.size
    url = server.serve("mn04_as_mAP_432.pt", weights)
    packs, downloads = tmp_path / "packs", tmp_path / "downloads"
    seen: list[tuple[int, int]] = []
    out = known.ensure_known_pack("efficientat-mn04", packs, downloads, urls={known.MN04.name: url},
                                  progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert out == packs / "efficientat-mn04-reference" and seen[-1] == (len(weights), len(weights))
    pack = load_pack(out)
    assert pack.codec_source is None and len(pack.info.labels) == 527 and all(pack.info.trusted)
    s = summarize(out)
    assert (s.kind, s.n_trusted, s.licence.startswith("MIT")) == ("mel", 527, True)
    assert ("audioset_mAP (published, EfficientAT)", 0.432) in s.figures
    n = len(server.requests)
    assert known.ensure_known_pack("efficientat-mn04", packs, downloads) == out  # installed: no fetch
    assert len(server.requests) == n


def test_known_pack_corrupt_download_builds_nothing(server: LocalServer, tmp_path: Path) -> None:
    small = dataclasses.replace(known.MN04, sha256=SHA, size=len(BODY))
    url = server.serve(small.name, BODY, "corrupt")
    pk = dataclasses.replace(known.KNOWN_PACKS["efficientat-mn04"], files=(small,))
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(known.KNOWN_PACKS, "efficientat-mn04", pk)
        with pytest.raises(FetchError, match="corrupt download"):
            known.ensure_known_pack("efficientat-mn04", tmp_path / "packs", tmp_path / "dl",
                                    urls={small.name: url})  # fmt: skip
    assert _leftovers(tmp_path / "dl") == [] and _leftovers(tmp_path / "packs") == []
    with pytest.raises(FetchError, match="unknown pack 'nope'"):
        known.ensure_known_pack("nope", tmp_path, tmp_path)


def test_official_codec_download_can_be_cancelled(tmp_path: Path) -> None:
    import io

    from models.codec.official import official_codec

    class Resp:  # a finite body: 8 MiB of weights (cancelled at 2 MiB), a tiny config
        def __init__(self, body: bytes) -> None:
            self.headers = {"Content-Length": str(len(body))}
            self._buf = io.BytesIO(body)

        def read(self, n: int = -1) -> bytes:
            return self._buf.read(n)

        def close(self) -> None:
            pass

    def opener(url: str) -> Resp:
        return Resp(b"{}" if url.endswith("config.json") else bytes(8 << 20))

    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done >= 2 << 20:
            cancel.set()

    with pytest.raises(FetchCancelled):
        official_codec(progress, tmp_path, opener=opener, cancel=cancel)
    assert "model.safetensors" not in _leftovers(tmp_path) and not list(tmp_path.glob("*.part"))


# --- the catalog and the commands --------------------------------------------------------------------
def test_summaries_of_codec_mel_and_broken_packs(
    tiny_codec_pack: Path, tiny_mel_pack: Path, tmp_path: Path
) -> None:
    from models.packs.catalog import installed_packs, summarize

    codec, mel = summarize(tiny_codec_pack), summarize(tiny_mel_pack)
    assert (codec.kind, mel.kind) == ("codec tokens", "mel")
    manifest = json.loads((tiny_mel_pack / "manifest.json").read_text())
    assert mel.n_labels == 527 and mel.n_trusted == sum(bool(t) for t in manifest["trusted"]) == 264
    files = sum((tiny_mel_pack / f).stat().st_size for f in manifest["files"])
    assert mel.size_bytes == files + (tiny_mel_pack / "manifest.json").stat().st_size
    assert mel.licence == "MIT" and mel.figures == () and mel.figures_text == "none recorded"
    broken = tmp_path / "broken"
    shutil.copytree(tiny_mel_pack, broken)
    (broken / "manifest.json").write_text("{not json")
    bad = summarize(broken)
    assert "manifest.json" in bad.error and bad.describe().endswith(f"unreadable ({bad.error})")
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "manifest.json").symlink_to("/dev/zero")  # never read without bound
    assert summarize(hostile).error and summarize(hostile).name == ""
    listed = installed_packs(tmp_path, [tiny_codec_pack, str(tiny_codec_pack)])
    paths = [s.path for s in listed]
    assert broken in paths and hostile in paths and paths.count(tiny_codec_pack) == 1
    assert any(s.shipped for s in listed) == (Path(listed[0].path) / "manifest.json").is_file()


def test_pack_list_and_fetch_commands(
    server: LocalServer,
    tiny_mel_pack: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app import paths
    from app.cli import main

    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    shutil.copytree(tiny_mel_pack, paths.packs_dir(ensure=True) / "tiny")
    assert main(["pack", "list"]) == 0
    out = capsys.readouterr().out
    assert "  kind:       mel" in out and str(paths.packs_dir() / "tiny") in out
    assert "trusted:    264 of 527 labels" in out and "licence:    MIT" in out
    assert "encotag pack fetch efficientat-mn04" in out  # not installed yet

    small = dataclasses.replace(
        known.MN04, sha256=SHA, size=len(BODY), url=server.serve("w.pt", BODY, "corrupt")
    )
    pk = dataclasses.replace(known.KNOWN_PACKS["efficientat-mn04"], files=(small,))
    monkeypatch.setitem(known.KNOWN_PACKS, "efficientat-mn04", pk)
    assert main(["pack", "fetch", "efficientat-mn04"]) == 1
    err = capsys.readouterr().err
    assert "corrupt download" in err and str(paths.downloads_dir() / small.name) in err
    assert not (paths.downloads_dir() / small.name).exists()


def test_pack_fetch_command_builds_the_reference_pack(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``encotag pack fetch efficientat-mn04`` end to end, the real file served locally (skips without
    ../shared); ``pack list`` then shows the new pack with its manifest figures."""
    from app import paths
    from app.cli import main

    weights = require_shared("teachers", "efficientat_mn04_as", "mn04_as_mAP_432.pt").read_bytes()
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    url = server.serve(known.MN04.name, weights)
    pk = dataclasses.replace(
        known.KNOWN_PACKS["efficientat-mn04"], files=(dataclasses.replace(known.MN04, url=url),)
    )
    monkeypatch.setitem(known.KNOWN_PACKS, "efficientat-mn04", pk)
    assert main(["pack", "fetch", "efficientat-mn04"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"ok: efficientat-mn04 at {paths.packs_dir() / 'efficientat-mn04-reference'}"
    assert main(["pack", "list"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("  EfficientAT mn04_as (mel reference)") :]
    assert "kind:       mel\n" in block and "trusted:    527 of 527 labels" in block
    assert "evaluation: audioset_mAP (published, EfficientAT) 0.432" in block
    assert "size:       4.0 MB" in block and "licence:    MIT (EfficientAT" in block
    assert "not installed" not in out
