"""Everything a search run is configured by, and its command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, ClassVar

from darts_video.backbones import list_backbones
from darts_video.cli import HelpFormatter
from darts_video.errors import ConfigError
from darts_video.ops import OpConfig
from darts_video.options import DataOptions, PretrainedOptions, RunOptions, add_data_arguments, add_pretrained_arguments, add_run_arguments
from darts_video.shortlist import LATER_ROUNDS, PROPOSAL_POOLS, SHORTLIST_SCORES
from darts_video.space import CONNECTIONS, SearchSpace
from darts_video.supernet import MODES
from darts_video.supernet.select import SELECTORS

# The weights' optimiser and its defaults (learning rate, weight decay). AdamW is the default: the
# mixture scales every candidate's gradient by its weight (about 1 / number of candidates), which
# SGD's fixed step does not undo and Adam's per-parameter normalisation does (docs/experiment.md).
WEIGHT_OPTIMIZERS = {"adamw": (3e-3, 1e-4), "sgd": (0.05, 3e-4)}


@dataclass
class SearchConfig(DataOptions, RunOptions, PretrainedOptions):
    out: str = "runs/search"
    num_clips: int = 2000
    backbone: str = "tiny"
    points: list[str] | None = None
    ops: list[str] = field(default_factory=lambda: ["*"])
    nodes: int = 3
    connections: str = "dense"
    reduction: int = 2
    heads: int = 1
    mode: str = "darts"
    order: int = 1
    partial_channels: int = 4
    normalize_candidates: bool = False
    sink_scale: float = 0.0  # 1 (open) was measured and not taken: docs/selection.md, "Open cells in the supernet"
    epochs: int = 8
    warmup_epochs: int = 3
    batch_size: int = 16
    optimizer: str = "adamw"
    lr: float | None = None
    arch_lr: float = 1e-2
    beta_decay: float = 0.0
    tau_max: float = 10.0
    tau_min: float = 0.1
    selector: str = "perturbation"
    selection_clips: int = 128  # docs/selection.md: 128 kept every supported decision of 256, at half the cost
    # cells trained briefly to choose the final one (0: the selector's cell): 6 cells, each closed for 12 epochs, one round
    # (docs/selection.md: "The shortlist by default", "Six cells, not eight", "Closed and longer")
    shortlist: int = 6
    shortlist_pool: int = 64
    shortlist_pool_from: str = "evidence"  # only cells the selection's evidence does not rule out; or space (docs/selection.md, "Proposals the evidence allows")
    shortlist_epochs: int = 12
    shortlist_clips: int = 512
    shortlist_score: str = "accuracy"
    shortlist_rounds: int = 1  # more: successive halving while the choice is not beyond noise (docs/selection.md, "Racing")
    shortlist_later: str = "race"  # or explore: new proposals in the later rounds (docs/selection.md, "Exploring")
    shortlist_sink_scale: float = 0.0  # closed, as the retraining starts; 1: open, the 4-epoch default before (docs/selection.md)
    recompute: bool = False
    # RunOptions: searches of before these options trained their shortlists open and drew their pools from the whole space
    OLD_RUN_OPTIONS: ClassVar[dict[str, Any]] = {"shortlist_sink_scale": 1.0, "shortlist_pool_from": "space"}

    def __post_init__(self) -> None:
        self.check_data()
        self.check_run()
        if self.optimizer not in WEIGHT_OPTIMIZERS:
            raise ConfigError(f"unknown --optimizer {self.optimizer!r}; expected one of {tuple(WEIGHT_OPTIMIZERS)}")
        if self.lr is None:
            self.lr = WEIGHT_OPTIMIZERS[self.optimizer][0]
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"--warmup-epochs {self.warmup_epochs} must be at least 0 and below --epochs {self.epochs}")
        for name in ("sink_scale", "shortlist_sink_scale"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} must be 0 (closed: the identity) or more")
        if self.selector not in SELECTORS:
            raise ConfigError(f"unknown --selector {self.selector!r}; expected one of {SELECTORS}")
        if self.shortlist < 0 or self.shortlist_pool < 1:
            raise ConfigError(f"--shortlist {self.shortlist} and --shortlist-pool {self.shortlist_pool}: expected 0 or more cells from a pool of 1 or more")
        if self.shortlist_score not in SHORTLIST_SCORES:
            raise ConfigError(f"unknown --shortlist-score {self.shortlist_score!r}; expected one of {SHORTLIST_SCORES}")
        if self.shortlist_pool_from not in PROPOSAL_POOLS:
            raise ConfigError(f"unknown --shortlist-pool-from {self.shortlist_pool_from!r}; expected one of {PROPOSAL_POOLS}")
        if self.shortlist_later not in LATER_ROUNDS:
            raise ConfigError(f"unknown --shortlist-later {self.shortlist_later!r}; expected one of {LATER_ROUNDS}")
        for name in ("epochs", "batch_size", "selection_clips", "shortlist_epochs", "shortlist_clips", "shortlist_rounds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")

    def space(self) -> SearchSpace:
        """The search space these options describe (also for re-deriving from a run's config.json)."""
        return SearchSpace.from_patterns(self.ops, num_nodes=self.nodes, connections=self.connections,
                                         op_config=OpConfig(self.reduction, self.heads))

    def provenance(self, epoch: int) -> dict:
        """What a genotype derived after ``epoch`` records about the search that produced it."""
        return {"dataset": self.data, "backbone": self.backbone, "seed": self.seed, "epoch": epoch, "mode": self.mode, "order": self.order,
                "normalize_candidates": self.normalize_candidates}


def build_parser() -> argparse.ArgumentParser:
    defaults = SearchConfig()
    parser = argparse.ArgumentParser(
        description="Search an attention cell with a differentiable supernet. With no arguments: the built-in "
        "procedural dataset and the tiny backbone, on CPU, in a few minutes.",
        formatter_class=HelpFormatter,
    )
    add_data_arguments(parser, defaults)
    model = parser.add_argument_group("model and search space")
    model.add_argument("--backbone", choices=list_backbones(), default=defaults.backbone, help="the network the cells go into")
    model.add_argument("--points", nargs="+", help="insertion points (default: the backbone's)")
    model.add_argument("--ops", nargs="+", default=defaults.ops, metavar="PATTERN", help="candidate operations, shell-style patterns")
    model.add_argument("--nodes", type=int, default=defaults.nodes, help="operation nodes per cell, K")
    model.add_argument("--connections", choices=tuple(CONNECTIONS), default=defaults.connections, help="which earlier states a node may read")
    model.add_argument("--reduction", type=int, default=defaults.reduction, help="dot-product attention uses C // reduction channels")
    model.add_argument("--heads", type=int, default=defaults.heads, help="attention heads of dot-product operations")
    add_pretrained_arguments(model)
    search = parser.add_argument_group("search")
    search.add_argument("--mode", choices=MODES, default=defaults.mode, help="darts: full mixture; gdas: one sampled op per node; pc: partial channels")
    search.add_argument("--order", type=int, choices=(1, 2), default=defaults.order, help="first- or second-order architecture gradient")
    search.add_argument("--partial-channels", type=int, default=defaults.partial_channels, help="pc mode: mix 1/k of the channels")
    search.add_argument("--normalize-candidates", action="store_true",
                        help="affine-free BatchNorm after every candidate with weights: α is the only scale of its contribution")
    search.add_argument("--sink-scale", type=float, default=defaults.sink_scale, help="the scale the mixed cells' sink BatchNorm starts at (0: closed, each cell the identity; 1: open)")
    search.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the search-train half")
    search.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs, help="epochs with α and β frozen")
    search.add_argument("--batch-size", type=int, default=defaults.batch_size, help="clips per step and process, in each half")
    search.add_argument("--optimizer", choices=tuple(WEIGHT_OPTIMIZERS), default=defaults.optimizer, help="the weights' optimiser (cosine schedule)")
    search.add_argument("--lr", type=float, help="weight learning rate (default: " + ", ".join(f"{name} {lr:g}" for name, (lr, _) in WEIGHT_OPTIMIZERS.items()) + ")")
    search.add_argument("--arch-lr", type=float, default=defaults.arch_lr, help="α/β learning rate (Adam)")
    search.add_argument("--beta-decay", type=float, default=defaults.beta_decay, help="weight of the β-decay regulariser (0: off)")
    search.add_argument("--tau-max", type=float, default=defaults.tau_max, help="gdas: first Gumbel-softmax temperature")
    search.add_argument("--tau-min", type=float, default=defaults.tau_min, help="gdas: last temperature")
    select = parser.add_argument_group("selection of the final cell")
    select.add_argument("--selector", choices=SELECTORS, default=defaults.selector,
                        help="perturbation: the candidate whose removal costs the most search-val accuracy (DARTS-PT); argmax: α's")
    select.add_argument("--selection-clips", type=int, default=defaults.selection_clips, help="search-val clips the selection measures on (the perturbation selector's effects; for both selectors, the cells' effect)")
    select.add_argument("--shortlist", type=int, default=defaults.shortlist,
                        help="choose the final cell among this many, each trained briefly on the search-train half "
                        "from the search's starting weights (see --shortlist-sink-scale): the selector's cell and the cells whose supernet paths score best (0: the selector's cell, untrained)")
    select.add_argument("--shortlist-pool", type=int, default=defaults.shortlist_pool, help="cells drawn for the path scores (from where: --shortlist-pool-from)")
    select.add_argument("--shortlist-pool-from", choices=PROPOSAL_POOLS, default=defaults.shortlist_pool_from,
                        help="where the pool is drawn from: the whole space, or only the cells whose every operation and input "
                        "the perturbation selector's evidence does not rule out (the whole space where that evidence is unfounded: "
                        "the supernet does not use its cells, or another selector measured no effects)")
    select.add_argument("--shortlist-epochs", type=int, default=defaults.shortlist_epochs, help="passes over the search-train half per shortlisted cell")
    select.add_argument("--shortlist-clips", type=int, default=defaults.shortlist_clips, help="search-val clips the shortlisted cells are scored on")
    select.add_argument("--shortlist-score", choices=SHORTLIST_SCORES, default=defaults.shortlist_score,
                        help="what chooses among the shortlisted cells on those clips: accuracy, or the lowest cross-entropy")
    select.add_argument("--shortlist-rounds", type=int, default=defaults.shortlist_rounds,
                        help="while the best cell's margin is not beyond noise, the better half trains on, each round with "
                        "the first round's budget (successive halving), for at most this many rounds in all (1: no racing, the default)")
    select.add_argument("--shortlist-later", choices=LATER_ROUNDS, default=defaults.shortlist_later,
                        help="what a round after an undecided one trains: race (the better half trains on) or explore "
                        "(as many new proposals, for the first round's epochs; the best of all trained is chosen)")
    select.add_argument("--shortlist-sink-scale", type=float, default=defaults.shortlist_sink_scale,
                        help="the scale the shortlisted cells' sinks start at (0: closed, the identity, as the retraining starts "
                        "them; 1: open, their operations learn from the first step, which ranked cells worse: docs/selection.md)")
    memory = parser.add_argument_group("memory")
    memory.add_argument("--recompute", action="store_true", help="recompute the mixed cells' nodes in backward (torch.utils.checkpoint)")
    add_run_arguments(parser, defaults)
    return parser


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    return SearchConfig(**vars(args))
