"""Architecture parameters α (which operation) and β (which input), one set per searched cell.

α has one logit per (node, candidate operation); β one logit per (node, candidate input). They
are registered parameters of their own module, shared by every insertion position, so
``state_dict()`` carries them and the weight and architecture optimisers get disjoint lists.

A :class:`CandidateMask` switches candidates off (their weight is exactly 0 and they do not
run): the selectors remove a candidate to measure what it was worth, fix a decided node to its
choice, or keep only one cell's path to score that cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darts_video.errors import ConfigError
from darts_video.space import SearchSpace

MODES = ("darts", "gdas", "pc")


@dataclass(frozen=True)
class CandidateMask:
    """Which candidates each node may use: operation indices into ``space.ops`` and input states
    (0 = the cell input, j = node j). Every candidate is on in :meth:`full`."""

    ops: tuple[tuple[int, ...], ...]
    inputs: tuple[tuple[int, ...], ...]

    @classmethod
    def full(cls, space: SearchSpace) -> CandidateMask:
        nodes = range(1, space.num_nodes + 1)
        return cls(tuple(tuple(range(len(space.ops))) for _ in nodes), tuple(space.candidate_inputs(i) for i in nodes))

    def with_ops(self, node: int, ops: Sequence[int]) -> CandidateMask:
        """This mask with node ``node``'s (1-based) operations restricted to ``ops``."""
        return CandidateMask(_replace(self.ops, node - 1, tuple(ops)), self.inputs)

    def with_inputs(self, node: int, inputs: Sequence[int]) -> CandidateMask:
        return CandidateMask(self.ops, _replace(self.inputs, node - 1, tuple(inputs)))


def _replace(rows: tuple[tuple[int, ...], ...], index: int, row: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    if not row:
        raise ValueError(f"node {index + 1} would have no candidate left")
    return rows[:index] + (row,) + rows[index + 1:]


@dataclass
class ArchWeights:
    """The mixing weights of one forward pass.

    ``ops[i, k]`` weighs node i's operation k and ``inputs[i][j]`` its j-th candidate input;
    ``active_ops[i]`` / ``active_inputs[i]`` are the positions of the candidates that run (all
    others weigh exactly 0). ``sampled``: GDAS's one-hot draw, one candidate per node, whose unit
    gate carries α's straight-through gradient.
    """

    ops: Tensor  # (K, num_ops)
    inputs: list[Tensor]  # node i: (len(candidate_inputs(i)),)
    active_ops: tuple[tuple[int, ...], ...]
    active_inputs: tuple[tuple[int, ...], ...]  # positions in candidate_inputs(i)
    sampled: bool = False


class ArchitectureParameters(nn.Module):
    def __init__(self, space: SearchSpace, init_std: float = 1e-3) -> None:
        super().__init__()
        self.space = space
        self.alphas = nn.Parameter(init_std * torch.randn(space.num_nodes, len(space.ops)))
        self.betas = nn.ParameterList(
            nn.Parameter(init_std * torch.randn(len(space.candidate_inputs(i)))) for i in range(1, space.num_nodes + 1)
        )

    def op_probabilities(self) -> Tensor:  # (K, num_ops)
        return self.alphas.softmax(dim=-1)

    def input_probabilities(self) -> list[Tensor]:
        return [beta.softmax(dim=-1) for beta in self.betas]

    def mixing_weights(self, mode: str, temperature: float = 1.0, mask: CandidateMask | None = None,
                       generator: torch.Generator | None = None) -> ArchWeights:
        """DARTS and PC-DARTS mix with softmax; GDAS samples one operation and one input per node
        with the straight-through Gumbel-softmax (forward one-hot, backward the soft gradient),
        drawing from ``generator`` (the global one if None). Masked-off candidates weigh 0: the
        others' softmax is renormalised among themselves."""
        if mode not in MODES:
            raise ConfigError(f"unknown search mode {mode!r}; expected one of {MODES}")
        mask = mask or CandidateMask.full(self.space)
        op_logits = torch.stack([_masked(row, allowed) for row, allowed in zip(self.alphas, mask.ops)])
        input_positions = tuple(
            tuple(self.space.candidate_inputs(i + 1).index(j) for j in row) for i, row in enumerate(mask.inputs)
        )
        input_logits = [_masked(beta, allowed) for beta, allowed in zip(self.betas, input_positions)]
        if mode in ("darts", "pc"):
            return ArchWeights(op_logits.softmax(-1), [b.softmax(-1) for b in input_logits], mask.ops, input_positions)
        ops = _gumbel_one_hot(op_logits, temperature, generator)
        inputs = [_gumbel_one_hot(b, temperature, generator) for b in input_logits]
        chosen_ops = tuple((int(row.argmax()),) for row in ops)
        chosen_inputs = tuple((int(row.argmax()),) for row in inputs)
        return ArchWeights(ops, inputs, chosen_ops, chosen_inputs, sampled=True)


def _masked(logits: Tensor, allowed: Sequence[int]) -> Tensor:
    """One decision's logits (n,) with every position not ``allowed`` set to -inf."""
    if len(allowed) == len(logits):
        return logits
    keep = torch.zeros(len(logits), dtype=torch.bool)
    keep[list(allowed)] = True
    return logits.masked_fill(~keep.to(logits.device), float("-inf"))


def _gumbel_one_hot(logits: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    """``F.gumbel_softmax(hard=True)`` with the noise drawn on the CPU from ``generator`` (the
    global generator if None): a one-hot forward whose gradient is the softmax's at ``temperature``."""
    uniform = torch.rand(logits.shape, generator=generator).to(logits.device)
    gumbels = -torch.log(-torch.log(uniform.clamp(1e-10, 1.0 - 1e-7)))
    soft = ((logits + gumbels) / temperature).softmax(-1)
    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft
