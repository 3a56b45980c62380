"""The official EnCodec 24 kHz checkpoint (``facebook/encodec_24khz``): fetched on first use, verified.

Files (Hugging Face hub, ``resolve/main``): ``config.json`` and ``model.safetensors`` (~93 MB, 23.3 M values
in float32: 14.9 M weights + the RVQ codebooks). They go to the user data folder, beside the fetched
packs: ``platformdirs.user_data_dir("encotag")/codecs/encodec_24khz/`` (``$ENCOTAG_HOME/data/…`` when
set); nothing is downloaded at import time.

Verification, in order:
1. a pinned sha256 in :data:`PINNED_SHA256` (none is pinned yet: the project could not read the hub's
   hash offline), else the sha256 the hub declares for the LFS file (its ``X-Linked-Etag`` header on the
   redirect), else none;
2. the byte count against ``Content-Length`` (a truncated download is refused);
3. the file must parse as safetensors and load with ``strict=True`` into a :class:`~models.codec.codec.Codec`
   built from the downloaded ``config.json``.
Checks 1 and 2 run on a temp file that is renamed into place (atomic) only when they pass; a download
failing check 3 is deleted again. The sha256 and size of each download are recorded in ``fetched.json``
beside it; every later load re-hashes the cached files against that record (trust on first use when no
hash was known at download time) and refuses a changed file.

Offline (or on any failure) :class:`CodecUnavailable` says which URL to download and where to put it;
a file placed there by hand is accepted if it loads strictly, and its hash is recorded then.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from models.config import CodecConfig
from models.download import FetchCancelled
from models.tagging.windows import CancelFlag, is_cancelled

log = logging.getLogger(__name__)

REPO = "facebook/encodec_24khz"
BASE_URL = f"https://huggingface.co/{REPO}/resolve/main/"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
RECORD_FILE = "fetched.json"
#: Known sha256 of the hub files; ``None`` = not pinned (see the module docstring).
PINNED_SHA256: dict[str, str | None] = {CONFIG_FILE: None, WEIGHTS_FILE: None}
_CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

ProgressFn = Callable[[int, int], None]


class CodecUnavailable(RuntimeError):  # noqa: N818 (name fixed by the architecture contract)
    """The official codec could not be fetched or verified; the message says what to download and where."""


class _Response(Protocol):
    headers: Any

    def read(self, n: int = -1) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[str], _Response]


def is_cached(cache_dir: Path | str | None = None) -> bool:
    """Whether both official files are in the cache (verified again when loaded)."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return all((folder / name).is_file() for name in (CONFIG_FILE, WEIGHTS_FILE))


def default_cache_dir() -> Path:
    """``<user data>/codecs/encodec_24khz``: platformdirs' user data folder for "encotag", or
    ``$ENCOTAG_HOME/data`` when that variable is set (the same rule as ``app.paths.data_dir``). The
    data folder, not the cache: the fetched packs and their downloads live there too, and a cache
    cleaner must not make the next start download 93 MB again."""
    home = os.environ.get("ENCOTAG_HOME", "").strip()
    if home:
        root = Path(home).expanduser() / "data"
    else:
        import platformdirs

        root = Path(platformdirs.user_data_dir("encotag", appauthor=False))
    return root / "codecs" / "encodec_24khz"


class _RecordingRedirects(urllib.request.HTTPRedirectHandler):
    """Keeps the hub's ``X-Linked-*`` headers from redirect responses (they carry the LFS sha256)."""

    def __init__(self) -> None:
        self.linked: dict[str, str] = {}

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        for name in ("X-Linked-Etag", "X-Linked-Size"):
            if headers.get(name):
                self.linked[name] = headers[name]
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _urllib_open(url: str) -> _Response:
    redirects = _RecordingRedirects()
    opener = urllib.request.build_opener(redirects)
    opener.addheaders = [("User-Agent", "encotag")]
    resp = opener.open(url, timeout=30)
    for name, value in redirects.linked.items():
        if resp.headers.get(name) is None:
            resp.headers[name] = value
    return resp


def _declared_sha256(headers: Any) -> str | None:
    for name in ("X-Linked-Etag", "X-Sha256"):
        value = headers.get(name) if headers is not None else None
        if value:
            value = value.strip().removeprefix("W/").strip('"').lower()
            if _HEX64.match(value):
                return value
    return None


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    *,
    expected_sha256: str | None = None,
    progress: ProgressFn | None = None,
    opener: Opener | None = None,
    cancel: CancelFlag = None,
) -> str:
    """Download ``url`` to ``dest`` atomically (temp file in ``dest``'s folder, then ``os.replace``).

    Verifies the byte count against ``Content-Length`` and the sha256 against ``expected_sha256`` or the
    server-declared one; returns the sha256. Raises ``OSError``/``ValueError`` on failure and
    :class:`models.download.FetchCancelled` when ``cancel`` is set (the temp file removed either way).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    resp = (opener or _urllib_open)(url)
    try:
        total = int(resp.headers.get("Content-Length") or 0) if resp.headers is not None else 0
        expected = expected_sha256 or _declared_sha256(resp.headers)
        fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        done = 0
        try:
            with os.fdopen(fd, "wb") as out:
                if progress is not None:
                    progress(0, total)
                while block := resp.read(_CHUNK):
                    if is_cancelled(cancel):
                        raise FetchCancelled
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
            if total and done != total:
                raise ValueError(f"truncated download: {done} of {total} bytes")
            got = digest.hexdigest()
            if expected is not None and got != expected:
                raise ValueError(f"sha256 mismatch: got {got}, expected {expected}")
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    finally:
        resp.close()
    log.info("downloaded %s (%d bytes, sha256 %s)", url, done, got)
    return got


def codec_config_from_hf(data: dict[str, Any]) -> CodecConfig:
    """A :class:`CodecConfig` from a Hugging Face EnCodec ``config.json`` (mono, unchunked models only)."""
    if data.get("model_type", "encodec") != "encodec":
        raise ValueError(f"not an EnCodec config (model_type {data.get('model_type')!r})")
    if int(data.get("audio_channels", 1)) != 1 or data.get("chunk_length_s") or data.get("normalize"):
        raise ValueError(
            "only mono, unchunked, unnormalised EnCodec models (like the 24 kHz one) are supported"
        )
    base = CodecConfig()
    bandwidths = tuple(float(b) for b in data.get("target_bandwidths", base.target_bandwidths))
    return CodecConfig(
        sampling_rate=int(data.get("sampling_rate", base.sampling_rate)),
        num_filters=int(data.get("num_filters", base.num_filters)),
        upsampling_ratios=tuple(int(r) for r in data.get("upsampling_ratios", base.upsampling_ratios)),
        hidden_size=int(data.get("hidden_size", base.hidden_size)),
        codebook_size=int(data.get("codebook_size", base.codebook_size)),
        target_bandwidths=bandwidths,
        bandwidth=base.bandwidth if base.bandwidth in bandwidths else bandwidths[0],
        num_lstm_layers=int(data.get("num_lstm_layers", base.num_lstm_layers)),
        num_residual_layers=int(data.get("num_residual_layers", base.num_residual_layers)),
        norm_type=str(data.get("norm_type", base.norm_type)),
        use_causal_conv=bool(data.get("use_causal_conv", base.use_causal_conv)),
    )


def _unavailable(reason: str, cache_dir: Path, base_url: str) -> CodecUnavailable:
    return CodecUnavailable(
        f"official EnCodec 24 kHz codec unavailable ({reason}); download {base_url}{WEIGHTS_FILE} to "
        f"{cache_dir / WEIGHTS_FILE} and {base_url}{CONFIG_FILE} to {cache_dir / CONFIG_FILE}"
    )


def _load_verified(cache_dir: Path, bandwidth: float | None):  # -> Codec
    """Load the cached files into a Codec (strict); raises ValueError on any problem."""
    from safetensors.torch import load_file

    from models.codec.codec import Codec, CodecError

    cfg = codec_config_from_hf(json.loads((cache_dir / CONFIG_FILE).read_text(encoding="utf-8")))
    if bandwidth is not None:
        if bandwidth not in cfg.target_bandwidths:
            raise ValueError(f"bandwidth {bandwidth} not in {cfg.target_bandwidths}")
        cfg = dataclasses.replace(cfg, bandwidth=float(bandwidth))
    try:
        state = load_file(str(cache_dir / WEIGHTS_FILE))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types on a corrupt header
        raise ValueError(f"{WEIGHTS_FILE} is not a valid safetensors file ({exc})") from None
    try:
        return Codec.from_state(cfg, state)
    except CodecError as exc:
        raise ValueError(f"{WEIGHTS_FILE} does not fit {CONFIG_FILE}: {exc}") from None


def _read_record(cache_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((cache_dir / RECORD_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_record(cache_dir: Path, record: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=RECORD_FILE + ".", dir=cache_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)
    os.replace(tmp, cache_dir / RECORD_FILE)


def official_codec(
    progress: ProgressFn | None = None,
    cache_dir: Path | str | None = None,
    *,
    bandwidth: float | None = None,
    base_url: str = BASE_URL,
    opener: Opener | None = None,
    allow_download: bool = True,
    fuse: bool = True,
    cancel: CancelFlag = None,
):  # -> models.codec.codec.Codec
    """The official 24 kHz EnCodec as a :class:`~models.codec.codec.Codec`
    (weight norm fused, unless told not to).

    Downloads the two files on first use (``progress(done_bytes, total_bytes)`` for the weights; total 0
    when unknown), verifies them (module docstring) and caches them. ``bandwidth`` (kbps) defaults to 6.
    Raises :class:`CodecUnavailable` (naming the URL and the path to place the file at) when the files
    cannot be fetched or do not verify, :class:`models.download.FetchCancelled` when ``cancel`` is set
    during a download (nothing is left behind).
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        return _official_codec(folder, progress, bandwidth, base_url, opener, allow_download, fuse, cancel)
    except CodecUnavailable:
        raise
    except OSError as exc:
        raise _unavailable(str(exc), folder, base_url) from None


def _official_codec(
    folder: Path,
    progress: ProgressFn | None,
    bandwidth: float | None,
    base_url: str,
    opener: Opener | None,
    allow_download: bool,
    fuse: bool,
    cancel: CancelFlag = None,
):  # -> models.codec.codec.Codec
    record = _read_record(folder)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        path = folder / name
        if path.is_file():
            continue
        if not allow_download:
            raise _unavailable(f"{name} not in the cache and downloading is off", folder, base_url)
        try:
            sha = download(
                base_url + name,
                path,
                expected_sha256=PINNED_SHA256.get(name),
                progress=progress if name == WEIGHTS_FILE else None,
                opener=opener,
                cancel=cancel,
            )
        except (OSError, ValueError) as exc:
            raise _unavailable(f"download of {name} failed: {exc}", folder, base_url) from None
        record[name] = {"sha256": sha, "size": path.stat().st_size, "url": base_url + name, "by": "download"}
        _write_record(folder, record)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        path = folder / name
        sha = sha256_file(path)
        want = PINNED_SHA256.get(name) or record.get(name, {}).get("sha256")
        if want is not None and sha != want:
            raise _unavailable(
                f"{path} changed since it was verified (sha256 {sha}, expected {want}); "
                "delete it to fetch it again",
                folder,
                base_url,
            )
        if name not in record:
            log.info("accepting hand-placed %s (sha256 %s)", path, sha)
            record[name] = {"sha256": sha, "size": path.stat().st_size, "url": base_url + name, "by": "hand"}
    try:
        codec = _load_verified(folder, bandwidth)
    except (OSError, ValueError) as exc:
        for name in (CONFIG_FILE, WEIGHTS_FILE):  # drop what we downloaded so that the next call refetches
            if record.get(name, {}).get("by") == "download":
                (folder / name).unlink(missing_ok=True)
                record.pop(name)
        _write_record(folder, {})  # what is left was placed by hand: re-checked on the next call
        raise _unavailable(str(exc), folder, base_url) from None
    _write_record(folder, record)
    return codec.fuse() if fuse else codec
