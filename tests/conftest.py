"""Session-wide test set-up and shared fixtures.

- Qt runs offscreen and torch on one thread (the test machine is small and shared).
- ``shared_dir`` / :func:`require_shared`: ``../shared`` (teacher, data sets), skipping when absent.
- ``tiny_codec_pack``: a codec pack with a tiny random EnCodec (4 filters, 1 LSTM layer, 64-entry
  codebooks, 6 quantizers at 3 kbps, official 24 kHz / hop 320 / 128-dim layout) and a tiny
  ``latent_direct`` tagger (width 0.1), 527 AudioSet labels.
- ``tiny_mel_pack``: a mel pack with a tiny random tagger (width 0.1).
- ``teacher_pack``: the EfficientAT mn04_as teacher converted with ``build_teacher_pack``.
All packs are written with ``save_pack`` once per session into a temp folder; treat them as read-only
(copy a pack before tampering with it).

Markers (registered in pyproject.toml, set here at collection): ``gui`` — the Qt tests (test_gui*.py and
any test using ``qtbot``); ``shared`` — tests that read ``../shared`` (its fixtures, ``require_shared``,
a ``SHARED``/``TEACHER_DIR`` path in the test or a helper it calls); ``slow`` — the tests listed in
:data:`SLOW` (over about 5 s each on a 2-core machine). ``pytest -m "not slow"`` is the quick subset.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the torch encoder is the reference the other tests compare against; tests/test_encoder_backends.py
# turns the ONNX Runtime backend on where it tests it, tests/test_onnx_engine.py the torch-free engine
os.environ.setdefault("ENCOTAG_ENCODER", "torch")
os.environ.setdefault("ENCOTAG_ENGINE", "torch")  # the worker loads torch and exports no ONNX files

import torch  # noqa: E402

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT / ".." / "shared"
TEACHER_DIR = SHARED_DIR / "teachers" / "efficientat_mn04_as"

TINY_CODEC_KW = dict(
    num_filters=4, num_lstm_layers=1, codebook_size=64, target_bandwidths=(1.5, 3.0), bandwidth=3.0
)


SHARED_WORDS = ("SHARED", "require_shared", "TEACHER_DIR", "CKPT", "shared_dir", "teacher_pack")
SHARED_FIXTURES = {"shared_dir", "teacher_pack"}
# ``file::test`` (without parameters) of the tests that take over about 5 s each on a 2-core machine.
SLOW = {
    "test_gui_head_edit.py::test_onnx_button_exports_on_the_job_thread",  # an ONNX export on the job thread
    "test_head_onnx.py::test_onnx_export_of_real_packs",  # two real packs exported (1-3 min each)
    "test_head_onnx.py::test_onnx_export_of_a_codec_pack_matches_torch",  # the encoder's export: 1-7 min
    "test_head_cli.py::test_teacher_pack_heads_on_shared_data",  # 30-80 s per data set
    "test_robustness.py::test_hour_long_file_streams_in_bounded_memory",
    "test_bench.py::test_bench_quick_cli",
    "test_bench.py::test_gui_probe_times_the_real_app",
    "test_distill.py::test_cli_codec_tagger_pack",
    "test_gui_packs.py::test_screenshot_tool_runs_the_real_window_under_xvfb",
    "test_gui.py::test_event_loop_stays_responsive_during_long_file",
    "test_qt_free.py::test_models_and_app_core_import_without_qt",
    "test_encoder_backends.py::test_backend_rows_measure_every_candidate",
    "test_batch.py::test_resume_after_a_killed_run",
    "test_batch.py::test_worker_processes_give_the_same_records",
    "test_batch_ray.py::test_ray_local_run_equals_the_single_machine_run",
}


def _source_mentions(func: object, words: tuple[str, ...], depth: int = 2) -> bool:
    """True if ``func``'s source, or that of a module-level helper it calls (``depth`` levels), names one
    of ``words``."""
    try:
        src = inspect.getsource(func)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    if any(w in src for w in words):
        return True
    code = getattr(func, "__code__", None)
    glb = getattr(func, "__globals__", {})
    if depth <= 0 or code is None:
        return False
    helpers = [glb.get(n) for n in code.co_names]
    return any(
        inspect.isfunction(h) and h.__module__ == func.__module__ and _source_mentions(h, words, depth - 1)  # type: ignore[attr-defined]
        for h in helpers
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        names = set(getattr(item, "fixturenames", ()))
        if path.name.startswith("test_gui") or "qtbot" in names:
            item.add_marker(pytest.mark.gui)
        func = getattr(item, "function", None)
        if names & SHARED_FIXTURES or (func is not None and _source_mentions(func, SHARED_WORDS)):
            item.add_marker(pytest.mark.shared)
        if f"{path.name}::{item.originalname if isinstance(item, pytest.Function) else item.name}" in SLOW:
            item.add_marker(pytest.mark.slow)


def require_shared(*parts: str) -> Path:
    """``../shared/<parts>``, or skip the test naming what is missing."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared not present: {'/'.join(parts) or 'shared folder'}")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder (skips when absent)."""
    return require_shared()


def tiny_codec_config():  # -> CodecConfig
    from models.config import CodecConfig

    return CodecConfig(**TINY_CODEC_KW)  # type: ignore[arg-type]


def _labels() -> tuple[str, ...]:
    from models.resources import audioset_labels

    return audioset_labels()


def _init_codebooks(codec) -> None:  # codec: models.codec.codec.Codec
    """Give a random codec usable codebooks: each RVQ stage's entries are frames of its own residual
    on tones and noise (random N(0, 1) codebooks sit far from the encoder's small outputs, so every
    frame would map to the same code and all audio would look alike)."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(codec.sample_rate * 2) / codec.sample_rate
    tones = [0.5 * torch.sin(2 * torch.pi * f * t) for f in (110, 220, 440, 880, 1760, 3520)]
    noise = [a * torch.randn(len(t), generator=g) for a in (0.05, 0.2, 0.5)]
    audio = torch.stack([*tones, *noise])
    with torch.no_grad():
        residual = codec.embed(audio).transpose(1, 2).reshape(-1, codec.cfg.hidden_size)
        for layer in codec.quantizer.layers:
            book = layer.codebook
            pick = torch.randperm(len(residual), generator=g)[: book.embed.shape[0]]
            book.embed.copy_(residual[pick])
            book.embed_avg.copy_(residual[pick])
            residual = residual - book.embed[torch.cdist(residual, book.embed).argmin(dim=1)]


@pytest.fixture(scope="session")
def tiny_codec_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.codec.codec import Codec
    from models.config import TaggerConfig, WindowConfig
    from models.nets.tagger import Tagger
    from models.packs.pack import save_pack

    torch.manual_seed(0)
    codec_cfg = tiny_codec_config()
    codec = Codec(codec_cfg)
    _init_codebooks(codec)
    tagger_cfg = TaggerConfig(width=0.1, frontend="latent_direct")
    tagger = Tagger(tagger_cfg)
    labels = _labels()
    return save_pack(
        tmp_path_factory.mktemp("packs") / "tiny_codec",
        name="tiny codec test pack",
        description="random weights, for tests",
        tagger_cfg=tagger_cfg,
        tagger_state=tagger.state_dict(),
        codec_cfg=codec_cfg,
        codec_state=codec.state_dict(),
        labels=labels,
        trusted=[True] * len(labels),
        window=WindowConfig(window_s=1.0, hop_s=0.5),
        licence="MIT",
        provenance={"test": True, "seed": 0},
    )


@pytest.fixture(scope="session")
def tiny_mel_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.config import TaggerConfig, WindowConfig
    from models.nets.tagger import Tagger
    from models.packs.pack import save_pack

    torch.manual_seed(1)
    tagger_cfg = TaggerConfig(width=0.1, frontend="mel")
    tagger = Tagger(tagger_cfg)
    labels = _labels()
    return save_pack(
        tmp_path_factory.mktemp("packs") / "tiny_mel",
        name="tiny mel test pack",
        description="random weights, for tests",
        tagger_cfg=tagger_cfg,
        tagger_state=tagger.state_dict(),
        labels=labels,
        trusted=list(range(0, len(labels), 2)),
        window=WindowConfig(window_s=1.0, hop_s=0.5),
        licence="MIT",
        provenance={"test": True, "seed": 1},
    )


@pytest.fixture(scope="session")
def teacher_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The teacher as a mel pack, built from ``../shared`` (skips when the teacher is absent)."""
    from models.packs.teacher_pack import build_teacher_pack

    teacher_dir = require_shared("teachers", "efficientat_mn04_as", "mn04_as_mAP_432.pt").parent
    return build_teacher_pack(teacher_dir, tmp_path_factory.mktemp("packs") / "teacher")


def synth_tones(n_clips: int, n: int, sr: int = 24000, seed: int = 0) -> list[np.ndarray]:
    """``n_clips`` tones of random pitch (200-2000 Hz) with a little noise: mono float32 ``(n,)`` each."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    out = []
    for _ in range(n_clips):
        f = rng.uniform(200, 2000)
        x = 0.5 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(n)
        out.append(x.astype(np.float32))
    return out


@pytest.fixture
def one_torch_thread():  # noqa: ANN201
    """Run the test with one torch thread (training tests compare runs bit for bit)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
