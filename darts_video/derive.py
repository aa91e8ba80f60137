"""The cell a search ends with: its selector run on the trained supernet, with the evidence.

Used at the end of every search and by ``scripts/derive_genotype.py`` (which re-derives from any
search checkpoint, e.g. on another subset of the search-val half to check that the supported
decisions stay).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from darts_video.backbones import create_backbone
from darts_video.data import collate_clips, load_split, read_label_map
from darts_video.engine import CheckpointError, load_checkpoint, read_run_config
from darts_video.genotype import Decision, Genotype
from darts_video.options import build_dataset
from darts_video.search_config import SearchConfig
from darts_video.supernet import Supernet
from darts_video.supernet.select import Batch, CellsEffect, GradientEvidence, cells_effect, select_argmax, select_by_perturbation


@dataclass
class TrainedSearch:
    """A finished (or interrupted) search, rebuilt from its run directory."""

    config: SearchConfig
    model: Supernet
    classes: list[str]
    val_indices: list[int]
    gradients: GradientEvidence | None
    epoch: int  # epochs finished


def load_search(checkpoint: str | Path, device: torch.device | str = "cpu", **overrides: Any) -> TrainedSearch:
    """The supernet of ``checkpoint`` (RUN/checkpoints/*.pt) with the options of RUN/config.json,
    ``overrides`` replacing some (the selector, or data paths that moved)."""
    checkpoint = Path(checkpoint)
    run = checkpoint.resolve().parent.parent
    state = load_checkpoint(checkpoint)
    try:
        options = SearchConfig.OLD_RUN_OPTIONS | read_run_config(run) | overrides
        classes = read_label_map(run / "classes.txt")
        _, val_indices = load_split(run / "split.json")
    except OSError as error:
        raise CheckpointError(f"{checkpoint} is not inside a search run directory ({error.filename}: {error.strerror})") from error
    try:
        config = SearchConfig(**options)
    except TypeError as error:  # a field this version does not know
        raise CheckpointError(f"{run / 'config.json'} is not a search configuration of this darts_video: {error}") from error
    model = Supernet(create_backbone(config.backbone, num_classes=len(classes)), config.space(), config.points, config.mode,
                     config.partial_channels, config.normalize_candidates).to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise CheckpointError(f"{checkpoint} does not fit the supernet of {run / 'config.json'}: {error}") from error
    gradients = None
    if "alpha_gradients" in state:
        gradients = GradientEvidence(config.nodes, len(model.space.ops))
        gradients.load_state_dict(state["alpha_gradients"])
    return TrainedSearch(config, model, classes, val_indices, gradients, state["epoch"] + 1)


def selector_cell_file(run: str | Path, selector: str, subset: int = 0) -> Path:
    """RUN/genotype_<selector>[_subset<N>].json: a cell ``selector`` derived, kept beside the run's
    final RUN/genotype.json (by the shortlist, and by the experiment's re-derivations)."""
    return Path(run) / (f"genotype_{selector}" + (f"_subset{subset}" if subset else "") + ".json")


def selector_cell_path(run: str | Path, selector: str) -> Path:
    """Where a search keeps the cell its selector derived: RUN/genotype_<selector>.json when a
    shortlist chose the final cell among it and others, else RUN/genotype.json itself."""
    own = selector_cell_file(run, selector)
    return own if own.exists() else Path(run) / "genotype.json"


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


def select_cell(
    config: SearchConfig,
    model: Supernet,
    classes: list[str],
    val_indices: Sequence[int],
    provenance: dict[str, Any],
    gradients: GradientEvidence | None = None,
    subset: int = 0,
    on_decision: Callable[[Decision], None] | None = None,
    selection: tuple[list[Batch], list[str]] | None = None,
) -> tuple[Genotype, list[str]]:
    """The genotype ``config.selector`` derives from ``model`` (on ``subset`` of the search-val
    half for the perturbation selector), and the selection videos that failed to decode. Its
    provenance records the cells' effect on those clips (:func:`cells_effect`), whatever the selector.
    ``selection``: those clips and failures, if the caller has loaded them (:func:`selection_batches`).
    ``model.mask`` is as before afterwards."""
    started, previous_mask = time.perf_counter(), model.mask
    batches, failures = selection or selection_batches(config, classes, val_indices, next(model.parameters()).device, subset)
    effect = cells_effect(model, batches)
    try:
        if config.selector == "perturbation":
            nodes, decisions = select_by_perturbation(model, batches, on_decision=on_decision)
        else:
            nodes, decisions = select_argmax(model.arch, gradients)
    finally:
        model.mask = previous_mask
    space = model.space
    provenance = {**provenance, "search_space": space.to_dict(), "selection_seconds": round(time.perf_counter() - started, 1),
                  "selection_clips": sum(len(labels) for _, labels in batches), "selection_subset": subset,
                  "cells_effect": effect.to_dict()}
    genotype = Genotype(nodes, sink=tuple(range(1, space.num_nodes + 1)), op_config=space.op_config, provenance=provenance,
                        selector=config.selector, evidence=decisions)
    return genotype, failures


@dataclass(frozen=True)
class Rederivation:
    """A search's supported decisions against those of its cell re-derived on other clips (e.g.
    another subset of the search-val half): ``kept``, the same choice supported in both; ``lost``,
    supported in the search's cell only (another choice, or not beyond noise again); ``new``,
    supported only in the re-derivation. A search whose evidence is founded keeps all and adds none."""

    kept: tuple[str, ...]
    lost: tuple[str, ...]
    new: tuple[str, ...]

    @property
    def stable(self) -> bool:
        return not self.lost and not self.new

    def to_dict(self) -> dict[str, Any]:
        return {"kept": list(self.kept), "lost": list(self.lost), "new": list(self.new), "stable": self.stable}

    def describe(self) -> str:
        parts = [f"{len(self.kept)} kept"] + [f"{name}: {', '.join(items)}" for name, items in (("lost", self.lost), ("new", self.new)) if items]
        return "supported decisions on the other clips: " + "; ".join(parts) + (" (stable)" if self.stable else " (NOT stable)")


def compare_supported(reference: Genotype, rederived: Genotype) -> Rederivation:
    """Which of ``reference``'s supported decisions ``rederived`` makes again, and which it adds."""
    ours = {(d.node, d.kind): d for d in reference.evidence}
    theirs = {(d.node, d.kind): d for d in rederived.evidence}
    kept, lost = [], []
    for key, decision in ours.items():
        if not decision.supported:
            continue
        again = theirs.get(key)
        if _agree(decision, again):
            kept.append(_label(decision))
        else:
            verdict = "absent" if again is None else f"{again.chosen}, {'supported' if again.supported else 'not supported'}"
            lost.append(f"{_label(decision)} (re-derived: {verdict})")
    new = [_label(d) for key, d in theirs.items() if d.supported and not _agree(d, ours.get(key))]
    return Rederivation(tuple(kept), tuple(lost), tuple(new))


def _agree(decision: Decision, other: Decision | None) -> bool:
    """Both supported, with the same choice."""
    return other is not None and decision.supported and other.supported and decision.chosen == other.chosen


def _label(decision: Decision) -> str:
    return f"node {decision.node} {decision.kind} {decision.chosen}"


def epoch_genotype(model: Supernet, provenance: dict[str, Any], gradients: GradientEvidence) -> Genotype:
    """The cell α ranks first after an epoch, with the gradients' support for each choice (cheap:
    what the epoch line and ``genotypes/epoch_NNN.json`` show while the search runs)."""
    nodes, decisions = select_argmax(model.arch, gradients)
    space = model.space
    return Genotype(nodes, sink=tuple(range(1, space.num_nodes + 1)), op_config=space.op_config,
                    provenance={**provenance, "search_space": space.to_dict()}, selector="argmax", evidence=decisions)


def format_decisions(genotype: Genotype) -> str:
    """One line per decision: the choice, its margin (± standard error) and whether it is
    supported; first the cells' effect, where the selection measured it."""
    lines = [f"  {CellsEffect.from_dict(genotype.provenance['cells_effect']).describe()}"] if "cells_effect" in genotype.provenance else []
    for d in genotype.evidence:
        spread = f" ± {d.margin_stderr:.2f}" if d.margin_stderr is not None else ""
        unit = " points" if d.margin_stderr is not None else " (α)"
        flag = "supported" if d.supported else "NOT supported beyond noise"
        lines.append(f"  node {d.node} {d.kind}: {d.chosen} over {d.runner_up}, margin {d.margin:+.3f}{spread}{unit}: {flag}")
    return "\n".join(lines)
