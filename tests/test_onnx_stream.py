"""The torch-free live path: the streaming encoder's step graph (models/codec/stream_graph.py) run by ONNX
Runtime (models/tagging/onnx_stream.py) against the torch streaming encoder and the whole-signal codes.

Tolerances: codes equal on the shipped pack (streamed pieces of any size, the first one reflect-padded);
latents of the step graph within 1e-4 of torch's streamed latents (float sums blocked differently);
live probabilities within ``PROB_ATOL`` of the torch engine's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.config import WindowConfig
from models.tagging.engine import Engine
from models.tagging.onnx_engine import OnnxEngine, load_onnx_engine, rvq_codes
from models.tagging.onnx_export import PROB_ATOL, export_onnx_pack
from models.tagging.onnx_files import RECORD, pack_folder, read_folder, write_folder
from models.tagging.onnx_stream import OnnxStreamingEncoder
from models.tagging.pipeline import StreamTagger
from tests.test_onnx_engine import _onnx_allowed  # noqa: F401 - the autouse fixture: ONNX engine on
from tests.test_streaming import LATENT_ATOL, _signal, _whole

pytest.importorskip("onnxruntime")  # the onnx / test extras install it


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, OnnxEngine, Path]:
    cache = tmp_path_factory.mktemp("onnx-stream-cache")
    engine = Engine.load(None, threads=1)
    assert export_onnx_pack(engine, cache) is not None
    onnx = load_onnx_engine(None, threads=1, cache=cache)
    assert onnx is not None
    return engine, onnx, cache


def _pieces(enc: object, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    out, prev, i = [], 0, 0
    while prev < len(x):
        step = sizes[i % len(sizes)]
        out.append(enc.push(x[prev : prev + step]))  # type: ignore[attr-defined]
        prev, i = prev + step, i + 1
    return np.concatenate(out, axis=1)


def test_step_graph_streams_the_whole_signal_codes(pair: tuple[Engine, OnnxEngine, Path]) -> None:
    engine, onnx, _ = pair
    enc = onnx.stream_encoder()
    assert isinstance(enc, OnnxStreamingEncoder)
    ref_enc = engine.stream_encoder()
    assert ref_enc is not None and (enc.hop, enc.min_first) == (ref_enc.hop, ref_enc.min_first)
    n = enc.hop * 150
    x = _signal(n, seed=11)
    ref_latent, ref_codes = _whole(engine, x)
    for sizes in ([0, 1, 319, 321, 2000, 5, 4999, 6000, 7777], [6000], [2240, 1], [n]):
        enc.reset()
        got = _pieces(enc, x, sizes)
        np.testing.assert_array_equal(got, ref_codes)
        assert enc.frames == n // enc.hop and enc.samples_encoded == n  # each sample encoded once
    enc.reset()
    ref_enc.reset()
    rng = np.random.default_rng(5)
    prev = 0
    for cut in [*np.sort(rng.integers(0, n, size=30)).tolist(), n]:
        a, b = enc.push_latent(x[prev:cut]), ref_enc.push_latent(x[prev:cut]).numpy()
        assert a.shape == b.shape
        if a.size:
            assert float(np.abs(a - b).max()) <= LATENT_ATOL
        prev = cut
    assert float(np.abs(ref_latent.numpy()).max()) > 0.1  # a real signal, not near-silence
    enc.reset()  # the graph's own RVQ gives numpy's codes of the graph's latent
    latent, codes = enc._push(x)
    np.testing.assert_array_equal(codes, rvq_codes(latent[None], onnx.codebooks)[0])


def test_stream_waits_for_the_first_reflection(pair: tuple[Engine, OnnxEngine, Path]) -> None:
    _, onnx, _ = pair
    enc = onnx.stream_encoder()
    assert enc is not None
    x = _signal(enc.hop * 30, seed=12)
    assert enc.push(x[: enc.min_first - 1]).shape[-1] == 0  # nothing encoded yet
    assert enc.push(x[enc.min_first - 1 : enc.hop * 20 + 5]).shape[-1] == 20


def test_the_live_path_of_the_onnx_engine_streams(pair: tuple[Engine, OnnxEngine, Path]) -> None:
    """StreamTagger on the ONNX engine streams codes (no 1 s audio windows) and tags as the torch one."""
    engine, onnx, _ = pair
    window = WindowConfig(1.0, 0.25)
    a, b = StreamTagger(engine, window, input_sr=24000), StreamTagger(onnx, window, input_sr=24000)
    assert b.codes is not None and isinstance(b.codes.encoder, OnnxStreamingEncoder)
    x = _signal(24000 * 3, seed=13)
    got, want = [], []
    for start in range(0, len(x), 1000):
        for st, out in ((a, want), (b, got)):
            st.push(x[start : start + 1000])
            r = st.process_latest()
            if r is not None:
                out.append(r)
    assert len(got) == len(want) >= 6
    for r1, r2 in zip(got, want, strict=True):
        assert (r1.start, r1.end) == (r2.start, r2.end)
        np.testing.assert_allclose(r1.probs, r2.probs, atol=PROB_ATOL)
    assert b.codes.encoder.samples_encoded <= len(x)


def test_a_cache_from_before_the_step_graph_is_exported_again(
    pair: tuple[Engine, OnnxEngine, Path], tmp_path: Path
) -> None:
    engine, _, cache = pair
    folder = pack_folder(engine.info.pack_id, cache)
    files = read_folder(folder, engine.info.pack_id)
    assert files is not None and files.record["stream"] is True
    old = pack_folder(engine.info.pack_id, tmp_path)  # the same files without the step graph
    gone = ("stream", "stream_states", "stream_version", "files")
    record = {k: v for k, v in files.record.items() if k not in gone}
    write_folder(old, record, {k: v for k, v in files.data.items() if k != "stream.onnx"})
    before = load_onnx_engine(None, threads=1, cache=tmp_path)
    assert before is not None and before.stream_encoder() is None  # the live path: 1 s windows
    assert export_onnx_pack(engine, tmp_path) == old
    assert "stream.onnx" in json.loads((old / RECORD).read_text())["files"]
    after = load_onnx_engine(None, threads=1, cache=tmp_path)
    assert after is not None and after.stream_encoder() is not None
