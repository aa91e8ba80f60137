"""The identity candidate: lets a searched cell use fewer attention operations than it has nodes."""

from __future__ import annotations

from torch import nn

from darts_video.ops.registry import IDENTITY, OpConfig, OpSpec, register_family


@register_family(IDENTITY)
def build_identity(spec: OpSpec, channels: int, config: OpConfig) -> nn.Module:
    return nn.Identity()
