"""The relaxed cell: every node mixes every candidate operation over a mixture of its inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from darts_video.cell import Sink
from darts_video.ops import OpConfig, OpSpec, create_op
from darts_video.space import SearchSpace
from darts_video.supernet.arch import ArchWeights


class MixedOp(nn.Module):
    """Σ_k w_k · op_k(x) over the candidate operations (a sampled cell runs its chosen op alone)."""

    def __init__(self, specs: Sequence[OpSpec], channels: int, config: OpConfig) -> None:
        super().__init__()
        self.ops = nn.ModuleList(create_op(spec, channels, config) for spec in specs)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:  # x: (N, C, T, H, W)
        return sum(w * op(x) for w, op in zip(weights, self.ops))


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
        if weights.sparse:
            return self._forward_sampled(x, weights)
        states = [x]
        for number, node in enumerate(self.nodes, start=1):
            candidates = [states[j] for j in self.space.candidate_inputs(number)]
            h = sum(w * state for w, state in zip(weights.inputs[number - 1], candidates))
            states.append(self._mix_node(node, h, weights.ops[number - 1]))
        return x + self.sink(states[1:])

    def _forward_sampled(self, x: Tensor, weights: ArchWeights) -> Tensor:
        """GDAS: node i runs only its sampled operation; the one-hot gate g_i (value 1) carries α's
        straight-through gradient, downstream through the node's state and into the sink."""
        states, outputs, gates = [x], [], []
        for number, node in enumerate(self.nodes, start=1):
            input_weights, op_weights = weights.inputs[number - 1], weights.ops[number - 1]
            source = int(input_weights.argmax())
            h = input_weights[source] * states[self.space.candidate_inputs(number)[source]]
            chosen = int(op_weights.argmax())
            outputs.append(node.ops[chosen](h))
            gates.append(op_weights[chosen])
            states.append(gates[-1] * outputs[-1])
        return x + gated_sink(self.sink, outputs, gates)

    def _mix_node(self, node: MixedOp, h: Tensor, weights: Tensor) -> Tensor:
        if self.partial_channels == 1:
            return node(h, weights)
        active = h.shape[1] // self.partial_channels
        mixed = torch.cat([node(h[:, :active], weights), h[:, active:]], dim=1)
        return channel_shuffle(mixed, self.partial_channels)


def gated_sink(sink: Sink, outputs: Sequence[Tensor], gates: Sequence[Tensor]) -> Tensor:
    """The sink of sampled node outputs, with their gates' gradients kept alive.

    ``sink(g_i · o_i)`` would do in value (every g_i = 1), but its BatchNorm's batch statistics
    rescale away any common factor of its input: with one node the gate's gradient is exactly 0,
    with several only their relative scale is left, and α learns nothing. So the gates enter
    outside the statistics: ``BN(proj(o)) + γ/σ · proj((g − sg(g)) · o)``, whose value is the plain
    sink's (the second term is 0) and whose gradient in g_i is node i's contribution γ/σ · W_i o_i
    at fixed σ. The weights' gradients are exactly those of the plain sink.
    """
    projected = sink.proj(torch.cat(list(outputs), dim=1))  # (N, C, T, H, W)
    norm = sink.norm
    if norm.training:
        variance = projected.detach().float().var(dim=(0, 2, 3, 4), unbiased=False)
    else:
        variance = norm.running_var
    scale = (norm.weight / torch.sqrt(variance + norm.eps)).view(1, -1, 1, 1, 1)
    zero_valued = sink.proj(torch.cat([(g - g.detach()) * o for g, o in zip(gates, outputs)], dim=1))
    return norm(projected) + scale * zero_valued


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """(N, C, ...) with C = groups · c -> channels interleaved across the groups (ShuffleNet)."""
    return rearrange(x, "n (g c) ... -> n (c g) ...", g=groups)
