"""Everything a retraining run is configured by, its command line, and the model it builds."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from darts_video.backbones import list_backbones
from darts_video.cli import HelpFormatter
from darts_video.engine.optim import OPTIMIZERS
from darts_video.errors import ConfigError
from darts_video.genotype import Genotype, get_genotype, named_genotypes
from darts_video.models import create_model
from darts_video.options import DataOptions, PretrainedOptions, RunOptions, add_data_arguments, add_pretrained_arguments, add_run_arguments

DEFAULT_SEARCH_GENOTYPE = Path("runs/search/genotype.json")  # where a default search leaves its cell
FALLBACK_GENOTYPE = "non_local"
BASELINES = ("none", "nonlocal")


@dataclass
class TrainConfig(DataOptions, RunOptions, PretrainedOptions):
    out: str = "runs/train"
    val_annotations: str | None = None
    test_annotations: str | None = None
    num_val_clips: int = 800
    backbone: str = "tiny"
    points: list[str] | None = None
    genotype: str | None = None
    baseline: str | None = None
    epochs: int = 12  # the attention path opens around epoch 6 (docs/retraining.md): 8 ended some runs before it converged
    warmup_epochs: int = 1
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    test_clips: int = 10
    test_crops: int = 3
    export: bool = True

    def __post_init__(self) -> None:
        self.check_data()
        self.check_run()
        if self.data != "synthetic" and not self.val_annotations:
            raise ConfigError(f"--data {self.data} needs --val-annotations (the videos to validate and test on)")
        if self.baseline is not None and self.baseline not in BASELINES:
            raise ConfigError(f"unknown --baseline {self.baseline!r}; expected one of {BASELINES}")
        if self.baseline is not None and self.genotype is not None:
            raise ConfigError("give --genotype or --baseline, not both: the baselines have no cell")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown --optimizer {self.optimizer!r}; expected one of {OPTIMIZERS}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"--warmup-epochs {self.warmup_epochs} must be at least 0 and below --epochs {self.epochs}")
        for name in ("epochs", "batch_size", "num_val_clips", "test_clips"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.test_crops not in (1, 3):
            raise ConfigError(f"--test-crops must be 1 or 3, got {self.test_crops}")

    def resolve_genotype(self) -> tuple[Genotype | None, str]:
        """The cell to retrain and where it came from: --genotype; else the latest default search;
        else the registered non-local cell. None for the baselines."""
        if self.baseline is not None:
            return None, f"baseline: {self.baseline}"
        if self.genotype is not None:
            return get_genotype(self.genotype), self.genotype
        if DEFAULT_SEARCH_GENOTYPE.is_file():
            return get_genotype(DEFAULT_SEARCH_GENOTYPE), f"{DEFAULT_SEARCH_GENOTYPE} (the latest default search)"
        return get_genotype(FALLBACK_GENOTYPE), f"{FALLBACK_GENOTYPE} (registered; no default search found at {DEFAULT_SEARCH_GENOTYPE})"


def architecture(config: TrainConfig, genotype: Genotype | None, num_classes: int) -> dict:
    """What the model is, as saved in its checkpoints: a checkpoint only loads into the same."""
    return {"backbone": config.backbone, "num_classes": num_classes, "points": config.points,
            "baseline": config.baseline, "genotype": genotype.to_dict() if genotype is not None else None}


def build_model(arch: dict, pretrained: bool | str = False, pretrained_config: str | None = None):
    genotype = Genotype.from_dict(arch["genotype"], "checkpoint architecture") if arch["genotype"] is not None else None
    return create_model(arch["backbone"], arch["num_classes"], genotype=genotype, baseline=arch["baseline"] or "none",
                        points=arch["points"], pretrained=pretrained, pretrained_config=pretrained_config)


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        description="Retrain a searched cell (or a baseline) inside a video backbone, then test it with several views "
        "per video. With no arguments: the built-in dataset, the tiny backbone and the latest default search's cell, on CPU.",
        formatter_class=HelpFormatter,
    )
    data = add_data_arguments(parser, defaults)
    data.add_argument("--val-annotations", help="validation videos (same format as --annotations); also the test set unless --test-annotations "
                      "(needed for real videos; default: none)")
    data.add_argument("--test-annotations", help="videos of the final multi-view test (default: --val-annotations)")
    data.add_argument("--num-val-clips", type=int, default=defaults.num_val_clips, help="procedural validation and test clips")
    model = parser.add_argument_group("model")
    model.add_argument("--backbone", choices=list_backbones(), default=defaults.backbone, help="the network to retrain")
    model.add_argument("--points", nargs="+", help="insertion points (default: the backbone's)")
    model.add_argument("--genotype", help=f"cell: a genotype JSON or a registered name ({', '.join(named_genotypes())}); "
                       f"default: {DEFAULT_SEARCH_GENOTYPE} if present, else {FALLBACK_GENOTYPE}")
    model.add_argument("--baseline", choices=BASELINES, help="instead of a cell: none (the bare backbone) or nonlocal blocks (default: a cell, see --genotype)")
    add_pretrained_arguments(model)
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the training set")
    optim.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs, help="linear learning-rate warm-up, then cosine")
    optim.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per process")
    optim.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer, help="sgd: momentum 0.9, as PySlowFast")
    optim.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate, after the warm-up")
    optim.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="decoupled (AdamW) or L2 (SGD) weight decay")
    test = parser.add_argument_group("test")
    test.add_argument("--test-clips", type=int, default=defaults.test_clips, help="clips per video in the multi-view test (real videos)")
    test.add_argument("--test-crops", type=int, default=defaults.test_crops, help="spatial crops per clip (1 or 3)")
    test.add_argument("--no-export", dest="export", action="store_false", help="skip the torch.export of the trained model (model.pt2)")
    test.add_argument("--eval-only", action="store_true", help="test a checkpoint instead of training")
    test.add_argument("--checkpoint", help="--eval-only: the checkpoint (default: RUN/checkpoints/latest.pt)")
    add_run_arguments(parser, defaults)
    return parser


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, bool, str | None]:
    """The configuration, whether to only evaluate, and the checkpoint to evaluate."""
    options = vars(args)
    eval_only, checkpoint = options.pop("eval_only"), options.pop("checkpoint")
    return TrainConfig(**options), eval_only, checkpoint
