"""Label-offset calibration: the fit finds the offset that undoes an inflated label, folds into the
classifier's bias exactly, and leaves every label's ranking across inputs (its AP) unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.config import TaggerConfig
from models.nets.tagger import Tagger
from models.training.calibrate import HEAD_BIAS, OffsetFit, apply_offsets, fit_label_offsets, instead_rate


def _inflated(n: int = 3000, c: int = 12, label: int = 3, by: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    t_logits = rng.normal(0.0, 2.0, (n, c)).astype(np.float32)
    student = t_logits + rng.normal(0.0, 0.5, (n, c)).astype(np.float32)
    student[:, label] += by  # "when in doubt, this label"
    return student, 1.0 / (1.0 + np.exp(-t_logits))


def test_fit_undoes_an_inflated_label() -> None:
    student, teacher = _inflated()
    fit = fit_label_offsets(student, teacher, [3])
    assert fit.offsets[0] == pytest.approx(-2.0, abs=0.35)
    assert fit.top1_after > fit.top1_before + 0.1
    assert fit.instead_before is not None and fit.instead_after is not None
    assert fit.instead_after < fit.instead_before / 2
    # a label that is not inflated keeps (about) no offset
    assert abs(fit_label_offsets(student, teacher, [5]).offsets[0]) <= 0.3


def test_instead_rate_counts_only_rows_the_teacher_gives_to_other_labels() -> None:
    t_top = np.array([0, 1, 2, 2, 2])
    s_top = np.array([0, 0, 0, 2, 1])
    assert instead_rate(s_top, t_top, [0, 1]) == pytest.approx(2 / 3)  # rows 2-4: row 2 and row 4
    assert instead_rate(s_top, np.array([0, 1, 0, 1, 0]), [0, 1]) is None


def test_offsets_fold_into_the_head_and_keep_rankings() -> None:
    torch.manual_seed(0)
    model = Tagger(TaggerConfig(width=0.1, frontend="latent_direct")).eval()
    with torch.no_grad():  # a fresh head outputs near-zero logits: give it a spread, so rankings are strict
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    x = torch.randn(6, model.cfg.input_dim, 150)
    with torch.inference_mode():
        before = model(x).logits
    fit = OffsetFit((0, 137), (-1.5, 0.25), 10, 0.0, 0.0, None, None)
    model.load_state_dict(apply_offsets(model.state_dict(), fit), strict=True)
    with torch.inference_mode():
        after = model(x).logits
    diff = after - before
    assert diff[:, 0] == pytest.approx(torch.full((6,), -1.5), abs=1e-5)
    assert diff[:, 137] == pytest.approx(torch.full((6,), 0.25), abs=1e-5)
    rest = torch.ones(after.shape[1], dtype=torch.bool)
    rest[[0, 137]] = False
    assert torch.allclose(after[:, rest], before[:, rest], atol=1e-6)
    assert torch.equal(after.argsort(dim=0), before.argsort(dim=0))  # each label orders the inputs alike


def test_bad_inputs_are_refused() -> None:
    student, teacher = _inflated(n=20)
    with pytest.raises(ValueError):
        fit_label_offsets(student, teacher[:, :5], [1])
    with pytest.raises(ValueError):
        fit_label_offsets(student, teacher, [1, 1])
    with pytest.raises(ValueError):
        apply_offsets({"x": torch.zeros(3)}, OffsetFit((0,), (1.0,), 1, 0, 0, None, None))
    with pytest.raises(ValueError):
        apply_offsets({HEAD_BIAS: torch.zeros(3)}, OffsetFit((5,), (1.0,), 1, 0, 0, None, None))


def _brute(student: np.ndarray, teacher: np.ndarray, labels: list[int], cap: float) -> tuple[float, float]:
    """(best top-1 among grid pairs within the cap, lowest rate) by applying every pair to a copy."""
    t_top = teacher.argmax(axis=1)
    grid = np.round(np.arange(-3.0, 1.01, 0.1), 2)
    best, low = -1.0, 2.0
    for a in grid:
        for b in grid:
            x = student.copy()
            x[:, labels[0]] += a
            x[:, labels[1]] += b
            rate = instead_rate(x.argmax(axis=1), t_top, labels)
            assert rate is not None
            low = min(low, rate)
            if rate <= cap:
                best = max(best, float(np.mean(x.argmax(axis=1) == t_top)))
    return best, low


def test_capped_fit_is_the_best_agreement_within_the_cap() -> None:
    """Two labels put first "when in doubt": the joint search keeps the instead rate under the cap and, among
    the offset pairs that do, finds the best top-1 agreement (checked against every pair of the grid)."""
    student, teacher = _inflated(n=600, c=12, label=3, by=1.5)
    student[:, 7] += 1.0
    fit = fit_label_offsets(student, teacher, [3, 7], max_instead=0.05)
    assert fit.instead_before is not None and fit.instead_before > 0.2
    assert fit.instead_after is not None and fit.instead_after <= 0.05
    assert fit.max_instead == 0.05 and all(v < 0 for v in fit.offsets)
    best, _ = _brute(student, teacher, [3, 7], 0.05)
    assert fit.top1_after == pytest.approx(best)
    # a cap no pair reaches: the lowest rate the grid allows
    impossible = fit_label_offsets(student, teacher, [3, 7], max_instead=0.0)
    _, low = _brute(student, teacher, [3, 7], 0.0)
    assert impossible.instead_after == pytest.approx(low)
    # a cap every pair meets: the best top-1 agreement over the whole grid
    loose = fit_label_offsets(student, teacher, [3, 7], max_instead=1.0)
    assert loose.top1_after >= fit.top1_after
    with pytest.raises(ValueError):
        fit_label_offsets(student, teacher, [1, 2, 3], max_instead=0.1)
    with pytest.raises(ValueError):
        fit_label_offsets(student, teacher, [1], max_instead=1.5)
