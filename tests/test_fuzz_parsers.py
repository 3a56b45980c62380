"""Property-based fuzzing (Hypothesis) of every parser of a user-supplied file (issue 25).

Each property: whatever bytes or JSON values the file holds, the parser either succeeds or raises its
one documented error type, with a one-line message; never another exception, a hang or a huge
allocation. Covered: WAV headers (``models.audio``), pack manifests (``models.pack.load_pack``), head
files and their cards (``models.head_file.load_head``), example sets, ``.ecodes`` code streams
(``models.codes.load_codes``) and settings (``app.settings.load_settings``, which never raises).

CI runs ``ENCOTAG_FUZZ_EXAMPLES`` (default 50) examples per property, no deadline, derandomised. For a
longer local run::

    ENCOTAG_FUZZ_EXAMPLES=5000 ./tools/test.sh tests/test_fuzz_parsers.py
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

N = int(os.environ.get("ENCOTAG_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=N,
    deadline=None,
    derandomize=N <= 100,  # CI: the same examples every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
WORK = Path(tempfile.mkdtemp(prefix="encotag-fuzz-"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


def _mutate(blob: bytes, data: st.DataObject) -> bytes:
    """Flip, overwrite, truncate or extend ``blob`` a few times."""
    out = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "write", "cut", "grow"]))
        at = data.draw(st.integers(0, max(0, len(out) - 1)))
        if op == "flip" and out:
            out[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "write" and out:
            chunk = data.draw(st.binary(min_size=1, max_size=8))
            out[at : at + len(chunk)] = chunk
        elif op == "cut":
            del out[at:]
        else:
            out += data.draw(st.binary(max_size=64))
    return bytes(out)


def _one_line(exc: BaseException) -> None:
    assert "\n" not in str(exc) and "\x1b" not in str(exc)


# ---------------------------------------------------------------------------------------- audio
@FUZZ
@given(
    rate=st.integers(0, 2**32 - 1),
    channels=st.integers(0, 70000),
    bits=st.sampled_from([0, 8, 16, 24, 32, 64, 7]),
    fmt_tag=st.sampled_from([1, 3, 6, 7, 0xFFFE, 0, 2]),
    data_size=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=4096),
)
def test_wav_header_fuzz(
    rate: int, channels: int, bits: int, fmt_tag: int, data_size: int, payload: bytes
) -> None:
    from models.audio import AudioError, iter_audio

    align = max(1, channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", fmt_tag, channels & 0xFFFF, rate, (rate * align) & 0xFFFFFFFF, align, bits)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size) + payload
    path = WORK / "fuzz.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    try:
        for i, block in enumerate(iter_audio(path, 16000, block_s=1.0)):
            assert block.dtype == np.float32 and np.isfinite(block).all()
            assert i < 64  # 4 KiB of data at ≥ 1 kHz can never be more than a few blocks
    except AudioError as exc:
        _one_line(exc)


# ---------------------------------------------------------------------------------------- manifests
MANIFEST_PATHS = [
    ("tagger", "width"), ("tagger", "num_classes"), ("tagger", "input_dim"), ("tagger", "embedding_blocks"),
    ("window", "window_s"), ("window", "hop_s"), ("mel", "n_mels"), ("mel", "n_fft"), ("mel", "fmax"),
    ("embedding", "layout"), ("embedding", "scene_size"), ("embedding", "timestamp_hop_ms"),
    ("sample_rate",), ("format_version",), ("trusted",), ("labels",), ("files",), ("codec",), ("mel",),
    ("frontend",), ("name",), ("provenance",),
]  # fmt: skip


@FUZZ
@given(data=st.data())
def test_pack_manifest_fuzz(data: st.DataObject, tiny_mel_pack: Path) -> None:
    import shutil

    from models.packs.pack import PackError, load_pack

    pack = WORK / "pack"
    if not pack.exists():
        shutil.copytree(tiny_mel_pack, pack)
    m: Any = json.loads((tiny_mel_pack / "manifest.json").read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        keys = data.draw(st.sampled_from(MANIFEST_PATHS))
        node = m
        for k in keys[:-1]:
            node = node[k] if isinstance(node, dict) and isinstance(node.get(k), dict) else {}
        node[keys[-1]] = data.draw(json_values)
    text = json.dumps(m)
    if data.draw(st.booleans()):
        text = _mutate(text.encode(), data).decode("utf-8", "replace")
    (pack / "manifest.json").write_text(text)
    try:
        load_pack(pack, tagging_only=True)
    except PackError as exc:
        _one_line(exc)


# ---------------------------------------------------------------------------------------- heads
def _head_blob() -> bytes:
    from models.heads.head_file import save_head
    from models.heads.heads import train_head

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (10, 6)), rng.normal(3, 1, (10, 6))]).astype(np.float32)
    head, _ = train_head(x, np.repeat([0, 1], 10), ["a", "b"], name="fuzz", c_grid=(1.0,), n_folds=2)
    return save_head(head, WORK / "good_head.safetensors").read_bytes()


@FUZZ
@given(data=st.data())
def test_head_file_and_card_fuzz(data: st.DataObject) -> None:
    from models.heads.head_file import load_head, safetensors_header
    from models.heads.heads import HeadError

    good = (
        (WORK / "good_head.safetensors").read_bytes()
        if (WORK / "good_head.safetensors").exists()
        else _head_blob()
    )
    if data.draw(st.booleans()):  # a card with arbitrary JSON values in it (its checksum may be right or not)
        header = safetensors_header(good)
        card = json.loads(header["__metadata__"]["card"])
        card[data.draw(st.sampled_from(sorted(card)))] = data.draw(json_values)
        header["__metadata__"]["card"] = json.dumps(card)
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        n = int.from_bytes(good[:8], "little")
        blob = len(text).to_bytes(8, "little") + text + good[8 + n :]
    else:
        blob = _mutate(good, data)
    path = WORK / "fuzz_head.safetensors"
    path.write_bytes(blob)
    try:
        head = load_head(path, pack_id="", layout=None)
        assert np.isfinite(head.predict(np.zeros((1, head.card.embedding_size), np.float32))).all()
    except HeadError as exc:
        _one_line(exc)


@FUZZ
@given(data=st.data())
def test_example_set_fuzz(data: st.DataObject) -> None:
    from models.heads.head_store import ExampleSet, HeadStore, PackStamp
    from models.heads.heads import HeadError

    store = HeadStore(WORK / "store")
    ex = ExampleSet.empty().add("dog", np.ones((3, 4)), "a.wav", PackStamp("a" * 64, "b" * 16))
    path = store.save_examples("fuzz", ex)
    path.write_bytes(_mutate(path.read_bytes(), data))
    try:
        back = store.load_examples("fuzz")
        assert len(back.emb) == len(back.label)
    except HeadError as exc:
        _one_line(exc)


# ---------------------------------------------------------------------------------------- .ecodes
@FUZZ
@given(data=st.data())
def test_ecodes_fuzz(data: st.DataObject) -> None:
    from models.codec.codes import CodesError, CodeStream, load_codes, save_codes

    good = WORK / "good.ecodes"
    if not good.exists():
        save_codes(good, CodeStream(np.ones((4, 75), np.int64), "c" * 64, 3.0, 75.0, 24000, 24000))
    path = WORK / "fuzz.ecodes"
    path.write_bytes(_mutate(good.read_bytes(), data))
    try:
        s = load_codes(path)
        assert s.codes.shape[1] > 0 and s.sample_rate > 0 and np.isfinite(s.frame_rate)
    except CodesError as exc:
        _one_line(exc)


# ---------------------------------------------------------------------------------------- settings
@FUZZ
@given(value=json_values, raw=st.one_of(st.none(), st.binary(max_size=256)))
def test_settings_fuzz(value: Any, raw: bytes | None) -> None:
    from app.settings import Settings, load_settings

    path = WORK / "settings.json"
    if raw is not None:
        path.write_bytes(raw)
    else:
        fields = {"version": 1, "recent_files": value, "window_s": value, "theme": value, "top_k": value}
        path.write_text(json.dumps(value if isinstance(value, dict) else fields))
    s = load_settings(path)  # never raises
    assert isinstance(s, Settings) and len(s.recent_files) <= 10 and 0.1 <= s.window_s <= 30
