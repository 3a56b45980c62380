"""``encotag train tagger --weight-decay``: AdamW's decoupled decay, from the command line to the weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from app.cli import build_parser
from app.commands.train_tagger import distill_config
from models.training.distill import DistillConfig, train_tagger
from tests.test_distill import _tiny_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_BASE = ["train", "tagger", "--corpus", "c", "--teacher", "t", "--out", "o"]


def test_the_option_reaches_the_distillation_config() -> None:
    parser = build_parser()
    default = distill_config(parser.parse_args(_BASE))
    fixed = {k: getattr(default, k) for k in ("width", "steps", "batch_size", "lr", "seed")}
    assert default == DistillConfig(**fixed)  # every other setting is the dataclass's default (decay 1e-4)
    assert default.weight_decay == pytest.approx(1e-4)
    set_ = distill_config(parser.parse_args([*_BASE, "--weight-decay", "0.05", "--rank-kd", "0.003"]))
    assert (set_.weight_decay, set_.rank_kd) == (0.05, 0.003)


def _norm(model: torch.nn.Module) -> float:
    return float(sum(float(p.detach().pow(2).sum()) for p in model.parameters()) ** 0.5)


def test_decay_shrinks_the_weights_and_a_checkpoint_keeps_its_own(tmp_path: Path) -> None:
    data, table = _tiny_data()
    dcfg = DistillConfig(width=0.1, steps=40, batch_size=4, lr=3e-3, log_every=10, weight_decay=0.0)
    plain = train_tagger(dcfg, data, table, tmp_path / "plain")
    decayed = train_tagger(dataclasses.replace(dcfg, weight_decay=2.0), data, table, tmp_path / "decayed")
    assert _norm(decayed) < 0.97 * _norm(plain)  # same seed, same batches: only the decay differs
    # a run interrupted with one decay does not resume with another
    train_tagger(dcfg, data, table, tmp_path / "split", max_steps=10)
    with pytest.raises(ValueError, match="another configuration"):
        train_tagger(dataclasses.replace(dcfg, weight_decay=0.05), data, table, tmp_path / "split")
