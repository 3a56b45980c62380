"""Function-preserving widening (training only): a trained codec or tagger becomes the warm start of a
wider one that computes the same function.

**Codec** (:func:`widen_codec_state`): more filters, same function.

A codec trained with ``num_filters = n`` becomes the warm start of one with ``num_filters = k·n`` (``k``
an integer, every other configuration field equal) in the manner of Net2WiderNet: each channel ``c`` of
a layer whose width scales with ``num_filters`` is copied to ``c, c + C, …`` (``C`` the old width), and
the weights reading a widened input are divided by ``k``, so the sum over the copies equals the old sum.
Elementwise activations (ELU), residual sums and the LSTM (gates widened block by block, its hidden
units copied the same way, so the copies carry identical states) keep the copies equal; the latent
(``hidden_size``), the codebooks and the audio channels keep their widths. With ``noise = 0`` the wide
codec computes exactly what the narrow one did (up to float rounding); a small ``noise`` (relative to
each tensor's standard deviation) breaks the symmetry between copies so that training can make them
differ — copies with equal weights would receive equal gradients and never separate.

Weight norm is handled on the effective weight ``g · v / ‖v‖``: it is widened, then assigned through
the parametrization (``g = ‖w‖``, ``v = w``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from models.config import CodecConfig


def _expand(t: Tensor, dim: int, new: int, divide: bool, blocks: int = 1) -> Tensor:
    """``t`` with its size along ``dim`` widened to ``new`` by copying (channel ``j`` ← ``j mod old``).

    ``blocks`` > 1 treats ``dim`` as that many equal blocks (LSTM gates) widened one by one; ``divide``
    divides by the widening factor (for dims that *read* widened channels).
    """
    size = t.shape[dim]
    old, wide = size // blocks, new // blocks
    if wide == old:
        return t
    if wide % old or old * blocks != size:
        raise ValueError(f"cannot widen a dimension of {size} to {new}")
    idx = torch.cat([b * old + torch.arange(wide) % old for b in range(blocks)])
    out = t.index_select(dim, idx)
    return out / (wide // old) if divide else out


def _check(narrow: CodecConfig, wide: CodecConfig) -> None:
    if wide.num_filters % narrow.num_filters:
        raise ValueError(
            f"num_filters {wide.num_filters} is not a multiple of the warm start's {narrow.num_filters}"
        )
    a = dataclasses.replace(narrow, num_filters=wide.num_filters)
    if a != wide:
        diff = [f.name for f in dataclasses.fields(wide) if getattr(a, f.name) != getattr(wide, f.name)]
        raise ValueError(f"warm start differs in more than num_filters: {', '.join(diff)}")


@torch.no_grad()
def widen_codec_state(
    state: Mapping[str, Tensor],
    narrow: CodecConfig,
    wide: CodecConfig,
    noise: float = 0.01,
    seed: int = 0,
) -> dict[str, Tensor]:
    """The state dict (training spelling: parametrized weight norm) of a ``wide`` codec that computes
    what the ``narrow`` codec with ``state`` (any spelling :class:`models.codec.codec.Codec` accepts)
    computes,
    plus ``noise``·std Gaussian noise on every widened tensor. Raises ``ValueError`` when the two
    configurations differ in anything but a multiple of ``num_filters``.
    """
    from models.codec.codec import Codec
    from models.training.codec_train import build_model

    _check(narrow, wide)
    src = Codec(narrow, init=False)
    src.load_state(state)
    dst: Any = build_model(wide)
    gen = torch.Generator().manual_seed(seed)
    src_modules = dict(src.named_modules())

    def jitter(t: Tensor, ref: Tensor) -> Tensor:
        if noise <= 0 or t.shape == ref.shape:
            return t
        return t + noise * ref.std() * torch.randn(t.shape, generator=gen)

    for name, mod in dst.named_modules():
        old = src_modules.get(name)
        if isinstance(mod, nn.Conv1d | nn.ConvTranspose1d):
            assert isinstance(old, nn.Conv1d | nn.ConvTranspose1d), name
            w = old.weight.detach()
            in_dim, out_dim = (0, 1) if isinstance(mod, nn.ConvTranspose1d) else (1, 0)
            new_w = _expand(w, out_dim, mod.weight.shape[out_dim], divide=False)
            new_w = _expand(new_w, in_dim, mod.weight.shape[in_dim], divide=True)
            mod.weight = jitter(new_w, w)  # through the weight-norm parametrization: g = |w|, v = w
            if mod.bias is not None and old.bias is not None:
                mod.bias.copy_(_expand(old.bias.detach(), 0, mod.bias.shape[0], divide=False))
        elif isinstance(mod, nn.LSTM):
            assert isinstance(old, nn.LSTM), name
            for pname, p in mod.named_parameters(recurse=False):
                t = getattr(old, pname).detach()
                new_t = _expand(t, 0, p.shape[0], divide=False, blocks=4)
                if new_t.dim() == 2:
                    new_t = _expand(new_t, 1, p.shape[1], divide=True)
                p.copy_(jitter(new_t, t))
    out = dst.state_dict()
    for key, value in src.state_dict().items():
        if key.startswith("quantizer."):
            out[key] = value.clone()
    return {k: v.detach().contiguous() for k, v in out.items()}


@torch.no_grad()
def pad_widen_state(narrow: Mapping[str, Tensor], wide: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """**Tagger** (any feed-forward network whose widths grow and whose normalisations are per channel,
    such as :class:`models.nets.mobilenet.MobileNetV3` at a larger width multiplier): the ``wide``
    state (a freshly initialised wider network's) with the ``narrow`` network's tensors in its leading
    channels, so the wide network computes what the narrow one did.

    Every tensor of ``narrow`` is copied into the leading slice of its ``wide`` counterpart (old channel
    ``c`` stays channel ``c``). The weights by which an old output channel reads a *new* input channel
    (``[:old_out, old_in:]`` of every tensor with two or more dimensions) are set to zero, so the new
    channels, which keep their fresh initialisation, do not change any old channel; the classifier's
    outputs are old channels, so the logits are unchanged. Training then grows the new channels from the
    gradient of those zero weights (not symmetric copies, so no noise is needed). The part of the
    embedding that an old channel gives keeps its value; the new channels add embedding dimensions.

    Raises ``ValueError`` when the keys differ or a tensor of ``narrow`` does not fit in its ``wide``
    counterpart (another architecture, or a narrower target).
    """
    if set(narrow) != set(wide):
        diff = sorted(set(narrow) ^ set(wide))
        raise ValueError(f"cannot widen: the networks differ in {len(diff)} tensors, e.g. {diff[0]}")
    out: dict[str, Tensor] = {}
    for key, w in wide.items():
        t = narrow[key]
        if t.dim() != w.dim() or any(a > b for a, b in zip(t.shape, w.shape, strict=True)):
            raise ValueError(f"cannot widen {key}: {tuple(t.shape)} does not fit in {tuple(w.shape)}")
        new = w.detach().clone()
        new[tuple(slice(0, n) for n in t.shape)] = t.to(new.dtype)
        if new.dim() >= 2 and new.shape[1] > t.shape[1]:
            new[: t.shape[0], t.shape[1] :] = 0
        out[key] = new.contiguous()
    return out
