"""The probe's validation figure: inner cross-validation on each task's train part, never the test clips
(``ProbeResult.val_accuracy``), and its table in the ``encotag eval`` report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.evaluation.cache import EmbeddingCache
from models.evaluation.probe import probe_task
from models.evaluation.report import ReportMeta, render_markdown
from models.evaluation.tasks import load_task
from tests.test_eval import _toy_task, _write_tone_set


def test_validation_accuracy_comes_from_the_train_part_alone() -> None:
    X, task = _toy_task()
    res = probe_task(X, task, seed=0)
    assert res.val_accuracy is not None and res.val_accuracy >= 0.9
    test = np.asarray([s == "test" for s in task.splits])
    scrambled = X.copy()
    scrambled[test] = np.random.default_rng(1).normal(size=scrambled[test].shape)
    # the test clips scrambled: test accuracy falls, validation does not move
    other = probe_task(scrambled, task, seed=0)
    assert other.val_accuracy == res.val_accuracy and other.accuracy < res.accuracy
    assert probe_task(X, task, cs=(1.0,)).val_accuracy is None  # one C: no inner CV is run
    folds, cv_task = _toy_task(with_test=False)
    assert probe_task(folds, cv_task).val_accuracy is not None  # CV tasks: the mean over outer folds


def test_the_report_has_the_validation_table(tmp_path: Path) -> None:
    from models.evaluation.embedders import MelStatsEmbedder
    from models.evaluation.runner import evaluate

    task = load_task(_write_tone_set(tmp_path / "tones"), domain="music")
    rows = evaluate([MelStatsEmbedder()], [task], EmbeddingCache(tmp_path / "cache"))
    meta = ReportMeta(date="d", commit="c", command="encotag eval", machine="m")
    text = render_markdown(rows, [task], meta, "")
    val = rows[0].probes["tones"].val_accuracy
    assert val is not None and "## Probe validation accuracy" in text and f"| {val:.3f} |" in text
