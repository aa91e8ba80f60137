"""The evidence experiment: does the search find better cells than chance, the bare backbone and
non-local blocks? Every arm is retrained with one recipe, budget and set of insertion points:

- ``bare`` and ``nonlocal``: the backbone alone and with non-local blocks, one run per seed;
- ``non_local cell``: the registered ``non_local`` genotype (the block's operation inside our
  cell), one run per seed: how much of a cell's result is the cell around its operation;
- ``random``: R cells drawn uniformly (and distinct) from the search space;
- ``searched``: the cells of S searches with independent seeds in the main mode, derived by
  each of ``selectors`` from the same trained supernets (the first is the main arm);
- one search per other mode of ``compare_modes`` (by default gdas and partial channels; darts
  second order on request), its cell derived by the first selector.

The search's own score of every random cell (the trained supernet's search-val accuracy with
only that cell's path active) is measured on each main search, for Kendall's τ against the
cells' retrained accuracy: does the proxy rank cells as retraining does?

Each search and each retraining is its own run directory, so an interrupted experiment re-run
with the same command skips what finished and resumes what did not. ``report.md`` /
``report.json`` / ``accuracy.png`` / ``alpha.png`` are written at the end (``darts_video.report``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from darts_video.backbones import create_backbone, list_backbones
from darts_video.cli import HelpFormatter
from darts_video.derive import compare_supported, load_search, select_cell, selection_batches, selector_cell_file, selector_cell_path
from darts_video.engine import RunDirectory, read_metrics
from darts_video.errors import ConfigError
from darts_video.genotype import Genotype
from darts_video.options import DataOptions, RunOptions, add_data_arguments, add_run_arguments, build_dataset
from darts_video.report import write_report
from darts_video.search import run_search
from darts_video.search_config import SearchConfig
from darts_video.space import CONNECTIONS, SearchSpace
from darts_video.supernet.select import SELECTORS, path_accuracy
from darts_video.train import run_training
from darts_video.train_config import TrainConfig
from darts_video.utils.files import atomic_write_text

SEARCH_MODES = {"gdas": ("gdas", 1), "darts-1st": ("darts", 1), "darts-2nd": ("darts", 2), "pc": ("pc", 1)}
NONLOCAL_CELL = "non_local"  # the registered genotype of the non-local block's operation

# --quick: every arm at a tiny budget, to check the pipeline end to end (minutes, meaningless numbers)
QUICK = {"seeds": 2, "random_cells": 3, "search_clips": 128, "search_epochs": 2, "search_warmup_epochs": 1, "num_clips": 128, "epochs": 1,
         "warmup_epochs": 0, "num_val_clips": 64, "batch_size": 16, "search_batch_size": 16, "selection_clips": 32,
         "shortlist": 2, "shortlist_epochs": 1, "test_clips": 1, "test_crops": 1}


@dataclass
class ExperimentConfig(DataOptions, RunOptions):
    out: str = "runs/experiment"
    val_annotations: str | None = None
    test_annotations: str | None = None
    backbone: str = "tiny"
    points: list[str] | None = None
    ops: list[str] = field(default_factory=lambda: ["*"])
    nodes: int = 3
    connections: str = "dense"
    seeds: int = 3
    random_cells: int = 8
    search_mode: str = "darts-1st"
    compare_modes: list[str] = field(default_factory=lambda: ["gdas", "pc"])
    selectors: list[str] = field(default_factory=lambda: list(SELECTORS))
    normalize_candidates: bool = SearchConfig.normalize_candidates
    search_clips: int = SearchConfig.num_clips
    search_epochs: int = SearchConfig.epochs
    search_warmup_epochs: int = SearchConfig.warmup_epochs
    search_batch_size: int = SearchConfig.batch_size
    selection_clips: int = SearchConfig.selection_clips
    shortlist: int = SearchConfig.shortlist
    shortlist_epochs: int = SearchConfig.shortlist_epochs
    epochs: int = TrainConfig.epochs
    warmup_epochs: int = TrainConfig.warmup_epochs
    num_val_clips: int = 800
    batch_size: int = 32
    test_clips: int = 10
    test_crops: int = 3
    long_range_classes: list[str] | None = None

    def __post_init__(self) -> None:
        self.check_data()
        self.check_run()
        for mode in [self.search_mode, *self.compare_modes]:
            if mode not in SEARCH_MODES:
                raise ConfigError(f"unknown search mode {mode!r}; expected one of {tuple(SEARCH_MODES)}")
        if self.seeds < 2 or self.random_cells < 2:
            raise ConfigError(f"--seeds ({self.seeds}) and --random-cells ({self.random_cells}) must be at least 2: the report gives a spread")
        unknown = [s for s in self.selectors if s not in SELECTORS]
        if not self.selectors or unknown:
            raise ConfigError(f"--selectors {self.selectors}: expected one or more of {SELECTORS}")
        if self.data == "synthetic" and self.search_batch_size > self.search_clips // 2:
            raise ConfigError(f"--search-batch-size {self.search_batch_size} is larger than a search half ({self.search_clips // 2} clips)")
        # the sub-configurations check everything else now, before anything runs
        self.space()
        self.train_config("check", self.seed, baseline="none")
        available = create_backbone(self.backbone).insertion_points()
        for point in self.points or ():
            if point not in available:
                raise ConfigError(f"{self.backbone} has no insertion point {point!r}; available: {', '.join(available)}")
        if self.long_range_classes:
            classes = build_dataset(self.search_config(self.search_mode, self.seed, "check"), "train")[1]
            unknown = [c for c in self.long_range_classes if c not in classes]
            if unknown:
                raise ConfigError(f"--long-range-classes {unknown} are not classes of the data; its classes: {', '.join(classes)}")

    def space(self) -> SearchSpace:
        return self.search_config(self.search_mode, 0, "check").space()

    def search_config(self, mode: str, seed: int, out: str) -> SearchConfig:
        search_mode, order = SEARCH_MODES[mode]
        return SearchConfig(**self._data_options(), num_clips=self.search_clips, out=out, device=self.device, amp=self.amp, seed=seed,
                            backbone=self.backbone, points=self.points, ops=self.ops, nodes=self.nodes, connections=self.connections,
                            mode=search_mode, order=order, epochs=self.search_epochs, warmup_epochs=self.search_warmup_epochs,
                            batch_size=self.search_batch_size, normalize_candidates=self.normalize_candidates,
                            selector=self.selectors[0], selection_clips=self.selection_clips, shortlist=self.shortlist,
                            shortlist_epochs=self.shortlist_epochs)

    def train_config(self, out: str, seed: int, genotype: str | None = None, baseline: str | None = None) -> TrainConfig:
        return TrainConfig(**self._data_options(), num_clips=self.num_clips, out=out, device=self.device, amp=self.amp, seed=seed,
                           val_annotations=self.val_annotations, test_annotations=self.test_annotations,
                           num_val_clips=self.num_val_clips, backbone=self.backbone, points=self.points, genotype=genotype,
                           baseline=baseline, epochs=self.epochs, warmup_epochs=self.warmup_epochs, batch_size=self.batch_size,
                           test_clips=self.test_clips, test_crops=self.test_crops, export=False)

    def _data_options(self) -> dict[str, Any]:
        names = [f.name for f in dataclasses.fields(DataOptions) if f.name != "num_clips"]
        return {name: getattr(self, name) for name in names}


def distinct_random_cells(space: SearchSpace, count: int, seed: int) -> list[Genotype]:
    """``count`` different cells, each drawn uniformly from ``space`` (a repeat is drawn again)."""
    if count > space.num_cells:
        raise ConfigError(f"{count} distinct random cells asked of a search space with {space.num_cells} cells")
    rng, cells = random.Random(seed), []
    while len(cells) < count:
        cell = space.sample(rng)
        if all(cell.nodes != other.nodes for other in cells):
            cells.append(cell)
    return cells


def run_experiment(config: ExperimentConfig) -> dict[str, Any]:
    """Run (or resume) every search and every retraining, then write the report; returns it."""
    root = RunDirectory(config.out, dataclasses.asdict(config), defaults=dataclasses.asdict(ExperimentConfig())).path
    searches = {}
    for seed in range(config.seed, config.seed + config.seeds):
        searches[f"{config.search_mode}-seed{seed}"] = _search(config, config.search_mode, seed, root)
    for mode in config.compare_modes:
        if mode != config.search_mode:
            searches[f"{mode}-seed{config.seed}"] = _search(config, mode, config.seed, root)

    cells = distinct_random_cells(config.space(), config.random_cells, config.seed)
    random_paths = []
    for number, cell in enumerate(cells, start=1):
        random_paths.append(root / "random_cells" / f"cell{number}.json")
        if not random_paths[-1].exists():
            cell.save(random_paths[-1])
    runs = []
    for seed in range(config.seed, config.seed + config.seeds):
        runs.append(_retrain(config, root, "bare", f"bare-seed{seed}", seed, baseline="none"))
        runs.append(_retrain(config, root, "nonlocal", f"nonlocal-seed{seed}", seed, baseline="nonlocal"))
        runs.append(_retrain(config, root, "non_local cell", f"non_local_cell-seed{seed}", seed, genotype=NONLOCAL_CELL))
    for number, path in enumerate(random_paths, start=1):
        runs.append(_retrain(config, root, "random", f"random-cell{number}", config.seed, genotype=str(path)))
    for name, search in searches.items():
        mode, seed = name.rsplit("-seed", 1)
        selectors = config.selectors if mode == config.search_mode else config.selectors[:1]
        for selector in selectors:
            genotype = search["genotype"] if selector == config.selectors[0] else _rederive(search, selector)
            group = f"searched ({mode})" if selector == config.selectors[0] else f"searched ({mode}, {selector})"
            suffix = "" if selector == config.selectors[0] else f"-{selector}"
            runs.append(_retrain(config, root, group, f"searched-{name}{suffix}", int(seed), genotype=genotype) | {"search": name})
    for search in searches.values():
        if search["mode"] == config.search_mode:
            rederived = Genotype.load(_rederive(search, config.selectors[0], subset=1))
            selected = Genotype.load(selector_cell_path(search["path"], config.selectors[0]))
            search["rederivation"] = compare_supported(selected, rederived).to_dict()
    proxy = {name: _path_scores(search, random_paths) for name, search in searches.items() if search["mode"] == config.search_mode}
    return write_report(root, config, searches, runs, proxy)


def _rederive(search: dict[str, Any], selector: str, subset: int = 0) -> str:
    """The cell ``selector`` derives from a finished search's supernet on ``subset`` of its
    search-val half (SEARCH/genotype_<selector>[_subset<N>].json)."""
    path = selector_cell_file(search["path"], selector, subset)
    if not path.exists():
        trained = load_search(Path(search["path"]) / "checkpoints" / "latest.pt", selector=selector)
        genotype, _ = select_cell(trained.config, trained.model, trained.classes, trained.val_indices,
                                  trained.config.provenance(trained.epoch), trained.gradients, subset)
        genotype.save(path)
    return str(path)


def _path_scores(search: dict[str, Any], cells: list[Path]) -> dict[str, float]:
    """The search's own score of each cell: its path's accuracy on the trained supernet, on the
    search's selection clips (cached in SEARCH/path_scores.json)."""
    cache = Path(search["path"]) / "path_scores.json"
    if cache.exists():
        return json.loads(cache.read_text())
    trained = load_search(Path(search["path"]) / "checkpoints" / "latest.pt")
    batches, _ = selection_batches(trained.config, trained.classes, trained.val_indices, torch.device("cpu"))
    scores = {path.stem: path_accuracy(trained.model, batches, Genotype.load(path)) for path in cells}
    atomic_write_text(cache, json.dumps(scores, indent=1) + "\n")
    return scores


def _search(config: ExperimentConfig, mode: str, seed: int, root: Path) -> dict[str, Any]:
    out = root / "searches" / f"{mode}-seed{seed}"
    if not (out / "summary.json").exists():
        print(f"\n=== search {out.name} ===")
        run_search(config.search_config(mode, seed, str(out)))
    metrics = read_metrics(out)
    summary = json.loads((out / "summary.json").read_text())
    shortlist = summary.get("shortlist")  # None: no shortlist (or a search of before it)
    selected = Genotype.load(selector_cell_path(out, config.selectors[0]))  # the supernet's decisions, whatever the shortlist chose
    return {
        "mode": mode, "seed": seed, "path": str(out), "genotype": str(out / "genotype.json"),
        # summed over epochs (so resumes count once), plus the selection and the shortlist
        "seconds": sum(m["time/data_s"] + m["time/compute_s"] for m in metrics) + summary["selection_seconds"]
        + (shortlist["seconds"] if shortlist else 0),
        "metrics": metrics, "decisions": [d.to_dict() for d in selected.evidence], "shortlist": shortlist,
        "cells_effect": summary.get("cells_effect"),  # None: a search of before it
    }


def _retrain(config: ExperimentConfig, root: Path, group: str, name: str, seed: int, **model: str) -> dict[str, Any]:
    out = root / "retrain" / name
    if not (out / "summary.json").exists():
        print(f"\n=== retrain {name} ===")
        run_training(config.train_config(str(out), seed, **model))
    summary = json.loads((out / "summary.json").read_text())
    return {"group": group, "name": name, "seed": seed, "path": str(out), "genotype": summary["architecture"]["genotype"],
            "test": summary["test"], "cost": summary["cost"], "last_val_top1": read_metrics(out)[-1]["accuracy/val_top1"]}


def build_parser() -> argparse.ArgumentParser:
    defaults = ExperimentConfig()
    parser = argparse.ArgumentParser(
        description="Searched cells against the bare backbone, non-local blocks and random cells of the same space, "
        "all retrained alike; with the search modes compared. With no arguments: the built-in dataset on CPU, about 105 "
        "minutes on 2 cores (measured: 5 searches of 2.7-7.4 min with the earlier 4-epoch shortlists, 25 retrainings of about 2; "
        "the 12-epoch shortlist adds about 3 min per search, estimated from its cell-epochs). Re-run the same command to resume.",
        formatter_class=HelpFormatter,
    )
    data = add_data_arguments(parser, defaults)
    data.add_argument("--val-annotations", help="validation and test videos of the retraining (needed for real data; default: none)")
    data.add_argument("--test-annotations", help="videos of the retrainings' final test (default: --val-annotations)")
    data.add_argument("--num-val-clips", type=int, default=defaults.num_val_clips, help="procedural validation and test clips")
    data.add_argument("--long-range-classes", nargs="+", metavar="CLASS",
                      help="classes reported one by one (default on the built-in dataset: its spatial, temporal and space-time pairs)")
    model = parser.add_argument_group("model and search space")
    model.add_argument("--backbone", choices=list_backbones(), default=defaults.backbone, help="the network every arm uses")
    model.add_argument("--points", nargs="+", help="insertion points, the same for every arm (default: the backbone's)")
    model.add_argument("--ops", nargs="+", default=defaults.ops, metavar="PATTERN", help="candidate operations, shell-style patterns")
    model.add_argument("--nodes", type=int, default=defaults.nodes, help="operation nodes per cell, K")
    model.add_argument("--connections", choices=tuple(CONNECTIONS), default=defaults.connections, help="which earlier states a node may read")
    arms = parser.add_argument_group("arms and budgets")
    arms.add_argument("--seeds", type=int, default=defaults.seeds, help="searches in the main mode; retrainings of each baseline")
    arms.add_argument("--random-cells", type=int, default=defaults.random_cells, help="cells drawn uniformly from the space, retrained alike")
    arms.add_argument("--search-mode", choices=tuple(SEARCH_MODES), default=defaults.search_mode, help="the main arm's search")
    arms.add_argument("--compare-modes", nargs="*", choices=tuple(SEARCH_MODES), default=defaults.compare_modes,
                      help="one more search (first seed) per mode, for the mode comparison")
    arms.add_argument("--selectors", nargs="+", choices=SELECTORS, default=defaults.selectors,
                      help="how the main searches' cells are derived, each retrained (the first: the main arm, and the other modes')")
    arms.add_argument("--normalize-candidates", action="store_true", help="the searches normalise candidate outputs (see search_supernet.py)")
    arms.add_argument("--selection-clips", type=int, default=defaults.selection_clips, help="search-val clips each search selects on")
    arms.add_argument("--shortlist", type=int, default=defaults.shortlist,
                      help="cells each search trains briefly to choose its final one (0: the selector's cell; see search_supernet.py)")
    arms.add_argument("--shortlist-epochs", type=int, default=defaults.shortlist_epochs, help="passes per shortlisted cell")
    arms.add_argument("--search-clips", type=int, default=defaults.search_clips, help="clips of each search (split in halves)")
    arms.add_argument("--search-epochs", type=int, default=defaults.search_epochs, help="epochs of each search")
    arms.add_argument("--search-warmup-epochs", type=int, default=defaults.search_warmup_epochs, help="search epochs with α and β frozen")
    arms.add_argument("--search-batch-size", type=int, default=defaults.search_batch_size, help="batch of each search, per half")
    arms.add_argument("--epochs", type=int, default=defaults.epochs, help="retraining epochs of every arm (--num-clips clips each)")
    arms.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs, help="retraining learning-rate warm-up")
    arms.add_argument("--batch-size", type=int, default=defaults.batch_size, help="retraining batch of every arm")
    arms.add_argument("--test-clips", type=int, default=defaults.test_clips, help="clips per video in the final tests (real videos)")
    arms.add_argument("--test-crops", type=int, default=defaults.test_crops, help="spatial crops per clip (1 or 3)")
    arms.add_argument("--quick", action="store_true",
                      help="every arm at a tiny budget (new defaults; options given beside it still apply): a smoke test in minutes")
    add_run_arguments(parser, defaults)
    return parser


def parse_config(argv: Sequence[str] | None = None) -> ExperimentConfig:
    """The experiment the command line asks for; ``--quick`` changes the defaults only, so that
    options given beside it still apply."""
    parser = build_parser()
    if parser.parse_known_args(argv)[0].quick:
        parser.set_defaults(**QUICK, out="runs/experiment_quick")
    options = vars(parser.parse_args(argv))
    options.pop("quick")
    return ExperimentConfig(**options)
