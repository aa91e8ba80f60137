"""Collapse diagnostics of a search: how decided each decision is, and how much of it is parameter-free.

Differentiable searches are known to collapse onto parameter-free operations (they train fastest
early on, so α favours them). Watching, per epoch, the entropy of every decision's distribution and
the probability on parameter-free operations shows whether and when that happens.
"""

from __future__ import annotations

import math

import torch

from darts_video.ops import create_op
from darts_video.space import SearchSpace


def parameter_free_ops(space: SearchSpace, channels: int = 16) -> list[bool]:
    """For each candidate of ``space.ops``: whether the operation has no weights (the identity).
    The operations are built on the meta device: no memory, and the random number stream that a
    resumed search restores is left untouched."""
    with torch.device("meta"):
        return [not any(True for _ in create_op(spec, channels, space.op_config).parameters()) for spec in space.ops]


def entropy(probabilities: torch.Tensor) -> float:
    """Shannon entropy in nats (0: decided; log(n): uniform over n)."""
    p = probabilities.detach().double().clamp_min(1e-12)
    return float(-(p * p.log()).sum())


def collapse_diagnostics(op_probabilities: torch.Tensor, input_probabilities: list[torch.Tensor], parameter_free: list[bool]) -> dict[str, float]:
    """Scalars named for TensorBoard: ``collapse/op_entropy/node1`` (and its ratio to the uniform
    entropy), ``collapse/input_entropy/node2``, ``collapse/parameter_free/node1`` (probability on
    parameter-free operations), and their means over nodes."""
    mask = torch.tensor(parameter_free, dtype=torch.bool)
    scalars: dict[str, float] = {}
    for number, row in enumerate(op_probabilities.detach().cpu(), start=1):
        scalars[f"collapse/op_entropy/node{number}"] = entropy(row)
        scalars[f"collapse/parameter_free/node{number}"] = float(row[mask].sum())
    for number, row in enumerate(input_probabilities, start=1):
        if len(row) > 1:
            scalars[f"collapse/input_entropy/node{number}"] = entropy(row.cpu())
    nodes, uniform = op_probabilities.shape[0], math.log(op_probabilities.shape[1])
    mean_entropy = sum(scalars[f"collapse/op_entropy/node{i}"] for i in range(1, nodes + 1)) / nodes
    scalars["collapse/op_entropy/mean_relative"] = mean_entropy / uniform if uniform > 0 else 0.0
    scalars["collapse/parameter_free/mean"] = sum(scalars[f"collapse/parameter_free/node{i}"] for i in range(1, nodes + 1)) / nodes
    return scalars
