"""2D -> 3D inflation (Carreira & Zisserman, 2017): an image network becomes a video network.

A k×k convolution becomes kt×k×k with its kernel repeated kt times over time and divided by kt,
so on a clip of identical frames it computes exactly what the 2D convolution computes on one
frame. BatchNorm statistics and affine parameters are copied, pools gain a temporal extent.

Temporal padding replicates the edge frames instead of adding zeros. With zeros, the first and
last frames of a short clip (8 frames through a 7-frame stem) would see a darkened input and the
inflated ImageNet network would no longer reproduce its 2D self on a static clip; with
replication it does at every frame, which is what makes inflation a sound initialisation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darts_video.errors import ConfigError


@dataclass(frozen=True)
class Temporal:
    """How one layer extends over time: kernel, stride, and padding (default: kernel // 2)."""

    kernel: int = 1
    stride: int = 1
    padding: int | None = None

    @property
    def pad(self) -> int:
        return self.kernel // 2 if self.padding is None else self.padding


TEMPORAL_PADDING_MODES = ("replicate", "zeros")


class InflatedConv3d(nn.Conv3d):
    """A Conv3d whose temporal padding replicates edge frames (spatial padding stays zeros).

    ``temporal_padding_mode="zeros"`` pads time with zeros instead, as networks trained in 3D
    (PySlowFast's and MMAction2's Kinetics checkpoints) were.
    """

    def __init__(self, *args, temporal_padding: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.temporal_padding = temporal_padding
        self.temporal_padding_mode = "replicate"

    def forward(self, x: Tensor) -> Tensor:  # (N, C, T, H, W)
        if self.temporal_padding:
            mode = "replicate" if self.temporal_padding_mode == "replicate" else "constant"
            x = F.pad(x, (0, 0, 0, 0, self.temporal_padding, self.temporal_padding), mode=mode)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temporal_padding={self.temporal_padding} ({self.temporal_padding_mode})"


def set_temporal_padding(model: nn.Module, mode: str) -> None:
    """Pad time with ``mode`` (replicate / zeros) in every inflated convolution of ``model``."""
    if mode not in TEMPORAL_PADDING_MODES:
        raise ConfigError(f"unknown temporal padding {mode!r}; expected one of {TEMPORAL_PADDING_MODES}")
    for layer in model.modules():
        if isinstance(layer, InflatedConv3d):
            layer.temporal_padding_mode = mode


def inflate_conv(conv: nn.Conv2d, temporal: Temporal) -> InflatedConv3d:
    """kt×k×k convolution equal to ``conv`` on every frame of a static clip."""
    if not isinstance(conv.padding, tuple):
        raise ValueError(f"cannot inflate a convolution with padding={conv.padding!r}; give explicit sizes")
    inflated = InflatedConv3d(
        conv.in_channels, conv.out_channels, (temporal.kernel, *conv.kernel_size), stride=(temporal.stride, *conv.stride),
        padding=(0, *conv.padding), dilation=(1, *conv.dilation), groups=conv.groups, bias=conv.bias is not None,
        temporal_padding=temporal.pad,
    )
    with torch.no_grad():
        inflated.weight.copy_(conv.weight.unsqueeze(2).repeat(1, 1, temporal.kernel, 1, 1) / temporal.kernel)
        if conv.bias is not None:
            inflated.bias.copy_(conv.bias)
    return inflated


def inflate_batch_norm(norm: nn.BatchNorm2d) -> nn.BatchNorm3d:
    inflated = nn.BatchNorm3d(norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
    inflated.load_state_dict(norm.state_dict())
    return inflated


def inflate_max_pool(pool: nn.MaxPool2d, temporal: Temporal) -> nn.MaxPool3d:
    """Max pooling pads with -inf, so ordinary temporal padding keeps a static clip static."""
    def pair(value: int | tuple[int, int]) -> tuple[int, int]:
        return value if isinstance(value, tuple) else (value, value)

    return nn.MaxPool3d(
        (temporal.kernel, *pair(pool.kernel_size)), (temporal.stride, *pair(pool.stride)),
        (temporal.pad, *pair(pool.padding)), ceil_mode=pool.ceil_mode,
    )


def inflate(model: nn.Module, temporal_of: Callable[[str, nn.Module], Temporal]) -> nn.Module:
    """A 3D copy of ``model``: every Conv2d, BatchNorm2d, MaxPool2d and AdaptiveAvgPool2d replaced.

    ``temporal_of(name, layer)`` gives the temporal extent of each convolution and pool, by its
    dotted name in ``model``. Modules whose forward only composes their children (Sequential,
    Inception branches, residual blocks) keep working on 5D tensors unchanged.
    """
    inflated = copy.deepcopy(model)
    for name, layer in list(inflated.named_modules()):
        if isinstance(layer, nn.Conv2d):
            replacement = inflate_conv(layer, temporal_of(name, layer))
        elif isinstance(layer, nn.BatchNorm2d):
            replacement = inflate_batch_norm(layer)
        elif isinstance(layer, nn.MaxPool2d):
            replacement = inflate_max_pool(layer, temporal_of(name, layer))
        elif isinstance(layer, nn.AdaptiveAvgPool2d):
            replacement = nn.AdaptiveAvgPool3d(1)
        elif isinstance(layer, nn.AvgPool2d):
            raise ValueError(f"inflate: no rule for {name} ({type(layer).__name__})")
        else:
            continue
        inflated.set_submodule(name, replacement)
    return inflated
