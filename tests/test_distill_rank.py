"""The listwise (softmax over classes) distillation term, ``--rank-kd``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.training.distill import DistillConfig, DistillData, latent_from_codes, same_config, train_tagger
from models.training.losses import distillation_loss, listwise_kd
from tests.test_distill import _tiny_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_listwise_kd_asks_for_the_teachers_order_of_classes() -> None:
    teacher = torch.full((2, 527), -8.0)
    teacher[:, 3], teacher[:, 137] = -1.0, -2.5  # both under the 0.5 threshold, class 3 first
    target = torch.softmax(teacher, dim=-1)
    assert float(listwise_kd(teacher, target)) == pytest.approx(0.0, abs=1e-5)
    assert float(listwise_kd(teacher + 3.0, target)) == pytest.approx(0.0, abs=1e-5)  # shift-invariant
    swapped = teacher.clone()
    swapped[:, 3], swapped[:, 137] = -2.5, -1.0  # the same two probabilities, in the other order
    probs = torch.sigmoid(teacher)
    zeros = torch.zeros_like(probs)
    # per-class BCE hardly tells the orders apart; the listwise term does
    bce_gap = float(distillation_loss(swapped, probs, zeros) - distillation_loss(teacher, probs, zeros))
    assert float(listwise_kd(swapped, target)) > 0.5 > 100 * bce_gap
    # a gradient step on it moves the teacher's first class back above the other
    x = swapped.clone().requires_grad_(True)
    listwise_kd(x, target).backward()
    assert x.grad is not None
    assert float(x.grad[0, 3]) < 0 < float(x.grad[0, 137])
    # higher temperature: a softer target, the same zero at the teacher's logits
    soft = torch.softmax(teacher / 2, dim=-1)
    assert float(listwise_kd(teacher, soft, tau=2.0)) == pytest.approx(0.0, abs=1e-5)


def test_rank_distillation_lowers_the_listwise_error_and_resumes(tmp_path: Path) -> None:
    data, table = _tiny_data()
    rng = np.random.default_rng(5)
    # a teacher order among low classes: per clip one class at -1, another at -2.5, the rest at -8
    logits = np.full((8, 2, 527), -8.0, np.float32)
    first, second = rng.integers(0, 4, 8), rng.integers(4, 8, 8)
    logits[np.arange(8), :, first] = -1.0
    logits[np.arange(8), :, second] = -2.5
    seg = np.repeat(logits[:, :, None], 2, axis=2)
    data = DistillData(data.codes, logits.astype(np.float16), seg.astype(np.float16))
    dcfg = DistillConfig(width=0.1, steps=60, batch_size=4, lr=3e-3, log_every=10, rank_kd=2.0)
    sf_ = data.codes.shape[3] // 2
    segs = np.stack([data.codes[:, :, :, s * sf_ : (s + 1) * sf_] for s in range(2)], axis=2)
    x_all = latent_from_codes(torch.from_numpy(segs.reshape(-1, *segs.shape[3:]).astype(np.int64)), table)
    target = torch.softmax(torch.from_numpy(seg.reshape(-1, 527)), dim=-1)

    def listwise_error(model: Any) -> float:
        model.eval()
        with torch.no_grad():
            return float(listwise_kd(model(x_all).logits, target))

    logged: list[dict[str, float]] = []
    ranked = train_tagger(dcfg, data, table, tmp_path / "ranked", on_log=logged.append)
    plain = train_tagger(dataclasses.replace(dcfg, rank_kd=0.0), data, table, tmp_path / "plain")
    assert listwise_error(ranked) < 0.9 * listwise_error(plain)
    assert all("rank" in rec for rec in logged)
    train_tagger(dcfg, data, table, tmp_path / "split", max_steps=25)
    resumed = train_tagger(dcfg, data, table, tmp_path / "split")
    for (k, a), (_, b) in zip(ranked.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    old = {k: v for k, v in dataclasses.asdict(DistillConfig()).items() if not k.startswith("rank_")}
    assert same_config(old, DistillConfig())  # checkpoints written before the listwise term still resume
