"""Encoder backends against the torch reference (models/codec/ort_encoder.py, models/benchmark/backends.py)
and the engine's own choice of backend and threads.

ONNX Runtime latents within ``CHECK_ATOL`` (1e-4) of torch's and codes equal on the shipped pack, for
lengths that are multiples of the hop and lengths that are not (padded, with their lengths as a graph
input: models/codec/padded.py); inputs shorter than the graph's 7 frames go through torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.codec.ort_encoder import CHECK_ATOL, agrees, attach_ort_encoder
from models.tagging.engine import Engine, auto_threads

pytest.importorskip("onnxruntime")  # the test extra installs it


def _audio(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 24000
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def _shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx") / "home"  # one export of each codec for the module


@pytest.fixture
def onnx_home(_shared_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENCOTAG_HOME", str(_shared_home))
    monkeypatch.setenv("ENCOTAG_ENCODER", "auto")
    return _shared_home


def test_engine_picks_onnxruntime_and_it_equals_torch(onnx_home: Path) -> None:
    ort_engine = Engine.load(None, threads=1)
    assert ort_engine.encoder_backend == "onnxruntime"
    cached = list((onnx_home / "cache" / "onnx").glob("encoder-*.onnx"))
    assert len(cached) >= 1 and all(p.with_suffix(".sha256").is_file() for p in cached)
    ref = Engine.load(None, threads=1)
    ref.codec.encoder_backend = None  # type: ignore[union-attr]
    x = _audio(24000 * 3)
    calls = ort_engine.codec.encoder_backend.calls  # type: ignore[union-attr]
    before = dict(calls)  # the check at load ran it once
    lengths = (24000 * 3, 24000, 320 * 7, 5000, 24000 + 1, 320 * 7 + 319)  # any length ≥ 7 frames
    for n in lengths:
        np.testing.assert_array_equal(ort_engine.encode(x[None, :n]), ref.encode(x[None, :n]))
        lat = ort_engine.codec.embed(torch.from_numpy(x[None, :n]))  # type: ignore[union-attr]
        lat_ref = ref.codec.embed(torch.from_numpy(x[None, :n]))  # type: ignore[union-attr]
        assert lat.shape == lat_ref.shape and float((lat - lat_ref).abs().max()) <= CHECK_ATOL
    assert calls == {"onnxruntime": before["onnxruntime"] + 2 * len(lengths), "torch": 0}
    np.testing.assert_array_equal(ort_engine.encode(x[None, :2000]), ref.encode(x[None, :2000]))
    assert calls["torch"] == 1  # 2000 samples: shorter than the reflections need, the torch encoder
    p1, e1 = ort_engine.infer(x[None, :24000])
    p2, e2 = ref.infer(x[None, :24000])
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    np.testing.assert_allclose(e1, e2, atol=1e-4)
    again = Engine.load(None, threads=1)  # from the cache, hash checked
    assert again.encoder_backend == "onnxruntime"


def test_a_changed_cache_file_is_exported_again(onnx_home: Path) -> None:
    engine = Engine.load(None, threads=1)
    path = next((onnx_home / "cache" / "onnx").glob(f"encoder-{engine.codec_id[:64]}-*.onnx"))
    path.write_bytes(b"not an onnx file")
    engine = Engine.load(None, threads=1)
    assert engine.encoder_backend == "onnxruntime" and path.read_bytes() != b"not an onnx file"


def test_a_backend_that_disagrees_is_refused(onnx_home: Path, tiny_codec_pack: Path) -> None:
    engine = Engine.load(tiny_codec_pack, threads=1)
    codec = engine.codec
    assert codec is not None and engine.encoder_backend == "onnxruntime"
    ok, diff = agrees(codec, lambda a: codec._encode_layers(a) + 1e-3)  # type: ignore[operator]
    assert not ok and diff == pytest.approx(1e-3, rel=1e-3) and diff > CHECK_ATOL
    import copy

    from models.codec import ort_encoder

    plain = Engine.load(tiny_codec_pack, threads=1).codec
    assert plain is not None
    plain.encoder_backend = None  # type: ignore[union-attr]
    other = copy.deepcopy(plain)  # another codec's graph …
    with torch.no_grad():
        other.encoder.layers["0"].conv.bias.add_(0.01)  # type: ignore[union-attr, index]
    wrong = ort_encoder.export_encoder(other)  # type: ignore[arg-type]
    codec.encoder_backend = None
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(ort_encoder, "_cached_model", lambda *_a: wrong)  # … handed to this one: refused
        assert not attach_ort_encoder(codec, engine.codec_id, 1)
        mp.setattr(ort_encoder, "_cached_model", lambda *_a: b"not onnx")  # a broken graph: refused
        assert not attach_ort_encoder(codec, engine.codec_id, 1)
    finally:
        mp.undo()
    assert codec.encoder_backend is None  # torch kept


def test_torch_is_kept_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path))
    monkeypatch.setenv("ENCOTAG_ENCODER", "torch")
    assert Engine.load(None, threads=1).encoder_backend == "torch"


def test_backend_rows_measure_every_candidate(onnx_home: Path) -> None:
    from models.benchmark.backends import backend_rows, backend_table

    engine = Engine.load(None, threads=1)
    rows = backend_rows(engine, _audio(24000 * 2), repeat=1, budget_s=0.5)
    names = [r["backend"] for r in rows]
    assert "torch, 1 thread" in " ".join(names) and any(n.startswith("onnxruntime") for n in names)
    assert any("int8" in n for n in names) and any("one batch" in n for n in names)
    for r in rows:
        assert "error" not in r and r["rtf"] > 0
        if "codes_equal" in r and not r["backend"].startswith("torch, int8"):
            assert r["codes_equal"] == 1.0 and r["max_diff"] <= CHECK_ATOL
    table = backend_table({"results": [{"subject": {"name": "default"}, "backends": rows}]})
    assert table.count("\n") == len(rows) + 1


def test_auto_threads_leaves_busy_cores_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert auto_threads() == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 0.0, 0.0))
    assert auto_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert auto_threads() == 1
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("ENCOTAG_ENCODER", "torch")
        Engine.load(None)  # threads not given: the busy machine gets one thread
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)
