"""Map-based attention: one weighting factor per position, shared by all channels (CBAM-like)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from darts_video.ops.activations import ACTIVATIONS, map_weights
from darts_video.ops.registry import DIMENSIONS, OpConfig, OpSpec, register_family

# The context each logit sees: neighbours along the attention dimension only.
_KERNELS = {"spatial": (1, 7, 7), "temporal": (3, 1, 1), "spatiotemporal": (3, 7, 7)}


class MapAttention(nn.Module):
    """Gate each position by a weight computed from channel-pooled context along ``dim``.

    As CBAM's spatial attention: the channel mean and max at every position form a 2-channel
    descriptor, a convolution over the ``dim`` neighbourhood turns it into one logit per position,
    and ``activation`` turns logits into weights (softmax normalises over the token set of ``dim``).
    """

    def __init__(self, dim: str, activation: str) -> None:
        super().__init__()
        self.dim, self.activation = dim, activation
        kernel = _KERNELS[dim]
        # softmax is shift-invariant, so a bias would be a parameter without effect
        self.conv = nn.Conv3d(2, 1, kernel_size=kernel, padding=tuple(k // 2 for k in kernel), bias=activation != "softmax")

    def forward(self, x: Tensor) -> Tensor:  # (N, C, T, H, W)
        descriptor = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (N, 2, T, H, W)
        weights = map_weights(self.conv(descriptor), self.activation, self.dim)  # (N, 1, T, H, W)
        return x * weights

    def extra_repr(self) -> str:
        return f"dim={self.dim}, activation={self.activation}"


@register_family("map", dims=DIMENSIONS, activations=ACTIVATIONS)
def build_map_attention(spec: OpSpec, channels: int, config: OpConfig) -> nn.Module:
    return MapAttention(spec.dim, spec.activation)
