"""The relaxed cell: every node mixes its candidate operations over a mixture of its inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.checkpoint import checkpoint

from darts_video.cell import Sink
from darts_video.errors import ConfigError
from darts_video.ops import OpConfig, OpSpec, create_op
from darts_video.space import SearchSpace
from darts_video.supernet.arch import ArchWeights


class MixedOp(nn.Module):
    """Σ_k w_k · op_k(x) over the active candidate operations.

    ``normalize=True`` follows each candidate that has weights with an affine-free BatchNorm (as
    in DARTS' search network): a candidate cannot rescale its own output, so α is the only scale
    of its contribution. The statistics are always the batch's own (no running estimates), so the
    mixture computes the same in training, evaluation and recomputation.
    """

    def __init__(self, specs: Sequence[OpSpec], channels: int, config: OpConfig, normalize: bool = False) -> None:
        super().__init__()
        self.ops = nn.ModuleList(create_op(spec, channels, config) for spec in specs)
        self.norms = nn.ModuleList(
            nn.BatchNorm3d(channels, affine=False, track_running_stats=False) if normalize and spec.has_parameters else nn.Identity()
            for spec in specs
        )

    def forward(self, x: Tensor, weights: Tensor | None, active: Sequence[int] | None = None) -> Tensor:  # x: (N, C, T, H, W)
        """The mixture; ``weights=None``: the one ``active`` candidate's output, unweighted (a GDAS draw)."""
        if weights is None:
            (k,) = active
            return self.candidate(k, x)
        active = range(len(self.ops)) if active is None else active
        return sum(weights[k] * self.candidate(k, x) for k in active)

    def candidate(self, k: int, x: Tensor) -> Tensor:
        """Candidate ``k``'s output, normalised if the mixture normalises."""
        return self.norms[k](self.ops[k](x))


class MixedNodes(nn.ModuleList):
    """A cell's K mixed nodes: from the cell input to each node's output (the sink's inputs).

    ``partial_channels = k > 1`` is PC-DARTS: only the first C/k channels go through the mixed
    operations, the rest bypass them, and a channel shuffle mixes the two groups.

    ``recompute=True`` keeps only each node's input and output for backward and runs the node
    again there (``torch.utils.checkpoint``), one node at a time, so backward holds the
    candidates' intermediates of a single node at once. The recomputation is given the weights
    the node ran with (``torch.func.functional_call``): the architect's virtual forwards swap
    weights in with ``functional_call``, which has put the module's own back when backward runs.
    """

    def __init__(self, space: SearchSpace, channels: int, partial_channels: int = 1, normalize: bool = False,
                 recompute: bool = False) -> None:
        super().__init__(MixedOp(space.ops, channels // partial_channels, space.op_config, normalize) for _ in range(space.num_nodes))
        self.space, self.partial_channels, self.recompute = space, partial_channels, recompute

    def forward(self, x: Tensor, weights: ArchWeights) -> list[Tensor]:  # x: (N, C, T, H, W) -> K of (N, C, T, H, W)
        """Each node's mixture. For a GDAS draw, the chosen operation's output without its gate
        (the sink lets the gates in; later nodes read the gated state)."""
        states, outputs = [x], []
        for number, node in enumerate(self, start=1):
            candidates = self.space.candidate_inputs(number)
            input_weights = weights.inputs[number - 1]
            h = sum(input_weights[j] * states[candidates[j]] for j in weights.active_inputs[number - 1])
            active, op_weights = weights.active_ops[number - 1], None if weights.sampled else weights.ops[number - 1]
            if self.recompute and torch.is_grad_enabled():
                parameters = dict(node.named_parameters())  # the tensors in use now (the virtual ones inside functional_call)
                outputs.append(checkpoint(self._node, node, h, op_weights, active, parameters, use_reentrant=False))
            else:
                outputs.append(self._node(node, h, op_weights, active))
            states.append(weights.ops[number - 1, active[0]] * outputs[-1] if weights.sampled else outputs[-1])
        return outputs

    def _node(self, node: MixedOp, h: Tensor, op_weights: Tensor | None, active: Sequence[int],
              parameters: dict[str, Tensor] | None = None) -> Tensor:
        def mix(z: Tensor) -> Tensor:
            return node(z, op_weights, active) if parameters is None else functional_call(node, parameters, (z, op_weights, active))

        if self.partial_channels == 1:
            return mix(h)
        kept = h.shape[1] // self.partial_channels
        return channel_shuffle(torch.cat([mix(h[:, :kept]), h[:, kept:]], dim=1), self.partial_channels)


class MixedCell(nn.Module):
    """The discrete cell's structure with every decision relaxed; the same sink and residual, the
    sink's scale starting at ``sink_scale`` (0: the identity, as a discrete cell starts).

    The mixing weights are an argument: ``cell(x, weights)``. Inside a :class:`Supernet` the
    backbone calls ``cell(x)``, and the cell uses the weights the supernet drew for the current
    forward (it binds them with :meth:`bind` for the duration of that forward only).

    ``partial_channels = k > 1`` is PC-DARTS (:class:`MixedNodes`); the input weights β play the
    part of PC-DARTS's edge normalisation. ``recompute=True`` runs each node again in backward
    instead of keeping its intermediates (:class:`MixedNodes`).
    """

    def __init__(self, space: SearchSpace, channels: int, partial_channels: int = 1, normalize: bool = False,
                 recompute: bool = False, sink_scale: float = 0.0) -> None:
        super().__init__()
        if partial_channels < 1 or channels % partial_channels:
            raise ConfigError(f"partial_channels = {partial_channels} must divide the {channels} channels")
        self.space, self.partial_channels, self.recompute = space, partial_channels, recompute
        self.nodes = MixedNodes(space, channels, partial_channels, normalize, recompute)
        self.sink = Sink(space.num_nodes, channels, sink_scale)
        self._bound: ArchWeights | None = None

    def bind(self, weights: ArchWeights | None) -> None:
        """The weights ``cell(x)`` uses until the next bind (None: none)."""
        self._bound = weights

    def forward(self, x: Tensor, weights: ArchWeights | None = None) -> Tensor:  # (N, C, T, H, W)
        weights = weights if weights is not None else self._bound
        if weights is None:
            raise RuntimeError("MixedCell got no mixing weights: call cell(x, weights), or run it inside a Supernet forward")
        outputs = self.nodes(x, weights)
        if weights.sampled:
            gates = [weights.ops[i, chosen] for i, (chosen,) in enumerate(weights.active_ops)]
            return x + gated_sink(self.sink, outputs, gates)
        return x + self.sink(outputs)


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
