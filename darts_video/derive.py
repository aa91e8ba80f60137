"""The cell a search ends with: its selector run on the trained supernet, with the evidence.

Used at the end of every search and by ``scripts/derive_genotype.py`` (which re-derives from any
search checkpoint, e.g. on another subset of the search-val half to check that the supported
decisions stay).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from darts_video.data import collate_clips
from darts_video.genotype import Decision, Genotype
from darts_video.options import build_dataset
from darts_video.search_config import SearchConfig
from darts_video.supernet import Supernet
from darts_video.supernet.select import Batch, GradientEvidence, select_argmax, select_by_perturbation


def selection_batches(config: SearchConfig, classes: list[str], val_indices: Sequence[int], device: torch.device,
                      subset: int = 0, batch_size: int = 32) -> tuple[list[Batch], list[str]]:
    """``config.selection_clips`` clips of the search-val half, normalised on ``device``, and the
    videos among them that failed to decode.

    They are evaluation views (centre clip and crop; on the built-in dataset, clips of its
    validation draws), so selection is deterministic; ``subset`` picks another random subset of
    the half (0 is the search's own)."""
    dataset, _, transform = build_dataset(config, "val", config.annotations, config.num_clips, classes=classes)
    chosen = list(val_indices)
    random.Random(f"selection-{config.seed}-{subset}").shuffle(chosen)
    chosen = chosen[: config.selection_clips]
    batches, failures = [], []
    for start in range(0, len(chosen), batch_size):
        batch = collate_clips([dataset[i] for i in chosen[start:start + batch_size]])
        failures += batch["failures"]
        if batch["video"] is not None:
            batches.append((transform.normalize(batch["video"].to(device)), batch["label"].to(device)))
    return batches, failures


def derive(
    config: SearchConfig,
    model: Supernet,
    batches: Sequence[Batch],
    provenance: dict[str, Any],
    gradients: GradientEvidence | None = None,
    tune: Callable[[], None] | None = None,
    on_decision: Callable[[Decision], None] | None = None,
) -> Genotype:
    """The genotype ``config.selector`` derives from ``model``; ``model.mask`` is restored after."""
    started, previous_mask = time.perf_counter(), model.mask
    try:
        if config.selector == "perturbation":
            nodes, decisions = select_by_perturbation(model, batches, tune, on_decision)
        else:
            nodes, decisions = select_argmax(model.arch, gradients)
    finally:
        model.mask = previous_mask
    space = model.space
    provenance = {**provenance, "search_space": space.to_dict(), "selection_seconds": round(time.perf_counter() - started, 1),
                  "selection_clips": sum(len(labels) for _, labels in batches) if config.selector == "perturbation" else 0}
    return Genotype(nodes, sink=tuple(range(1, space.num_nodes + 1)), op_config=space.op_config, provenance=provenance,
                    selector=config.selector, evidence=decisions)


def epoch_genotype(model: Supernet, provenance: dict[str, Any], gradients: GradientEvidence) -> Genotype:
    """The cell α ranks first after an epoch, with the gradients' support for each choice (cheap:
    what the epoch line and ``genotypes/epoch_NNN.json`` show while the search runs)."""
    nodes, decisions = select_argmax(model.arch, gradients)
    space = model.space
    return Genotype(nodes, sink=tuple(range(1, space.num_nodes + 1)), op_config=space.op_config,
                    provenance={**provenance, "search_space": space.to_dict()}, selector="argmax", evidence=decisions)


def format_decisions(genotype: Genotype) -> str:
    """One line per decision: the choice, its margin (± standard error) and whether it is supported."""
    lines = []
    for d in genotype.evidence:
        spread = f" ± {d.margin_stderr:.2f}" if d.margin_stderr is not None else ""
        unit = " points" if d.margin_stderr is not None else " (α)"
        flag = "supported" if d.supported else "NOT supported beyond noise"
        lines.append(f"  node {d.node} {d.kind}: {d.chosen} over {d.runner_up}, margin {d.margin:+.3f}{spread}{unit}: {flag}")
    return "\n".join(lines)
