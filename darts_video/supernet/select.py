"""Selectors: from a trained supernet to a discrete cell, every decision with its evidence.

- ``argmax``: each decision's most probable candidate under α / β (DARTS). Its evidence is the
  probability margin over the runner-up and whether the architecture gradients of the last epoch
  consistently favoured the choice (:class:`GradientEvidence`): α's magnitude alone is known not
  to reflect an operation's strength (Wang et al., "Rethinking architecture selection in
  differentiable NAS", ICLR 2021).
- ``perturbation``: DARTS-PT's selection. Node by node, each candidate still in play is removed
  from the trained supernet (its weight set to 0, the others renormalised) and the search-val
  accuracy lost is measured on the same clips; the candidate whose removal costs the most is
  chosen, the node is fixed to it, and the next node is decided on the supernet with that node
  discrete (optionally after a few weight steps, ``tune``). Effects are paired per clip, so the
  margin over the runner-up comes with a standard error; a choice is supported when the margin
  is above 0 beyond its 95 % interval (Student t over the clips).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from darts_video.genotype import Decision, Genotype, Node
from darts_video.space import SearchSpace
from darts_video.stats import mean_stderr, student_t_quantile
from darts_video.supernet.arch import ArchitectureParameters, CandidateMask
from darts_video.supernet.supernet import Supernet

SELECTORS = ("perturbation", "argmax")
SUPPORT_LEVEL = 0.975  # a margin is supported when above 0 by the two-sided 95 % Student-t bound

Batch = tuple[Tensor, Tensor]  # clips (N, C, T, H, W) on the model's device, labels (N,)
Metric = Callable[[Tensor, Tensor], Tensor]  # (outputs, targets) -> per-clip score (N,), higher is better


def correct(logits: Tensor, labels: Tensor) -> Tensor:
    """1 for each clip classified correctly, else 0: the perturbation selector's default score."""
    return (logits.argmax(1) == labels).double()


class GradientEvidence:
    """Running sums of the architecture gradients of α's rows over one epoch of architecture steps.

    For two candidates w, r of a node, the mean of g_r − g_w over the steps says whether the
    search-val loss kept pushing α_w above α_r (Adam steps against the gradient), and its standard
    error says whether that push is beyond the noise of single batches. Sums of g and g gᵀ per
    node suffice for every pair, so the record stays small at any epoch length.
    """

    def __init__(self, num_nodes: int, num_ops: int) -> None:
        self.count = 0
        self.sum = torch.zeros(num_nodes, num_ops, dtype=torch.float64)
        self.outer = torch.zeros(num_nodes, num_ops, num_ops, dtype=torch.float64)

    def add(self, alpha_grad: Tensor) -> None:  # (K, num_ops)
        g = alpha_grad.detach().double().cpu()
        self.count += 1
        self.sum += g
        self.outer += g.unsqueeze(-1) * g.unsqueeze(-2)

    def preference(self, node: int, chosen: int, other: int) -> tuple[float, float]:
        """Mean and standard error of g_other − g_chosen at node ``node`` (1-based): positive
        when the gradients favour ``chosen``."""
        n = self.count
        if n < 2:
            return 0.0, math.inf
        row, outer = self.sum[node - 1] / n, self.outer[node - 1] / n
        mean = float(row[other] - row[chosen])
        second = float(outer[other, other] + outer[chosen, chosen] - 2 * outer[other, chosen])
        variance = max(0.0, second - mean**2) * n / (n - 1)
        return mean, math.sqrt(variance / n)

    def state_dict(self) -> dict:
        return {"count": self.count, "sum": self.sum, "outer": self.outer}

    def load_state_dict(self, state: dict) -> None:
        self.count, self.sum, self.outer = state["count"], state["sum"], state["outer"]


def select_argmax(arch: ArchitectureParameters, gradients: GradientEvidence | None = None) -> tuple[list[Node], list[Decision]]:
    """Node i takes its most probable operation and input. An operation choice is supported when
    the last epoch's gradients favoured it over the runner-up beyond their 95 % interval (Student t
    over the steps; never without gradients); an input choice by its probability alone is never called supported
    unless the node has a single candidate input."""
    space = arch.space
    op_probabilities = arch.op_probabilities().detach().cpu()
    input_probabilities = [p.detach().cpu() for p in arch.input_probabilities()]
    nodes, decisions = [], []
    for number in range(1, space.num_nodes + 1):
        probabilities = op_probabilities[number - 1]
        order = probabilities.argsort(descending=True).tolist()
        chosen, runner_up = order[0], order[1] if len(order) > 1 else None
        scores = {spec.name: {"alpha": round(float(p), 6)} for spec, p in zip(space.ops, probabilities)}
        supported = runner_up is None
        if gradients is not None and runner_up is not None:
            for k in order[1:]:
                mean, stderr = gradients.preference(number, chosen, k)
                scores[space.ops[k].name].update({"grad_preference": mean, "grad_preference_stderr": min(stderr, 1e30)})
            mean, stderr = gradients.preference(number, chosen, runner_up)
            supported = beyond_noise(mean, stderr, gradients.count)
        decisions.append(Decision(number, "op", space.ops[chosen].name, space.ops[runner_up].name if runner_up is not None else None,
                                  float(probabilities[chosen] - (probabilities[runner_up] if runner_up is not None else 0)),
                                  None, bool(supported), scores))
        candidates = space.candidate_inputs(number)
        inputs = input_probabilities[number - 1]
        source = candidates[int(inputs.argmax())]
        nodes.append(Node(source, space.ops[chosen]))
        if len(candidates) > 1:
            ranked = inputs.argsort(descending=True).tolist()
            decisions.append(Decision(number, "input", str(source), str(candidates[ranked[1]]),
                                      float(inputs[ranked[0]] - inputs[ranked[1]]), None, False,
                                      {str(j): {"beta": round(float(p), 6)} for j, p in zip(candidates, inputs)}))
    return nodes, decisions


@dataclass
class Perturbation:
    """What removing candidates costs, per clip: ``scores`` (N,) of the supernet as it stands and
    ``without[c]`` (N,) with candidate ``c`` removed."""

    scores: Tensor
    without: dict[int, Tensor]

    def effect(self, candidate: int) -> tuple[float, float]:
        """Score lost (for accuracy: points) when ``candidate`` is removed, and its standard error."""
        return _paired(self.scores, self.without[candidate])

    def margin(self, chosen: int, other: int) -> tuple[float, float]:
        """How much more removing ``chosen`` costs than removing ``other``, with its standard error."""
        return _paired(self.without[other], self.without[chosen])


@dataclass(frozen=True)
class CellsEffect:
    """Search-val score (for accuracy: points) the trained supernet loses when its cells are
    bypassed, paired per clip. Until it is above 0 beyond noise the network does not use its
    cells (on the built-in dataset: attention has not opened), and no decision about them can
    be founded: every candidate's removal then costs nothing, and α moves on noise."""

    points: float
    stderr: float
    clips: int

    @property
    def supported(self) -> bool:
        return beyond_noise(self.points, self.stderr, self.clips)

    def to_dict(self) -> dict[str, float | int | bool]:
        return {"points": self.points, "stderr": self.stderr, "clips": self.clips, "supported": self.supported}

    @classmethod
    def from_dict(cls, data: dict) -> CellsEffect:
        return cls(data["points"], data["stderr"], data["clips"])

    def describe(self) -> str:
        verdict = ("the supernet uses its cells" if self.supported else
                   "NOT beyond noise: the supernet does not use its cells yet, so no decision about them is founded")
        return f"cells' effect {self.points:+.1f} ± {self.stderr:.1f} points on {self.clips} search-val clips: {verdict}"


def cells_effect(net: Supernet, batches: Sequence[Batch], metric: Metric = correct) -> CellsEffect:
    """What the cells add to the supernet under its current mask: scores with them minus scores
    with every cell bypassed, on the same clips."""
    with_cells = per_clip_scores(net, batches, net.mask, metric)
    with net.cells_bypassed():
        without = per_clip_scores(net, batches, net.mask, metric)
    mean, stderr = _paired(with_cells, without)
    return CellsEffect(mean, stderr, len(with_cells))


def beyond_noise(mean: float, stderr: float, samples: int) -> bool:
    """Whether ``mean`` (of ``samples`` paired values) lies above 0 beyond its 95 % interval."""
    if samples < 2 or not math.isfinite(stderr):
        return False
    return mean > student_t_quantile(SUPPORT_LEVEL, samples - 1) * stderr


def _paired(a: Tensor, b: Tensor) -> tuple[float, float]:
    return mean_stderr((a - b).mul(100).tolist())


def select_by_perturbation(
    net: Supernet,
    batches: Sequence[Batch],
    tune: Callable[[], None] | None = None,
    on_decision: Callable[[Decision], None] | None = None,
    metric: Metric = correct,
) -> tuple[list[Node], list[Decision]]:
    """Decide node 1's operation, then its input, then node 2's, ... by perturbation (see the
    module docstring), scoring each clip with ``metric`` (default: correct or not). ``net.mask``
    ends with every node fixed to its choice; ``tune`` runs after each node is decided (e.g. a
    few weight steps under the new mask)."""
    space = net.space
    alphas = net.arch.op_probabilities().detach().cpu()
    betas = [p.detach().cpu() for p in net.arch.input_probabilities()]
    nodes, decisions = [], []
    for number in range(1, space.num_nodes + 1):
        op_candidates = net.mask.ops[number - 1]
        chosen_op, decision = _decide(
            net, batches, metric, op_candidates, lambda keep: net.mask.with_ops(number, keep), number, "op",
            names={k: space.ops[k].name for k in op_candidates}, alpha={k: float(alphas[number - 1, k]) for k in op_candidates})
        net.mask = net.mask.with_ops(number, [chosen_op])
        decisions.append(decision)
        if on_decision:
            on_decision(decision)
        input_candidates = net.mask.inputs[number - 1]
        positions = {j: space.candidate_inputs(number).index(j) for j in input_candidates}
        chosen_input = input_candidates[0]
        if len(input_candidates) > 1:
            chosen_input, decision = _decide(
                net, batches, metric, input_candidates, lambda keep: net.mask.with_inputs(number, keep), number, "input",
                names={j: str(j) for j in input_candidates}, alpha={j: float(betas[number - 1][positions[j]]) for j in input_candidates})
            net.mask = net.mask.with_inputs(number, [chosen_input])
            decisions.append(decision)
            if on_decision:
                on_decision(decision)
        nodes.append(Node(chosen_input, space.ops[chosen_op]))
        if tune is not None and number < space.num_nodes:
            tune()
    return nodes, decisions


def _decide(net: Supernet, batches: Sequence[Batch], metric: Metric, candidates: Sequence[int],
            without: Callable[[list[int]], CandidateMask], number: int, kind: str, names: dict[int, str],
            alpha: dict[int, float]) -> tuple[int, Decision]:
    clip_scores = per_clip_scores(net, batches, net.mask, metric)  # (N,)
    removed = {c: per_clip_scores(net, batches, without([o for o in candidates if o != c]), metric) for c in candidates}
    perturbation = Perturbation(clip_scores, removed)
    effects = {c: perturbation.effect(c) for c in candidates}
    order = sorted(candidates, key=lambda c: (-effects[c][0], -alpha[c]))  # ties: the more probable
    chosen, runner_up = order[0], order[1]
    margin, stderr = perturbation.margin(chosen, runner_up)
    key = "alpha" if kind == "op" else "beta"
    scores = {names[c]: {key: round(alpha[c], 6), "effect": effects[c][0], "effect_stderr": effects[c][1]} for c in candidates}
    supported = beyond_noise(margin, stderr, len(clip_scores))  # the clips are the samples
    return chosen, Decision(number, kind, names[chosen], names[runner_up], margin, stderr, bool(supported), scores)


@torch.no_grad()
def per_clip_scores(net: Supernet, batches: Sequence[Batch], mask: CandidateMask, metric: Metric = correct) -> Tensor:
    """(N,) float64: ``metric`` of each clip (default: correct or not) under the supernet, its
    candidates mixed by softmax under ``mask`` (a GDAS supernet too: the expectation of its draws
    is what α weighs).

    BatchNorm normalises with batch statistics, as in the weights' training (its running
    estimates were gathered with every candidate in: they would misjudge a perturbed network), and
    nothing the forward changes is kept; everything else (dropout) runs as in evaluation."""
    was_training = net.training
    net.eval()
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.train()
    try:
        with _buffers_restored(net):
            weights = net.arch.mixing_weights("darts", mask=mask)
            return torch.cat([metric(net(clips, weights), targets).double().cpu() for clips, targets in batches])
    finally:
        net.train(was_training)


def path_accuracy(net: Supernet, batches: Sequence[Batch], genotype: Genotype) -> float:
    """The search's own score of a cell: search-val accuracy of the trained supernet with only
    that cell's path active (every node fixed to the cell's operation and input)."""
    return 100 * per_clip_scores(net, batches, genotype_mask(net.space, genotype)).mean().item()


def genotype_mask(space: SearchSpace, genotype: Genotype) -> CandidateMask:
    space.check(genotype)
    mask = CandidateMask.full(space)
    for number, node in enumerate(genotype.nodes, start=1):
        mask = mask.with_ops(number, [space.ops.index(node.op)]).with_inputs(number, [node.input])
    return mask


@contextlib.contextmanager
def _buffers_restored(module: torch.nn.Module) -> Iterator[None]:
    saved = {name: buffer.clone() for name, buffer in module.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, buffer in module.named_buffers():
                buffer.copy_(saved[name])
