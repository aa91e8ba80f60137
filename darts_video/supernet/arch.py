"""Architecture parameters α (which operation) and β (which input), one set per searched cell.

α has one logit per (node, candidate operation); β one logit per (node, candidate input). They
are registered parameters of their own module, shared by every insertion position, so
``state_dict()`` carries them and the weight and architecture optimisers get disjoint lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darts_video.space import SearchSpace

MODES = ("darts", "gdas", "pc")


@dataclass
class ArchWeights:
    """The mixing weights of one forward pass. ``sparse``: one-hot rows, only their entry runs."""

    ops: Tensor  # (K, num_ops)
    inputs: list[Tensor]  # node i: (len(candidate_inputs(i)),)
    sparse: bool


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

    def mixing_weights(self, mode: str, temperature: float = 1.0) -> ArchWeights:
        """DARTS and PC-DARTS mix with softmax; GDAS samples one operation and one input per node
        with the straight-through Gumbel-softmax (forward one-hot, backward the soft gradient)."""
        if mode in ("darts", "pc"):
            return ArchWeights(self.op_probabilities(), self.input_probabilities(), sparse=False)
        if mode == "gdas":
            ops = F.gumbel_softmax(self.alphas, tau=temperature, hard=True, dim=-1)
            inputs = [F.gumbel_softmax(beta, tau=temperature, hard=True, dim=-1) for beta in self.betas]
            return ArchWeights(ops, inputs, sparse=True)
        raise ValueError(f"unknown search mode {mode!r}; expected one of {MODES}")
