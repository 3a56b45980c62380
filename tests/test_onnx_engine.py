"""The torch-free engine (models/tagging/onnx_engine.py) against the torch engine it is exported from.

Tolerances: codes equal (digital silence excepted, see below); probabilities within ``PROB_ATOL``
(1e-3; measured up to 2.1e-4 on the session-17 pack), embeddings within ``EMB_ATOL`` (1e-3).
Checked for the shipped pack on a real file (``../shared`` teacher examples; skipped without them) and
on generated signals, for the tiny mel pack on generated signals. A changed cache file is refused and
exported again; the engine's process never imports torch or transformers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from models.tagging.engine import Engine
from models.tagging.onnx_engine import OnnxEngine, load_onnx_engine, log_mel, rvq_codes, unembed
from models.tagging.onnx_export import EMB_ATOL, PROB_ATOL, export_onnx_pack
from models.tagging.onnx_files import GRAPH, RECORD, pack_folder
from models.tagging.pipeline import tag_file
from tests.conftest import require_shared, synth_tones

pytest.importorskip("onnxruntime")  # the onnx / test extras install it
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _onnx_allowed() -> Iterator[None]:
    """tests/conftest.py turns the ONNX engine off for the other tests (ENCOTAG_ENGINE=torch)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ENCOTAG_ENGINE", "auto")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def default_pair(cache: Path) -> tuple[Engine, OnnxEngine]:
    engine = Engine.load(None, threads=1)
    assert export_onnx_pack(engine, cache) == pack_folder(engine.info.pack_id, cache)
    onnx = load_onnx_engine(None, threads=1, cache=cache)
    assert onnx is not None
    return engine, onnx


def test_rvq_and_unembed_in_numpy_equal_the_codec(default_pair: tuple[Engine, OnnxEngine]) -> None:
    engine, onnx = default_pair
    codec = engine.codec
    rng = np.random.default_rng(3)
    latent = (rng.standard_normal((2, 128, 50)) * 3).astype(np.float32)
    ref = codec.quantize_codes(torch.from_numpy(latent)).numpy()  # type: ignore[union-attr]
    np.testing.assert_array_equal(rvq_codes(latent, onnx.codebooks), ref)
    q_ref = codec.unembed(torch.from_numpy(ref)).numpy()  # type: ignore[union-attr]
    np.testing.assert_allclose(unembed(ref, onnx.codebooks), q_ref, atol=1e-5)


def test_default_pack_equals_torch_on_generated_signals(default_pair: tuple[Engine, OnnxEngine]) -> None:
    engine, onnx = default_pair
    assert onnx.info == engine.info and onnx.is_codec_pack and onnx.stream_encoder() is not None
    for n in (24000, 24000 * 2 + 101, 3000):
        x = np.stack(synth_tones(3, n, seed=n))
        np.testing.assert_array_equal(onnx.encode(x), engine.encode(x))
        p1, e1 = engine.infer(x)
        p2, e2 = onnx.infer(x)
        np.testing.assert_allclose(p2, p1, atol=PROB_ATOL)
        np.testing.assert_allclose(e2, e1, atol=EMB_ATOL)
    codes = engine.encode(np.stack(synth_tones(2, 24000)))
    np.testing.assert_allclose(onnx.infer_codes(codes)[0], engine.infer_codes(codes)[0], atol=PROB_ATOL)
    # digital silence falls between near-identical codewords (about 30 % of its codes differ between
    # float32 matmuls), which changes the probabilities by about 1e-5: compared through the tagger
    for n in (24000, 12000):
        a, b = onnx.silence_codes(n), engine.silence_codes(n)
        assert a.shape == b.shape and not a.flags.writeable
        np.testing.assert_allclose(
            engine.infer_codes(a[None].copy())[0], engine.infer_codes(b[None].copy())[0], atol=PROB_ATOL
        )


def test_encode_many_and_folders_equal_torch(default_pair: tuple[Engine, OnnxEngine], tmp_path: Path) -> None:
    """The encoder graph's ``lengths`` input: lengths that are and are not hop multiples, alone and in the
    folder path's groups. Files shorter than the graph's 7 frames are zero-padded to them here where the
    torch engine pads inside the layers (module docstring of onnx_engine): only their windows compared."""
    import soundfile as sf

    from models.tagging.folder import tag_many
    from tests.test_folder import write_mixed

    engine, onnx = default_pair
    assert [i.name for i in onnx.encoder.get_inputs()] == ["audio", "lengths"]
    sizes = (24000, 24001, 2240, 2241, 7000, 50000)
    xs = [t.astype(np.float32) for t in synth_tones(len(sizes), 50000, seed=4)]
    xs = [x[:n] for x, n in zip(xs, sizes, strict=True)]
    for got, want in zip(onnx.encode_many(xs), engine.encode_many(xs), strict=True):
        np.testing.assert_array_equal(got, want)
    files = write_mixed(tmp_path / "in")
    ref = {it.path: it for it in tag_many(engine, files, group=4)}
    for it in tag_many(onnx, files, group=4):
        want = ref[it.path]
        assert (it.results is None) == (want.results is None) and (it.error is None) == (want.error is None)
        if it.results is None or want.results is None:
            continue
        assert [(r.start, r.end) for r in it.results] == [(r.start, r.end) for r in want.results]
        if sf.info(str(it.path)).duration * onnx.sample_rate < onnx.min_n:
            continue
        np.testing.assert_allclose(
            np.stack([r.probs for r in it.results]), np.stack([r.probs for r in want.results]), atol=PROB_ATOL
        )


def test_files_of_another_graph_version_are_not_read(
    default_pair: tuple[Engine, OnnxEngine], cache: Path, tmp_path: Path
) -> None:
    from models.codec import ort_encoder

    engine, _ = default_pair
    folder = pack_folder(engine.info.pack_id, cache)
    assert folder.name.endswith(f"-g{GRAPH}") and json.loads((folder / RECORD).read_text())["graph"] == GRAPH
    old = tmp_path / folder.name.replace(f"-g{GRAPH}", f"-g{GRAPH - 1}")  # intact files, older name
    old.mkdir()
    for item in folder.iterdir():
        (old / item.name).write_bytes(item.read_bytes())
    assert load_onnx_engine(None, threads=1, cache=tmp_path) is None
    moved = pack_folder(engine.info.pack_id, tmp_path)  # the current name, an older record: refused too
    old.rename(moved)
    record = json.loads((moved / RECORD).read_text())
    (moved / RECORD).write_text(json.dumps(dict(record, graph=GRAPH - 1)))
    assert load_onnx_engine(None, threads=1, cache=tmp_path) is None
    now = ort_encoder._versions()  # the encoder cache's file name: another graph, another name
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(ort_encoder, "GRAPH", GRAPH - 1)
        assert ort_encoder._versions() != now
    finally:
        mp.undo()


def test_default_pack_equals_torch_on_a_real_file(default_pair: tuple[Engine, OnnxEngine]) -> None:
    path = require_shared("teachers", "efficientat_mn04_as", "speech.flac")
    engine, onnx = default_pair
    ref = list(tag_file(engine, path))
    got = list(tag_file(onnx, path))
    assert len(got) == len(ref) > 4
    assert [(r.start, r.end) for r in got] == [(r.start, r.end) for r in ref]
    np.testing.assert_allclose(
        np.stack([r.probs for r in got]), np.stack([r.probs for r in ref]), atol=PROB_ATOL
    )
    np.testing.assert_allclose(
        np.stack([r.embedding for r in got]), np.stack([r.embedding for r in ref]), atol=EMB_ATOL
    )


def test_mel_pack_equals_torch(tiny_mel_pack: Path, cache: Path) -> None:
    engine = Engine.load(tiny_mel_pack, threads=1)
    fe = engine.tagger.frontend
    x = np.stack(synth_tones(2, 32000 + 77, sr=32000))
    c = engine.pack.mel_cfg
    image = log_mel(x, fe.mel_basis.numpy(), fe.window.numpy(), c.n_fft, c.hop_length, c.preemphasis)  # type: ignore[union-attr, operator]
    np.testing.assert_allclose(image, fe(torch.from_numpy(x)).numpy(), atol=1e-4)
    assert export_onnx_pack(engine, cache) is not None
    onnx = load_onnx_engine(tiny_mel_pack, threads=1, cache=cache)
    assert onnx is not None and not onnx.is_codec_pack
    p1, e1 = engine.infer(x)
    p2, e2 = onnx.infer(x)
    np.testing.assert_allclose(p2, p1, atol=PROB_ATOL)
    np.testing.assert_allclose(e2, e1, atol=EMB_ATOL)


def test_a_changed_or_foreign_cache_file_is_refused_and_exported_again(
    default_pair: tuple[Engine, OnnxEngine], cache: Path, tmp_path: Path
) -> None:
    engine, _ = default_pair
    folder = pack_folder(engine.info.pack_id, cache)
    for name in ("tagger.onnx", "arrays.npz", "encoder.onnx"):
        original = (folder / name).read_bytes()
        (folder / name).write_bytes(original[:-10] + b"0123456789")  # same size, other bytes
        assert load_onnx_engine(None, threads=1, cache=cache) is None  # refused, not half loaded
        assert export_onnx_pack(engine, cache) == folder  # the torch engine writes it again
        assert (folder / name).read_bytes() == original
    record = json.loads((folder / RECORD).read_text())
    other = pack_folder("0" * 64, tmp_path)
    other.mkdir(parents=True)
    for item in folder.iterdir():
        (other / item.name).write_bytes(item.read_bytes())
    (other.parent / folder.name).mkdir()  # the right folder name, empty: nothing to read
    assert load_onnx_engine(None, threads=1, cache=tmp_path) is None
    assert record["pack_id"] == engine.info.pack_id


def test_the_onnx_engine_never_imports_torch(default_pair: tuple[Engine, OnnxEngine], cache: Path) -> None:
    path = require_shared("teachers", "efficientat_mn04_as", "typing.flac")
    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "from app.gui.worker import inference_threads\n"  # what the app's worker asks first
        "from models.tagging.onnx_engine import load_onnx_engine\n"
        "from models.tagging.pipeline import StreamTagger, tag_file\n"
        "from pathlib import Path\n"
        "e = load_onnx_engine(None, threads=inference_threads(), cache=Path(sys.argv[2]))\n"
        "n = len(list(tag_file(e, sys.argv[1])))\n"
        "st = StreamTagger(e, None, 48000)\n"  # the live path, streamed
        "assert st.codes is not None\n"
        "st.push(np.zeros(48000 * 2, np.float32))\n"
        "assert st.process_latest() is not None\n"
        "print(json.dumps({'windows': n, 'mods': sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers'))}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(cache)], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["windows"] > 4 and result["mods"] == []
