"""The relaxed cell: every node mixes every candidate operation over a mixture of its inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from darts_video.cell import Sink
from darts_video.ops import OpConfig, OpSpec, create_op
from darts_video.space import SearchSpace
from darts_video.supernet.arch import ArchWeights


def weighted_sum(terms: Sequence[Callable[[], Tensor]], weights: Tensor, sparse: bool) -> Tensor:
    """Σ w_j · term_j(). With one-hot ``weights`` only the chosen term is computed, scaled by its
    weight, which carries the straight-through gradient (GDAS)."""
    if sparse:
        chosen = int(weights.argmax())
        return weights[chosen] * terms[chosen]()
    return sum(w * term() for w, term in zip(weights, terms))


class MixedOp(nn.Module):
    """Σ_k w_k · op_k(x) over the candidate operations (only the sampled one when sparse)."""

    def __init__(self, specs: Sequence[OpSpec], channels: int, config: OpConfig) -> None:
        super().__init__()
        self.ops = nn.ModuleList(create_op(spec, channels, config) for spec in specs)

    def forward(self, x: Tensor, weights: Tensor, sparse: bool = False) -> Tensor:  # x: (N, C, T, H, W)
        return weighted_sum([partial(op, x) for op in self.ops], weights, sparse)


class WeightsSlot:
    """Where the supernet leaves the mixing weights of the current forward for its cells to read."""

    weights: ArchWeights | None = None


class MixedCell(nn.Module):
    """The discrete cell's structure with every decision relaxed; same sink, same zero-init residual.

    ``partial_channels = k > 1`` is PC-DARTS: only the first C/k channels go through the mixed
    operations, the rest bypass them, and a channel shuffle mixes the two groups; the input
    weights β play the part of PC-DARTS's edge normalisation.
    """

    def __init__(self, space: SearchSpace, channels: int, slot: WeightsSlot, partial_channels: int = 1) -> None:
        super().__init__()
        if partial_channels < 1 or channels % partial_channels:
            raise ValueError(f"partial_channels = {partial_channels} must divide the {channels} channels")
        self.space, self.slot, self.partial_channels = space, slot, partial_channels
        self.nodes = nn.ModuleList(MixedOp(space.ops, channels // partial_channels, space.op_config) for _ in range(space.num_nodes))
        self.sink = Sink(space.num_nodes, channels)

    def forward(self, x: Tensor) -> Tensor:  # (N, C, T, H, W)
        weights = self.slot.weights
        if weights is None:
            raise RuntimeError("MixedCell ran outside a Supernet forward: no architecture weights were set")
        states = [x]
        for number, node in enumerate(self.nodes, start=1):
            candidates = [partial(states.__getitem__, j) for j in self.space.candidate_inputs(number)]
            h = weighted_sum(candidates, weights.inputs[number - 1], weights.sparse)
            states.append(self._mix_node(node, h, weights.ops[number - 1], weights.sparse))
        return x + self.sink(states[1:])

    def _mix_node(self, node: MixedOp, h: Tensor, weights: Tensor, sparse: bool) -> Tensor:
        if self.partial_channels == 1:
            return node(h, weights, sparse)
        active = h.shape[1] // self.partial_channels
        mixed = torch.cat([node(h[:, :active], weights, sparse), h[:, active:]], dim=1)
        return channel_shuffle(mixed, self.partial_channels)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """(N, C, ...) with C = groups · c -> channels interleaved across the groups (ShuffleNet)."""
    n, c, *rest = x.shape
    return x.view(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)
