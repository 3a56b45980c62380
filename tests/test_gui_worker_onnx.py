"""The inference worker's engines: the torch engine on a first launch, which exports the pack's ONNX
files once idle; the torch-free engine on the next launch, whose results equal the first's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from app.gui.state.series import ResultBatch
from app.gui.worker import WorkerThread
from models.config import WindowConfig
from models.tagging.onnx_engine import OnnxEngine
from models.tagging.onnx_export import PROB_ATOL
from models.tagging.onnx_files import pack_folder

pytest.importorskip("onnxruntime")
SR = 24000


def _tag(qtbot: Any, path: Path) -> tuple[Any, np.ndarray]:
    """Load the default pack on a fresh worker, tag ``path``; (the engine, the probabilities)."""
    wt = WorkerThread(WindowConfig(1.0, 0.25))
    w = wt.worker
    batches: list[ResultBatch] = []
    w.yielded.connect(lambda _j, item: batches.append(item) if isinstance(item, ResultBatch) else None)
    try:
        with qtbot.waitSignal(w.engine_ready, timeout=180000):
            wt.load(None)
        with qtbot.waitSignal(w.jobs_idle, timeout=180000):
            wt.enqueue(1, path)
        qtbot.waitUntil(lambda: not w._export_due and not w._busy, timeout=180000)
    finally:
        wt.stop(60000)
    return w.engine, np.concatenate([b.probs for b in batches])


def test_first_launch_exports_and_the_next_tags_without_torch(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ENCOTAG_ENGINE", "auto")
    path = tmp_path / "tones.wav"
    t = np.arange(3 * SR) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * (300 + 200 * t) * t)).astype(np.float32), SR)
    first, p1 = _tag(qtbot, path)
    assert not isinstance(first, OnnxEngine)
    assert (pack_folder(first.info.pack_id) / "onnx.json").is_file()  # exported when idle
    second, p2 = _tag(qtbot, path)
    assert isinstance(second, OnnxEngine) and second.info == first.info
    assert p1.shape == p2.shape and p1.shape[0] >= 9
    np.testing.assert_allclose(p2, p1, atol=PROB_ATOL)
