"""Weight averaging of trained taggers (``encotag train average``): the element-wise weighted mean of
state dicts of one architecture, a "model soup". Runs continued from one another (warm starts of the same
lineage) stay in one basin of the loss, so their mean is a model of its own, often better on held-out
data than either; runs from different initialisations are not averaged meaningfully (the command does
not check lineage: the held-out scoring it prints says whether the mean is any good).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor


def average_states(states: Sequence[Mapping[str, Tensor]], weights: Sequence[float]) -> dict[str, Tensor]:
    """``sum(w_i · state_i)`` per floating-point tensor with the weights normalised to sum 1, in each
    tensor's dtype of the last state; other tensors (BatchNorm's ``num_batches_tracked``) come from the
    last state. Raises ``ValueError`` for fewer than two states, weights that are not positive or do not
    match, or states whose keys or shapes differ."""
    if len(states) < 2 or len(weights) != len(states) or any(not w > 0 for w in weights):
        raise ValueError("average: two or more states, one positive weight each")
    keys = set(states[0])
    for s in states[1:]:
        if set(s) != keys:
            raise ValueError(f"average: the states have different tensors ({sorted(keys ^ set(s))[:3]} …)")
        bad = [k for k in keys if s[k].shape != states[0][k].shape]
        if bad:
            raise ValueError(f"average: shapes differ for {bad[:3]} (another width or network?)")
    total = float(sum(weights))
    norm = [w / total for w in weights]
    last = states[-1]
    out: dict[str, Tensor] = {}
    for k in last:
        if not last[k].is_floating_point():
            out[k] = last[k].clone()
            continue
        acc = norm[0] * states[0][k].float()
        for w, s in zip(norm[1:], states[1:], strict=True):
            acc = acc + w * s[k].float()
        out[k] = acc.to(last[k].dtype).contiguous()
    return out
