"""The shortlist: the trained supernet proposes a few cells, a short training of each decides.

On the built-in dataset the supernet's shared weights rank cells poorly: its path scores put the
experiment's eight random cells in the order of their retrained accuracy with Kendall's τ = +0.33
at best (seed 0), +0.07 in the other seeds. Eight epochs of each cell trained from scratch on the
search's own clips (about a minute per cell on 2 cores) ranked them with τ = +0.62 and put the one
cell past the 84 % plateau first (docs/selection.md). DARTS chose its final cell this way too: it
ran four searches and kept the cell with the best validation accuracy after a short training from
scratch (Liu et al., ICLR 2019, section 3.2). Here the proposals come from one supernet: the
selector's cell, then the cells whose paths the supernet scores best among ``pool`` cells drawn
from those its evidence does not rule out (``--shortlist-pool-from evidence``: at each decision,
the candidates whose removal cost less than the chosen one's beyond noise are left out; the whole
space where that evidence is unfounded, a supernet that does not use its cells or a selector that
measures no effects, or with ``space``). Drawn from the whole space,
most proposals held none of the operations the selection had found to matter, and on fresh seeds
none of them opened (docs/selection.md, "Proposals the evidence allows"). Each is trained on the
search-train half and scored on search-val clips; the margin of the best over the runner-up is
paired per clip, like every other decision's evidence.

A short training starts from the search's own starting weights (fresh, or ``--pretrained``) with
its cell **closed**, as the retraining starts it (the sink's BatchNorm scale at 0, the cell the
identity), and trains for 12 epochs. Closed, a cell's operations get no gradient until that
scale has grown, so four epochs mostly measured how far the backbone got (the experiment's eight
random cells ranked against their retrained accuracy with Kendall's τ = −0.25 / −0.42 / +0.55 on
search seeds 0-2). The shortlist then trained them **open** (scale 1) for 4 epochs, which ranked
them with τ = +0.50 / +0.50 / +0.36 on those seeds but −0.21 / +0.15 / +0.11 on fresh seeds 5-7,
where it left the best cell of the space shut. Closed for 12 epochs, the best cell opens and comes
first on all six seeds, τ +0.59 on average (docs/selection.md, "Closed and longer").
``--shortlist-sink-scale 1 --shortlist-epochs 4 --shortlist-rounds 3`` is the earlier default.

When the best cell's margin is not beyond noise and ``rounds`` is above 1, the shortlist races
(successive halving, Jamieson and Talwalkar, AISTATS 2016): the better half of the cells trains on,
each round with the same budget as the first (6 cells × 4 epochs, then 3 × 8 more, then 2 × 12
more), until a choice is supported or ``rounds`` have run. A cell continues from its weights with a
fresh optimiser and schedule (a warm restart); the cells dropped keep the scores of their last
round. Or it explores (``--shortlist-later explore``): each later round trains the supernet's next
proposals for the first round's epochs, and the best of every cell trained so far is chosen.

The trained cells are compared by accuracy. ``--shortlist-score loss`` compares their cross-entropy
instead (recorded for every candidate either way); on the open 4-epoch trainings it ranked those
cells with τ = +0.57 / +0.43 / −0.50 and would have chosen cells that retrained 11 and 18 points
lower in two of the three default searches (docs/selection.md, "Choosing by cross-entropy"); on
the closed 12-epoch ones it ranked them better than accuracy (τ +0.68 on average), measured after
the choice by accuracy had been kept.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from darts_video.backbones.pretrained import Pretrained
from darts_video.cell import Sink
from darts_video.engine import weight_step
from darts_video.engine.loop import EpochMeter, TrainingRun
from darts_video.engine.optim import create_schedule, create_weight_optimizer
from darts_video.genotype import Decision, Genotype
from darts_video.models import create_model
from darts_video.space import Choices, SearchSpace
from darts_video.stats import mean_stderr
from darts_video.supernet.select import Batch, CellsEffect, beyond_noise, correct, path_accuracy
from darts_video.supernet.supernet import Supernet
from darts_video.train_config import TrainConfig

SHORTLIST_SCORES = ("accuracy", "loss")  # what decides among the trained candidates (docs/selection.md)
PROPOSAL_POOLS = ("space", "evidence")  # where the proposals are drawn from (docs/selection.md, "Proposals the evidence allows")
LATER_ROUNDS = ("race", "explore")  # what a round after an undecided one trains (docs/selection.md, "Exploring")
_RECIPE = TrainConfig()  # the retraining's optimiser, learning rate, weight decay and warm-up
_EPOCH_OFFSET = 1_000_000  # the short trainings draw other sampler orders than the search's epochs


@dataclass(frozen=True)
class Candidate:
    """A proposed cell, who proposed it, the supernet's score of its path and, once trained (for
    ``epochs`` epochs), whether it classified each shortlist clip correctly and its cross-entropy
    there (N,) each."""

    genotype: Genotype
    proposed_by: str
    path_score: float
    scores: Tensor | None = None
    losses: Tensor | None = None
    epochs: int = 0

    @property
    def accuracy(self) -> float:
        return 100 * self.scores.mean().item()

    @property
    def loss(self) -> float:
        return self.losses.mean().item()

    def to_dict(self) -> dict[str, Any]:
        return {"cell": _cell_text(self.genotype), "proposed_by": self.proposed_by, "path_score": self.path_score,
                "accuracy": self.accuracy if self.scores is not None else None,
                "loss": self.loss if self.losses is not None else None, "epochs": self.epochs}


def ruled_out(decision: Decision, clips: int) -> set[str]:
    """The candidates of a perturbation ``decision`` whose effect is below the chosen one's beyond
    noise (95 %, Student t over ``clips``); a candidate it did not measure is not ruled out. The
    two effects' standard errors are combined as if independent (the per-clip differences are not
    kept); measured on the same clips they are typically correlated positively, so fewer are ruled
    out than a paired test would: a decision marked supported by its paired margin can still leave
    its runner-up in."""
    chosen = decision.scores[decision.chosen]
    return {name for name, score in decision.scores.items()
            if beyond_noise(chosen["effect"] - score["effect"], math.hypot(chosen["effect_stderr"], score["effect_stderr"]), clips)}


def evidence_choices(selected: Genotype, space: SearchSpace) -> list[Choices] | None:
    """Per node, the operations and inputs that ``selected``'s perturbation evidence does not
    rule out (:func:`ruled_out`): the supernet measured them worse than the chosen one, so the
    shortlist's few trainings go to the cells it could not tell apart. Every decision after node
    1's operation was measured with the earlier nodes fixed to the selector's choices, so the rule
    is exact for the selector's neighbourhood and a heuristic beyond it. None where there is no
    founded evidence: another selector's cell, or a supernet that does not use its cells (then
    every candidate's removal costs nothing and no decision rules anything out)."""
    effect = selected.provenance.get("cells_effect")
    if selected.selector != "perturbation" or effect is None or not CellsEffect.from_dict(effect).supported:
        return None
    choices = space.choices()
    for decision in selected.evidence:
        out, choice = ruled_out(decision, effect["clips"]), choices[decision.node - 1]
        if decision.kind == "op":
            choices[decision.node - 1] = replace(choice, ops=tuple(op for op in choice.ops if op.name not in out))
        else:
            choices[decision.node - 1] = replace(choice, inputs=tuple(j for j in choice.inputs if str(j) not in out))
    return choices


def propose(net: Supernet, batches: Sequence[Batch], selected: Genotype, count: int, pool: int, seed: int,
            *, draw_from: str) -> tuple[list[Candidate], dict[str, Any]]:
    """``selected`` and the ``count - 1`` cells of ``pool`` distinct draws whose paths score best
    on ``batches``, best first (ties: the earlier draw); and where they were drawn from. The
    draws come from the whole space, or (``draw_from="evidence"``) from the cells whose every
    decision the selection's evidence does not rule out (:func:`evidence_choices`; the whole
    space where it has none)."""
    if draw_from not in PROPOSAL_POOLS:
        raise ValueError(f"unknown proposal pool {draw_from!r}; expected one of {PROPOSAL_POOLS}")
    choices = evidence_choices(selected, net.space) if draw_from == "evidence" else None
    drawn_from = "evidence" if choices is not None else "space"
    choices = choices or net.space.choices()
    size = math.prod(choice.count for choice in choices)
    rng, drawn = random.Random(f"shortlist-{seed}"), []
    while len(drawn) < min(pool, size - 1):  # the selector's cell is one of them
        cell = net.space.sample(rng, choices)
        if cell.nodes != selected.nodes and all(cell.nodes != other.nodes for other in drawn):
            drawn.append(cell)
    scored = sorted(((path_accuracy(net, batches, cell), -i, cell) for i, cell in enumerate(drawn)), key=lambda t: t[:2], reverse=True)
    proposals = [Candidate(selected, selected.selector or "selector", path_accuracy(net, batches, selected))]
    pool_record = {"from": drawn_from, "cells": size, "drawn": len(drawn),
                   "choices": [{"ops": [op.name for op in c.ops], "inputs": list(c.inputs)} for c in choices] if drawn_from == "evidence" else None}
    return proposals + [Candidate(cell, "path score", score) for score, _, cell in scored[: count - 1]], pool_record


def shortlist_model(genotype: Genotype, backbone: str, num_classes: int, points: Sequence[str] | None, seed: int,
                    pretrained: Pretrained = False, pretrained_config: str | None = None, *, sink_scale: float) -> nn.Module:
    """The backbone with ``genotype``'s cell, from the search's starting weights, every sink's
    scale at ``sink_scale`` (1: open; 0: closed, the retraining's start): the same network on
    every rank for the same ``seed``."""
    torch.manual_seed(seed)
    model = create_model(backbone, num_classes, genotype, points=points, pretrained=pretrained, pretrained_config=pretrained_config)
    for module in model.modules():
        if isinstance(module, Sink):
            nn.init.constant_(module.norm.weight, sink_scale)
    return model


def train_briefly(model: nn.Module, loader, transform, run: TrainingRun, epochs: int, desc: str, first_epoch: int = 0) -> nn.Module:
    """``model`` (:func:`shortlist_model`) trained for ``epochs`` passes over ``loader`` with the
    retraining's recipe (AdamW, warm-up, cosine); in evaluation mode after. ``first_epoch``: the
    epochs it has trained already (a racing round continues it on the sampler's next orders)."""
    model = model.to(run.device)
    trained = DistributedDataParallel(model) if run.world_size > 1 else model
    optimizer = create_weight_optimizer(model, _RECIPE.optimizer, _RECIPE.lr, _RECIPE.weight_decay)
    loader.sampler.set_epoch(_EPOCH_OFFSET)  # whole epochs: a resumed search can leave the sampler part-way through its last one
    schedule = create_schedule(optimizer, epochs * len(loader), min(_RECIPE.warmup_epochs, epochs - 1) * len(loader))
    scaler, step = torch.amp.GradScaler(run.device.type, enabled=False), 0
    model.train()
    for epoch in range(epochs):
        loader.sampler.set_epoch(_EPOCH_OFFSET + first_epoch + epoch)
        for clips, labels in run.batches(loader, transform, EpochMeter(), f"{desc}, epoch {epoch + 1}/{epochs}"):
            schedule.step_update(step)
            weight_step(trained, clips, labels, optimizer, scaler, None, f"{desc}, step {step}")
            step += 1
    if run.world_size > 1:  # DDP averages the gradients; the running statistics of the last step are each rank's own
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)
    return model.eval()


@torch.no_grad()
def clip_scores(model: nn.Module, batches: Sequence[Batch]) -> tuple[Tensor, Tensor]:
    """(N,) float64 each: 1 for each clip ``model`` classifies correctly, and its cross-entropy."""
    scores, losses = [], []
    for clips, labels in batches:
        logits = model(clips).float()
        scores.append(correct(logits, labels).cpu())
        losses.append(F.cross_entropy(logits, labels, reduction="none").double().cpu())
    return torch.cat(scores), torch.cat(losses)


def _gain(candidate: Candidate, score: str) -> Tensor:
    """Per clip, what ``score`` maximises: correctness in points, or the negated cross-entropy."""
    return candidate.scores * 100 if score == "accuracy" else -candidate.losses


def halving_rounds(cells: int, epochs: int, rounds: int) -> list[tuple[int, int]]:
    """Successive halving's plan: per round, the cells that train and the epochs each trains in it.
    Round 1 trains all ``cells`` for ``epochs``; each later one the better half (at least 2) for
    as many epochs as keep the round's budget, cells × epochs, equal to the first's."""
    plan, kept = [(cells, epochs)], cells
    while len(plan) < rounds and cells > 1:
        kept = max(2, math.ceil(kept / 2))
        plan.append((kept, math.ceil(cells * epochs / kept)))
    return plan


def explore_rounds(cells: int, epochs: int, rounds: int, proposals: int) -> list[tuple[int, int]]:
    """Exploration's plan: each round trains ``cells`` new proposals for ``epochs``, while
    ``proposals`` last (the last round may train fewer)."""
    plan = []
    while len(plan) < rounds and proposals > 0:
        plan.append((min(cells, proposals), epochs))
        proposals -= cells
    return plan


def proposal_count(cells: int, rounds: int, later: str) -> int:
    """How many proposals a shortlist of ``cells`` per round needs: exploring trains new ones each round."""
    return cells * rounds if later == "explore" else cells


def round_plan(cells: int, epochs: int, rounds: int, later: str, proposals: int) -> list[tuple[int, int]]:
    """The shortlist's rounds for ``later`` (:data:`LATER_ROUNDS`): per round, the cells it trains
    and the epochs each trains in it; ``proposals``: how many cells the supernet proposed."""
    if later not in LATER_ROUNDS:
        raise ValueError(f"unknown later rounds {later!r}; expected one of {LATER_ROUNDS}")
    if later == "race":
        return halving_rounds(min(cells, proposals), epochs, rounds)
    return explore_rounds(cells, epochs, rounds, proposals)


def survivors(evidence: dict[str, Any], count: int) -> list[int]:
    """The indices of the ``count`` best candidates of ``evidence``'s round (:func:`decide`), best first."""
    return evidence["order"][:count]


def decide(candidates: Sequence[Candidate], score: str = "accuracy", among: Sequence[int] | None = None) -> tuple[int, dict[str, Any]]:
    """The index of the best trained candidate of ``among`` (default: all) by ``score``
    (``accuracy``: the most accurate; ``loss``: the lowest mean cross-entropy; ties: the earlier)
    and the evidence: every candidate, the order of ``among``, the margin over the runner-up
    (points, or nats of cross-entropy) with its paired standard error, supported when above 0
    beyond the 95 % Student-t bound over the clips."""
    if score not in SHORTLIST_SCORES:
        raise ValueError(f"unknown shortlist score {score!r}; expected one of {SHORTLIST_SCORES}")
    among = list(range(len(candidates))) if among is None else list(among)
    gains = {i: _gain(candidates[i], score) for i in among}
    order = sorted(among, key=lambda i: (-gains[i].mean().item(), i))
    chosen = order[0]
    evidence: dict[str, Any] = {"candidates": [c.to_dict() for c in candidates], "order": order, "chosen": chosen, "score": score,
                                "clips": len(candidates[chosen].scores)}
    if len(order) > 1:
        runner_up = order[1]
        margin, stderr = mean_stderr((gains[chosen] - gains[runner_up]).tolist())
        evidence |= {"runner_up": runner_up, "margin": margin, "margin_stderr": stderr,
                     "supported": beyond_noise(margin, stderr, len(candidates[chosen].scores))}
    else:
        evidence |= {"runner_up": None, "margin": None, "margin_stderr": None, "supported": True}
    return chosen, evidence


def describe(evidence: dict[str, Any]) -> str:
    """The shortlist as lines for the search's log."""
    score = evidence.get("score", "accuracy")  # searches of before the loss score chose by accuracy
    rounds = evidence.get("rounds", [])  # searches of before the racing rounds had one
    heading = f", round {len(rounds)}" if len(rounds) > 1 else ""
    lines = [f"  shortlist ({evidence['clips']} search-val clips after the short trainings{heading}, chosen by {score}):"]
    racing = set(evidence.get("order", range(len(evidence["candidates"]))))
    for i, c in enumerate(evidence["candidates"]):
        mark = "->" if i == evidence["chosen"] else "  " if i in racing else " x"  # x: dropped in an earlier round
        loss = f"  loss {c['loss']:.3f}" if c.get("loss") is not None else ""
        epochs = f"  {c['epochs']:2d} ep" if c.get("epochs") else ""
        lines.append(f"  {mark} {c['accuracy']:5.1f} %{loss}{epochs}  path score {c['path_score']:5.1f} %  ({c['proposed_by']}) {c['cell']}")
    if evidence["margin"] is not None:
        flag = "supported" if evidence["supported"] else "NOT supported beyond noise"
        lines.append(f"  margin over the runner-up {format_margin(evidence)}: {flag}")
    return "\n".join(lines)


def format_margin(evidence: dict[str, Any]) -> str:
    """The shortlist's margin over its runner-up with its standard error and unit."""
    if evidence.get("score", "accuracy") == "loss":
        return f"{evidence['margin']:+.3f} ± {evidence['margin_stderr']:.3f} nats"
    return f"{evidence['margin']:+.1f} ± {evidence['margin_stderr']:.1f} points"


def _cell_text(genotype: Genotype) -> str:
    return ", ".join(f"{node.op.name}({node.input})" for node in genotype.nodes)
