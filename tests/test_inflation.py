"""2D -> 3D inflation: a clip of identical frames gives the 2D network's logits."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torchvision.models import GoogLeNet, resnet50

from darts_video.backbones.i3d import I3D
from darts_video.backbones.i3d_r50 import I3DResNet50
from darts_video.backbones.inflate import Temporal, inflate, inflate_conv
from tests.helpers import calibrate_batch_norms, relative_error


def randomise_batch_norms(model: nn.Module) -> None:
    """Non-trivial statistics and affine parameters, so copying them is actually checked."""
    generator = torch.Generator().manual_seed(0)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            for tensor in (layer.weight.data, layer.bias.data, layer.running_mean):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1 + (1 if tensor is layer.weight.data else 0))
            layer.running_var.copy_(torch.rand(layer.running_var.shape, generator=generator) + 0.5)


def static_clip(image: torch.Tensor, frames: int) -> torch.Tensor:
    return image.unsqueeze(2).repeat(1, 1, frames, 1, 1)  # (N, C, H, W) -> (N, C, T, H, W)


@pytest.mark.parametrize("kernel, stride, frames", list(itertools.product((1, 3, 5), (1, 2), (4, 7))))
def test_inflated_conv_equals_2d_conv_on_every_frame(kernel: int, stride: int, frames: int) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    image = torch.randn(2, 3, 12, 12)
    output = inflate_conv(conv, Temporal(kernel, stride))(static_clip(image, frames))  # (2, 8, T', 6, 6)
    assert output.shape[2] == (frames - 1) // stride + 1
    expected = static_clip(conv(image), output.shape[2])
    assert relative_error(output, expected) < 1e-5


def test_inflated_weights_sum_to_the_2d_kernel() -> None:
    conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    inflated = inflate_conv(conv, Temporal(3))
    assert inflated.weight.shape == (4, 4, 3, 3, 3)
    torch.testing.assert_close(inflated.weight.sum(dim=2), conv.weight)


def test_inflate_copies_batch_norm_and_leaves_the_2d_model_alone() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1))
    randomise_batch_norms(model)
    inflated = inflate(model, lambda name, layer: Temporal(3, 1))
    assert isinstance(model[1], nn.BatchNorm2d) and isinstance(inflated[1], nn.BatchNorm3d)
    torch.testing.assert_close(inflated[1].running_var, model[1].running_var)
    assert isinstance(inflated[2], nn.MaxPool3d) and inflated[2].kernel_size == (3, 2, 2)


def test_inflate_refuses_layers_it_has_no_rule_for() -> None:
    with pytest.raises(ValueError, match="no rule for 1 \\(AvgPool2d\\)"):
        inflate(nn.Sequential(nn.Conv2d(3, 3, 1), nn.AvgPool2d(2)), lambda name, layer: Temporal())


@pytest.mark.parametrize("frames", (4, 8))
def test_i3d_r50_on_a_static_clip_gives_the_resnet50_logits(frames: int) -> None:
    torch.manual_seed(0)
    resnet = calibrate_batch_norms(resnet50(num_classes=10), torch.randn(4, 3, 64, 64))
    video_net = I3DResNet50(resnet, num_classes=10).eval()
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, logits = resnet(image), video_net(static_clip(image, frames))
    assert relative_error(expected[0], expected[1]) > 1e-2  # the logits depend on the input: not two constants compared
    assert relative_error(logits, expected) < 1e-3


@pytest.mark.parametrize("frames", (8, 16))
def test_i3d_on_a_static_clip_gives_the_googlenet_logits(frames: int) -> None:
    torch.manual_seed(0)
    googlenet = calibrate_batch_norms(GoogLeNet(num_classes=10, aux_logits=False, transform_input=False, init_weights=True),
                                      torch.randn(4, 3, 64, 64))
    video_net = I3D(googlenet, num_classes=10).eval()
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, logits = googlenet(image), video_net(static_clip(image, frames))
    assert relative_error(expected[0], expected[1]) > 1e-2
    assert relative_error(logits, expected) < 1e-3


def test_i3d_r50_inflates_the_non_local_networks_temporal_pattern() -> None:
    video_net = I3DResNet50(resnet50(), num_classes=10)
    wide = [name for name, m in video_net.named_modules() if isinstance(m, nn.Conv3d) and m.kernel_size[0] == 3]
    assert video_net.stem[0].kernel_size == (5, 7, 7)
    assert wide == ["res2.0.conv1", "res2.1.conv1", "res2.2.conv1", "res3.0.conv1", "res3.2.conv1",
                    "res4.0.conv1", "res4.2.conv1", "res4.4.conv1", "res5.1.conv1"]
