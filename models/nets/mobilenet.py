"""MobileNetV3 audio tagger with a width multiplier (EfficientAT's ``mn`` family).

The layer layout and the parameter names follow EfficientAT (Schmid et al., ICASSP 2023,
github.com/fschmid56/EfficientAT, MIT) so that its released AudioSet checkpoints, e.g. ``mn04_as``, load
with ``strict=True``:

- ``features.0``: stem conv 3×3 stride 2 → BatchNorm → Hardswish (``features.0.0`` conv, ``features.0.1`` BN).
- ``features.1 … features.15``: inverted-residual blocks (``features.N.block.K…``): optional 1×1 expansion,
  depthwise k×k, optional channel squeeze-excitation (``block.K.conc_se_layers.0.fc1/fc2``, ReLU then
  sigmoid, bottleneck ``make_divisible(C // 4, 8)``), 1×1 projection without activation; a residual
  connection when the stride is 1 and the channel count is unchanged.
- ``features.16``: 1×1 conv to 6 × the last block's channels → BatchNorm → Hardswish.
- ``classifier``: global average pool → flatten → Linear (``classifier.2``) → Hardswish → Dropout(0.2)
  → Linear (``classifier.5``).

All BatchNorms use eps 1e-3, momentum 0.01. Input: ``(B, C, F, T)`` float32 (e.g. 128 log-mel bands × T
frames); any F, T ≥ 1 works (the network downsamples by 32 with 'same' padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

# EfficientAT model names → width multiplier α.
WIDTHS: dict[str, float] = {
    "mn01": 0.1,
    "mn02": 0.2,
    "mn04": 0.4,
    "mn05": 0.5,
    "mn06": 0.6,
    "mn08": 0.8,
    "mn10": 1.0,
    "mn12": 1.2,
    "mn14": 1.4,
    "mn16": 1.6,
    "mn20": 2.0,
    "mn30": 3.0,
    "mn40": 4.0,
}

BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def width_for_name(name: str) -> float:
    """Width multiplier of an EfficientAT model name (``"mn04"`` or ``"mn04_as"`` → 0.4).

    Raises ``ValueError`` for an unknown name.
    """
    key = name[:4]
    if key not in WIDTHS:
        raise ValueError(f"unknown MobileNet name {name!r}: expected one of {sorted(WIDTHS)}")
    return WIDTHS[key]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``divisor``), never more than 10 %
    below ``value`` (the MobileNet channel rounding rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual block of MobileNetV3-Large, at width 1.0."""

    in_ch: int
    kernel: int
    expanded: int
    out_ch: int
    use_se: bool
    hardswish: bool  # False → ReLU
    stride: int


# MobileNetV3-Large (Howard et al., 2019, table 1); the stride-2 blocks are features.2, 4, 7, 13.
LARGE_BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec(16, 3, 16, 16, False, False, 1),
    BlockSpec(16, 3, 64, 24, False, False, 2),
    BlockSpec(24, 3, 72, 24, False, False, 1),
    BlockSpec(24, 5, 72, 40, True, False, 2),
    BlockSpec(40, 5, 120, 40, True, False, 1),
    BlockSpec(40, 5, 120, 40, True, False, 1),
    BlockSpec(40, 3, 240, 80, False, True, 2),
    BlockSpec(80, 3, 200, 80, False, True, 1),
    BlockSpec(80, 3, 184, 80, False, True, 1),
    BlockSpec(80, 3, 184, 80, False, True, 1),
    BlockSpec(80, 3, 480, 112, True, True, 1),
    BlockSpec(112, 3, 672, 112, True, True, 1),
    BlockSpec(112, 5, 672, 160, True, True, 2),
    BlockSpec(160, 5, 960, 160, True, True, 1),
    BlockSpec(160, 5, 960, 160, True, True, 1),
)
LAST_CHANNEL = 1280  # hidden size of the classifier MLP at width 1.0


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias, 'same' padding) → BatchNorm2d → optional activation; children ``0``, ``1``, ``2``."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.Hardswish,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class ChannelSE(nn.Module):
    """Squeeze-excitation over channels: ``x * sigmoid(fc2(relu(fc1(mean_{F,T} x))))``.

    Holds the one channel SE layer as ``conc_se_layers.0`` (EfficientAT's ``ConcurrentSEBlock`` with
    ``se_dims='c'``; with a single branch its max-aggregation is the identity).
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([_SELayer(channels, make_divisible(channels // reduction, 8))])

    def forward(self, x: Tensor) -> Tensor:
        return self.conc_se_layers[0](x)


class _SELayer(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[0], x.shape[1]
        s = x.mean(dim=(2, 3))
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s.view(b, c, 1, 1)


class InvertedResidual(nn.Module):
    """Expansion (1×1, skipped when expanded == in) → depthwise k×k → [SE] → projection (1×1, linear)."""

    def __init__(self, spec: BlockSpec, width: float) -> None:
        super().__init__()
        in_ch = make_divisible(spec.in_ch * width)
        mid = make_divisible(spec.expanded * width)
        out_ch = make_divisible(spec.out_ch * width)
        act: type[nn.Module] = nn.Hardswish if spec.hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if mid != in_ch:
            layers.append(ConvBNAct(in_ch, mid, 1, activation=act))
        layers.append(ConvBNAct(mid, mid, spec.kernel, spec.stride, groups=mid, activation=act))
        if spec.use_se:
            layers.append(ChannelSE(mid))
        layers.append(ConvBNAct(mid, out_ch, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = spec.stride == 1 and in_ch == out_ch
        self.out_channels = out_ch

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        if self.use_residual:
            y += x
        return y


class MobileNetV3(nn.Module):
    """EfficientAT-compatible MobileNetV3 with width multiplier ``width``.

    ``forward(x (B, in_channels, F, T) float32) -> (logits (B, num_classes), mid (B, mid_embedding_size))``;
    ``mid`` concatenates the outputs of ``features[i]`` for ``i`` in ``embedding_blocks``, each averaged over
    frequency and time (block 0 is the stem, 1–15 the inverted-residual blocks, 16 the last 1×1 conv).
    Logits are raw (apply a sigmoid for AudioSet probabilities).
    """

    def __init__(
        self,
        width: float,
        num_classes: int = 527,
        in_channels: int = 1,
        embedding_blocks: Sequence[int] = (5, 11, 13, 15),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        self.width = float(width)
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        stem_ch = make_divisible(LARGE_BLOCKS[0].in_ch * width)
        layers: list[nn.Module] = [ConvBNAct(in_channels, stem_ch, 3, 2)]
        channels = [stem_ch]
        for spec in LARGE_BLOCKS:
            block = InvertedResidual(spec, width)
            layers.append(block)
            channels.append(block.out_channels)
        last_in = channels[-1]
        last_out = 6 * last_in
        layers.append(ConvBNAct(last_in, last_out, 1))
        channels.append(last_out)
        self.features = nn.Sequential(*layers)
        hidden = make_divisible(LAST_CHANNEL * width)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(start_dim=1),
            nn.Linear(last_out, hidden),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(hidden, num_classes),
        )
        blocks = tuple(int(i) for i in embedding_blocks)
        for i in blocks:
            if not 0 <= i < len(self.features):
                raise ValueError(f"embedding block {i} out of range 0..{len(self.features) - 1}")
        self.embedding_blocks = blocks
        self.block_channels: tuple[int, ...] = tuple(channels)
        self.mid_embedding_size = sum(channels[i] for i in blocks)
        self.fused = False
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    @property
    def mid_layout(self) -> tuple[tuple[str, int], ...]:
        """``(("block5", C5), ("block11", C11), …)`` in the order of ``mid``."""
        return tuple((f"block{i}", self.block_channels[i]) for i in self.embedding_blocks)

    def fuse_for_inference(self) -> MobileNetV3:
        """Make this network an inference-only one, about 1.5–2× faster on CPU; returns ``self``.

        Folds every BatchNorm into the conv before it (the conv gains a bias, the BN becomes Identity) and
        switches weights and inputs to channels-last memory layout. Outputs match the unfused network to
        ~1e-5. Afterwards the state dict no longer has the EfficientAT layout and ``train()`` raises: load
        weights first, fuse last, never save a fused network.
        """
        if self.fused:
            return self
        self.eval()
        for mod in self.modules():
            if isinstance(mod, ConvBNAct) and isinstance(mod[1], nn.BatchNorm2d):
                conv, bn = mod[0], mod[1]
                assert isinstance(conv, nn.Conv2d)
                mod[0] = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
                mod[1] = nn.Identity()
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.fused = True
        return self

    def train(self, mode: bool = True) -> MobileNetV3:
        if mode and getattr(self, "fused", False):
            raise RuntimeError("a network fused for inference cannot be trained")
        return super().train(mode)

    def forward_maps(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Run the feature extractor: ``(last map (B, 6·C15, F/32, T/32), [maps of embedding_blocks])``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, F, T), got {tuple(x.shape)}")
        if self.fused:
            x = x.contiguous(memory_format=torch.channels_last)
        wanted = set(self.embedding_blocks)
        maps: list[Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                maps.append(x)
        return x, maps

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        last, maps = self.forward_maps(x)
        logits = self.classifier(last)
        mid = torch.cat([m.mean(dim=(2, 3)) for m in maps], dim=1)
        return logits, mid


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
