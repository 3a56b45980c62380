"""The embedding anchor of tagger distillation (models/training/anchor.py): refusals, the pull towards the
reference network's mid-level embedding, and resume, on the tiny synthetic data of tests/test_distill.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.training.distill import DistillConfig, build_student, latent_from_codes, train_tagger
from tests.test_distill import _tiny_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _reference(dcfg: DistillConfig, seed: int) -> dict[str, torch.Tensor]:
    """A network of the student's architecture with other weights (another seed, no warm start)."""
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in build_student(dcfg, None).state_dict().items()}


def _trained_reference(dcfg: DistillConfig, work: Path) -> dict[str, torch.Tensor]:
    """A reference trained like a real one (batch-norm statistics of the data), on another seed."""
    data, table = _tiny_data(seed=5)
    ref = train_tagger(dataclasses.replace(dcfg, anchor_kd=0.0, seed=3), data, table, work)
    return {k: v.clone() for k, v in ref.state_dict().items()}


def test_anchor_needs_a_reference_of_the_students_width(tmp_path: Path) -> None:
    data, table = _tiny_data()
    dcfg = DistillConfig(width=0.1, steps=2, batch_size=2, anchor_kd=1.0)
    with pytest.raises(ValueError, match="anchor tagger's weights"):
        train_tagger(dcfg, data, table, tmp_path / "none")
    wider = _reference(dataclasses.replace(dcfg, width=0.2), 1)
    with pytest.raises(ValueError, match="student's width"):
        train_tagger(dcfg, data, table, tmp_path / "wide", anchor_state=wider)


def test_anchor_pulls_the_mid_level_embedding_and_resumes(tmp_path: Path) -> None:
    data, table = _tiny_data()
    dcfg = DistillConfig(width=0.1, steps=40, batch_size=4, lr=3e-3, log_every=40, anchor_kd=10.0)
    ref_state = _trained_reference(dcfg, tmp_path / "ref")
    ref = build_student(dcfg, None)
    ref.load_state_dict(ref_state)
    n_mid = ref.net.mid_embedding_size
    x = latent_from_codes(torch.from_numpy(data.codes[:, 0, :, :20].astype(np.int64)), table)
    with torch.no_grad():
        target = ref.eval()(x).embedding[:, :n_mid]

    def distance(model: Any) -> float:
        with torch.no_grad():
            got = model.eval()(x).embedding[:, :n_mid]
        return float(((got - target) ** 2).mean() / (target.var(dim=0).mean() + 1e-6))

    plain = train_tagger(dataclasses.replace(dcfg, anchor_kd=0.0), data, table, tmp_path / "plain")
    pulled = train_tagger(dcfg, data, table, tmp_path / "pulled", anchor_state=ref_state)
    assert distance(pulled) < 0.6 * distance(plain)
    # the anchor's scale comes from its own random stream: a run cut and resumed is the same run
    train_tagger(dcfg, data, table, tmp_path / "split", max_steps=13, anchor_state=ref_state)
    resumed = train_tagger(dcfg, data, table, tmp_path / "split", anchor_state=ref_state)
    for (k, a), (_, b) in zip(pulled.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
