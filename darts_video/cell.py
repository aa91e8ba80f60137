"""The discrete attention cell built from a genotype: shape-preserving, the identity at init."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from darts_video.genotype import Genotype
from darts_video.ops import create_op


class Sink(nn.Module):
    """Concatenate node outputs, project back to C with a 1×1×1 conv, normalise; the norm's scale
    starts at ``scale``.

    At the default 0 the sink output is exactly 0 at init, so the residual cell is exactly the
    identity and can go into a pretrained backbone without changing it (a discrete cell always
    starts so; the supernet's mixed cells do unless ``--sink-scale`` says otherwise). The
    projection starts as the sum of the node outputs (one identity block per node): each node's
    operation already ends in its own projection, and a second, random one in series made a cell
    holding the non-local block's operation open its attention path later and less reliably than
    the block (docs/retraining.md, "Why a cell opened later than the block").
    """

    def __init__(self, num_inputs: int, channels: int, scale: float = 0.0) -> None:
        super().__init__()
        self.proj = nn.Conv3d(num_inputs * channels, channels, kernel_size=1, bias=False)
        self.norm = nn.BatchNorm3d(channels)
        nn.init.constant_(self.norm.weight, scale)
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(channels).repeat(1, num_inputs).view_as(self.proj.weight))

    def forward(self, states: Sequence[Tensor]) -> Tensor:  # each (N, C, T, H, W)
        return self.norm(self.proj(torch.cat(list(states), dim=1)))  # (N, C, T, H, W)


class Cell(nn.Module):
    """``x + sink(node outputs)`` where node i applies its operation to one earlier state."""

    def __init__(self, genotype: Genotype, channels: int) -> None:
        super().__init__()
        self.genotype = genotype
        self.node_inputs = tuple(node.input for node in genotype.nodes)
        self.ops = nn.ModuleList(create_op(node.op, channels, genotype.op_config) for node in genotype.nodes)
        self.sink = Sink(len(genotype.sink), channels)

    def forward(self, x: Tensor) -> Tensor:  # (N, C, T, H, W)
        states = [x]
        for source, op in zip(self.node_inputs, self.ops):
            states.append(op(states[source]))
        return x + self.sink([states[i] for i in self.genotype.sink])

    def extra_repr(self) -> str:
        nodes = ", ".join(f"{i}={n.op.name}({n.input})" for i, n in enumerate(self.genotype.nodes, start=1))
        return f"nodes: {nodes}; sink: {list(self.genotype.sink)}"
