"""MobileNetV3 (EfficientAT mn layout): shapes, widths, parameter names, backward."""

from __future__ import annotations

import pytest
import torch

from models.nets.mobilenet import WIDTHS, MobileNetV3, count_parameters, make_divisible, width_for_name


def test_make_divisible_rule() -> None:
    assert make_divisible(6.4) == 8
    assert make_divisible(28.8) == 32
    assert make_divisible(3.0) == 8  # at least the divisor
    assert make_divisible(1280 * 0.4) == 512
    assert make_divisible(20.0) == 24  # 16 would be > 10 % below 20


def test_width_table() -> None:
    assert width_for_name("mn04_as") == pytest.approx(0.4)
    assert width_for_name("mn40") == pytest.approx(4.0)
    assert WIDTHS["mn10"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown MobileNet name"):
        width_for_name("resnet")


@pytest.mark.parametrize("width", [0.1, 0.2, 0.4])
def test_forward_shapes(width: float) -> None:
    torch.manual_seed(0)
    net = MobileNetV3(width, num_classes=527).eval()
    x = torch.randn(2, 1, 128, 100)
    with torch.inference_mode():
        logits, mid = net(x)
    assert logits.shape == (2, 527)
    assert mid.shape == (2, net.mid_embedding_size)
    assert net.mid_embedding_size == sum(size for _, size in net.mid_layout)
    assert [name for name, _ in net.mid_layout] == ["block5", "block11", "block13", "block15"]
    assert torch.isfinite(logits).all() and torch.isfinite(mid).all()
    with torch.inference_mode():
        tiny_logits, _ = net(torch.randn(1, 1, 8, 3))  # smaller than the total stride still works
    assert tiny_logits.shape == (1, 527)


def test_three_channel_input_and_custom_blocks() -> None:
    net = MobileNetV3(0.1, num_classes=10, in_channels=3, embedding_blocks=(0, 16)).eval()
    with torch.inference_mode():
        logits, mid = net(torch.randn(1, 3, 64, 64))
    assert logits.shape == (1, 10)
    assert net.mid_layout == (("block0", net.block_channels[0]), ("block16", net.block_channels[16]))
    assert mid.shape == (1, net.block_channels[0] + net.block_channels[16])
    with pytest.raises(ValueError, match="expected input"):
        net(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="out of range"):
        MobileNetV3(0.1, embedding_blocks=(17,))


def test_parameter_names_follow_efficientat() -> None:
    names = set(MobileNetV3(0.4).state_dict())
    for key in (
        "features.0.0.weight",
        "features.1.block.0.0.weight",  # block 1 has no expansion: depthwise first
        "features.4.block.2.conc_se_layers.0.fc1.weight",
        "features.15.block.3.1.running_var",
        "features.16.1.num_batches_tracked",
        "classifier.2.weight",
        "classifier.5.bias",
    ):
        assert key in names, key
    assert len(names) == 312


def test_parameter_count_grows_with_width() -> None:
    counts = [count_parameters(MobileNetV3(w)) for w in (0.1, 0.2, 0.4)]
    assert counts[0] < counts[1] < counts[2]
    assert counts[2] == 983_599  # EfficientAT mn04 (its README: 0.983 M)


def test_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    net = MobileNetV3(0.1, num_classes=5).train()
    logits, mid = net(torch.randn(2, 1, 64, 64))
    (logits.sum() + mid.sum()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing


def test_fused_inference_matches_and_refuses_training() -> None:
    torch.manual_seed(0)
    net = MobileNetV3(0.2, num_classes=7)
    # give the BatchNorms non-trivial statistics so folding them is actually tested
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, 1, 64, 48) * 2 + 1)
    net.eval()
    x = torch.randn(2, 1, 64, 48)
    with torch.inference_mode():
        ref_logits, ref_mid = net(x)
        net.fuse_for_inference()
        logits, mid = net(x)
    assert net.fused
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert torch.allclose(logits, ref_logits, atol=1e-4)
    assert torch.allclose(mid, ref_mid, atol=1e-4)
    with pytest.raises(RuntimeError, match="cannot be trained"):
        net.train()
