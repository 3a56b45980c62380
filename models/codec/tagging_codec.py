"""The tagging half of a pack codec: EnCodec's encoder and RVQ codebooks without ``transformers``.

Tagging never runs the decoder, and importing ``transformers`` (what
:class:`models.codec.codec.Codec` is built on) costs about 140 MB of RSS and 4 s.
:class:`TaggingCodec` builds only the encoder and the codebooks,
as plain torch modules with the same state-dict names as :class:`~models.codec.codec.Codec` (fused spelling),
and runs the same torch operations in the same order, so its codes and latents equal the full codec's
bit for bit (tests compare them). It keeps the peak memory of encoding low: the high-rate stages run op
by op with in-place ELU and residual sums and drop each intermediate as soon as it is used (about three
activations of ``channels × samples`` alive at once instead of five or more).

:func:`TaggingCodec.from_state` takes any of the spellings :meth:`Codec.load_state` takes and is as strict:
every key of the full codec (decoder included, checked by name and shape from :func:`codec_layout`) must
be there and nothing else; the decoder's weights are then dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from models.codec.codec import CodecError, CodecGeometry, _rename_legacy, complete_state, num_quantizers
from models.config import CodecConfig

# EncodecConfig defaults that CodecConfig does not vary (tests check them against transformers)
KERNEL, LAST_KERNEL, RESIDUAL_KERNEL, COMPRESS, DILATION_GROWTH = 7, 7, 3, 2, 2
_G = ".parametrizations.weight.original0"
_V = ".parametrizations.weight.original1"


@dataclass(frozen=True)
class ConvSpec:
    """One (weight-normed) convolution of the codec: ``name`` is its module path (``….conv`` below)."""

    name: str
    cin: int
    cout: int
    kernel: int
    stride: int = 1
    dilation: int = 1
    transposed: bool = False

    @property
    def weight_shape(self) -> tuple[int, int, int]:
        return (self.cin, self.cout, self.kernel) if self.transposed else (self.cout, self.cin, self.kernel)


def _resblock(prefix: str, dim: int, j: int) -> list[ConvSpec]:
    hidden = dim // COMPRESS
    return [
        ConvSpec(f"{prefix}.block.1", dim, hidden, RESIDUAL_KERNEL, dilation=DILATION_GROWTH**j),
        ConvSpec(f"{prefix}.block.3", hidden, dim, 1),
        ConvSpec(f"{prefix}.shortcut", dim, dim, 1),
    ]


def codec_layout(cfg: CodecConfig) -> tuple[list[ConvSpec], list[tuple[str, int]]]:
    """The convolutions and LSTMs (``(module path, size)``) of the full codec, encoder then decoder, in
    the order and with the names ``transformers``' EnCodec gives them."""
    nf, convs, lstms = cfg.num_filters, [], []
    convs.append(ConvSpec("encoder.layers.0", 1, nf, KERNEL))
    i, scale = 1, 1
    for ratio in reversed(cfg.upsampling_ratios):
        dim = scale * nf
        for j in range(cfg.num_residual_layers):
            convs += _resblock(f"encoder.layers.{i}", dim, j)
            i += 1
        convs.append(ConvSpec(f"encoder.layers.{i + 1}", dim, 2 * dim, 2 * ratio, stride=ratio))
        i, scale = i + 2, scale * 2
    lstms.append((f"encoder.layers.{i}", scale * nf))
    convs.append(ConvSpec(f"encoder.layers.{i + 2}", scale * nf, cfg.hidden_size, LAST_KERNEL))
    convs.append(ConvSpec("decoder.layers.0", cfg.hidden_size, scale * nf, KERNEL))
    lstms.append(("decoder.layers.1", scale * nf))
    i = 2
    for ratio in cfg.upsampling_ratios:
        dim = scale * nf
        convs.append(ConvSpec(f"decoder.layers.{i + 1}", dim, dim // 2, 2 * ratio, ratio, transposed=True))
        i += 2
        for j in range(cfg.num_residual_layers):
            convs += _resblock(f"decoder.layers.{i}", dim // 2, j)
            i += 1
        scale //= 2
    convs.append(ConvSpec(f"decoder.layers.{i + 1}", nf, 1, LAST_KERNEL))
    return convs, lstms


def expected_shapes(cfg: CodecConfig, fused: bool) -> dict[str, tuple[int, ...]]:
    """Every key of the full codec's state dict (EMA buffers included) → its shape."""
    convs, lstms = codec_layout(cfg)
    out: dict[str, tuple[int, ...]] = {}
    for c in convs:
        w = c.weight_shape
        if fused:
            out[f"{c.name}.conv.weight"] = w
        else:
            out[f"{c.name}.conv{_G}"] = (w[0], 1, 1)
            out[f"{c.name}.conv{_V}"] = w
        out[f"{c.name}.conv.bias"] = (c.cout,)
    for name, d in lstms:
        for n in range(cfg.num_lstm_layers):
            out.update({f"{name}.lstm.weight_ih_l{n}": (4 * d, d), f"{name}.lstm.weight_hh_l{n}": (4 * d, d)})
            out.update({f"{name}.lstm.bias_ih_l{n}": (4 * d,), f"{name}.lstm.bias_hh_l{n}": (4 * d,)})
    for q in range(num_quantizers(cfg, max(cfg.target_bandwidths))):
        base, size, dim = f"quantizer.layers.{q}.codebook", cfg.codebook_size, cfg.hidden_size
        out.update({f"{base}.inited": (1,), f"{base}.cluster_size": (size,)})
        out.update({f"{base}.embed": (size, dim), f"{base}.embed_avg": (size, dim)})
    return out


class _Conv(nn.Module):
    """``EncodecConv1d`` (causal, reflect padding) with its weight norm fused."""

    conv: nn.Conv1d

    def __init__(self, spec: ConvSpec) -> None:
        super().__init__()
        self.conv = nn.Conv1d(spec.cin, spec.cout, spec.kernel, spec.stride, dilation=spec.dilation)
        self.k = (spec.kernel - 1) * spec.dilation + 1
        self.stride = spec.stride

    def pad(self, x: Tensor) -> Tensor:
        """``x`` with EnCodec's causal padding (the input itself when there is none)."""
        length, left = x.shape[-1], self.k - self.stride
        # EnCodec's ceil((length - k + left) / stride) · stride + k - left - length, which is this; written
        # so that a traced (ONNX) graph keeps it a function of the length. The encoder graph of
        # ort_encoder is fed hop multiples (padded.py: partial frames via its lengths input), where it is 0
        right = (-length) % self.stride if self.stride > 1 else 0
        if left == 0 and self.stride == 1:
            return x
        extra = max(left, right) - length + 1 if length <= max(left, right) else 0
        if extra:  # reflect needs more samples than the input has: zeros first, as transformers does
            x = F.pad(x, (0, extra))
        padded = F.pad(x, (left, right), "reflect")
        return padded[..., : padded.shape[-1] - extra]

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class _ResBlock(nn.Module):
    shortcut: _Conv

    def __init__(self, specs: list[ConvSpec]) -> None:
        super().__init__()
        self.block = nn.ModuleDict({"1": _Conv(specs[0]), "3": _Conv(specs[1])})  # 0, 2: ELU
        self.shortcut = _Conv(specs[2])

    def conv(self, which: str) -> _Conv:
        return cast(_Conv, self.block[which])


class _Lstm(nn.Module):
    lstm: nn.LSTM

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers)


class _Table(nn.Module):
    embed: Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("embed", torch.zeros(size, dim))


class _Codebook(nn.Module):
    codebook: _Table

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.codebook = _Table(size, dim)


class _Encoder(nn.Module):
    def __init__(self, layers: nn.ModuleDict) -> None:
        super().__init__()
        self.layers = layers


class _Quantizer(nn.Module):
    def __init__(self, layers: nn.ModuleList) -> None:
        super().__init__()
        self.layers = layers


class TaggingCodec(CodecGeometry, nn.Module):
    """Encoder + RVQ of a pack codec for inference (see the module docstring); the :class:`Codec` methods
    tagging uses: ``encode``, ``embed``, ``quantize_codes``, ``unembed``, ``latent`` and the properties."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        if cfg.bandwidth not in cfg.target_bandwidths:
            raise CodecError(f"bandwidth {cfg.bandwidth} not in target_bandwidths {cfg.target_bandwidths}")
        if not cfg.use_causal_conv or cfg.norm_type != "weight_norm":
            raise CodecError("only causal weight-norm codecs have a transformers-free encoder")
        self.cfg = cfg
        convs, lstms = codec_layout(cfg)
        by_name = {c.name: c for c in convs if c.name.startswith("encoder.")}
        layers = nn.ModuleDict()
        for name, spec in by_name.items():
            idx = name.split(".")[2]
            if ".block." in name or ".shortcut" in name:
                if idx not in layers:
                    prefix = f"encoder.layers.{idx}"
                    specs = [by_name[prefix + s] for s in (".block.1", ".block.3", ".shortcut")]
                    layers[idx] = _ResBlock(specs)
            else:
                layers[idx] = _Conv(spec)
        layers[lstms[0][0].split(".")[2]] = _Lstm(lstms[0][1], cfg.num_lstm_layers)
        self.encoder = _Encoder(layers)
        self._order = [layers[k] for k in sorted(layers.keys(), key=int)]
        n_books = num_quantizers(cfg, max(cfg.target_bandwidths))
        self._books = [_Codebook(cfg.codebook_size, cfg.hidden_size) for _ in range(n_books)]
        self.quantizer = _Quantizer(nn.ModuleList(self._books))
        self.fused = True
        # another implementation of _encode_layers (models/codec/ort_encoder.py), checked against it
        self.encoder_backend: Callable[[Tensor], Tensor] | None = None
        self.eval()

    def fuse(self) -> TaggingCodec:
        """Already fused (kept so that callers can treat it like a :class:`Codec`)."""
        return self

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_state(cls, cfg: CodecConfig, state: Mapping[str, Tensor]) -> TaggingCodec:
        """Check ``state`` strictly against the full codec's layout, then load its encoder and codebooks
        (weight norm folded exactly as :meth:`Codec.fuse` folds it); raises :class:`CodecError`."""
        state = complete_state(_rename_legacy(state))
        fused = not any(k.endswith(_G) for k in state) and any(k.endswith(".conv.weight") for k in state)
        want = expected_shapes(cfg, fused)
        missing, unexpected = sorted(set(want) - set(state)), sorted(set(state) - set(want))
        if missing or unexpected:
            raise CodecError(f"codec state: missing keys {missing[:3]}, unexpected keys {unexpected[:3]}")
        for key, shape in want.items():
            if tuple(state[key].shape) != shape:
                raise CodecError(f"codec state: {key} has shape {tuple(state[key].shape)}, expected {shape}")
        codec = cls(cfg)
        own = codec.state_dict()
        mine: dict[str, Tensor] = {}
        for key in own:
            if fused or not key.endswith(".conv.weight"):
                mine[key] = state[key]
            else:  # the parametrization's own function: the same values Codec.fuse leaves
                base = key[: -len(".weight")]
                mine[key] = torch._weight_norm(state[base + _V], state[base + _G], 0)
        codec.load_state_dict(mine, strict=True)
        for module in codec.modules():
            if isinstance(module, nn.LSTM):
                module.flatten_parameters()
        return codec

    # ------------------------------------------------------------------ inference
    def layers_in_order(self) -> list[nn.Module]:
        """The encoder's stages in order: first convolution, residual blocks and downsampling
        convolutions, the LSTM, the last convolution (what :mod:`models.codec.streaming` runs)."""
        return list(self._order)

    def _encode_layers(self, x: Tensor) -> Tensor:
        """The encoder on audio (B, 1, n): the high-rate stages op by op, freeing as they go."""
        first, *stages, lstm, last = self._order
        assert isinstance(lstm, _Lstm)
        h = first(x)
        for stage in stages:
            if isinstance(stage, _ResBlock):  # shortcut(h) + block(h), the shortcut computed first
                s = stage.shortcut(h)
                h = F.elu(h, inplace=True)
                p = stage.conv("1").pad(h)
                del h
                h = F.elu(stage.conv("1").conv(p), inplace=True)
                del p
                h = s.add_(stage.conv("3")(h))
                del s
            else:  # ELU, then the downsampling convolution
                assert isinstance(stage, _Conv)
                h = F.elu(h, inplace=True)
                p = stage.pad(h)
                del h
                h = stage.conv(p)
                del p
        hp = h.permute(2, 0, 1)  # the low-rate tail exactly as transformers writes it (small tensors)
        h = (lstm.lstm(hp)[0] + hp).permute(1, 2, 0)
        return last(F.elu(h))

    def embed(self, audio: Tensor) -> Tensor:
        """Continuous encoder output (B, 128, T) before quantization."""
        audio = self._check_audio(audio)
        with torch.inference_mode():
            if self.encoder_backend is not None:
                return self.encoder_backend(audio.unsqueeze(1))
            return self._encode_layers(audio.unsqueeze(1))

    def quantize_codes(self, latent: Tensor, bandwidth: float | None = None) -> Tensor:
        """RVQ codes (B, n_q, T) int64 of a continuous latent (B, 128, T)."""
        residual, codes = latent, []
        for layer in self._books[: num_quantizers(self.cfg, bandwidth)]:
            embed = layer.codebook.embed
            flat = residual.permute(0, 2, 1)
            shape = flat.shape
            flat = flat.reshape((-1, shape[-1]))
            et = embed.t()
            dist = -(flat.pow(2).sum(1, keepdim=True) - 2 * flat @ et + et.pow(2).sum(0, keepdim=True))
            idx = dist.max(dim=-1).indices.view(*shape[:-1])
            residual = residual - F.embedding(idx, embed).permute(0, 2, 1)
            codes.append(idx)
        return torch.stack(codes, dim=1)

    def unembed(self, codes: Tensor) -> Tensor:
        """Codes (B, n_q, T) integer → quantized latent (B, 128, T) float32, as :meth:`Codec.unembed`."""
        codes = self._checked_codes(codes, len(self._books))
        with torch.inference_mode():
            out = torch.full((), 0.0)
            for layer, idx in zip(self._books, codes.transpose(0, 1), strict=False):
                out = out + F.embedding(idx, layer.codebook.embed).permute(0, 2, 1)
            return out
