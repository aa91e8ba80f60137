"""Everything a search run is configured by, its command line, and the data it trains on."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from darts_video.backbones import list_backbones
from darts_video.data import ClipSampling, ClipTransform, VideoClipDataset
from darts_video.data.annotations import read_class_folders, read_kinetics_csv, read_list_file, read_moments_csv
from darts_video.data.synthetic import CLASSES, SYNTHETIC_TRANSFORM, SyntheticVideoDataset
from darts_video.ops import OpConfig
from darts_video.space import CONNECTIONS, SearchSpace
from darts_video.supernet import MODES

DATA_SOURCES = ("synthetic", "list", "folders", "kinetics", "moments")
AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class SearchConfig:
    out: str = "runs/search"
    data: str = "synthetic"
    annotations: str | None = None
    video_root: str | None = None
    categories: str | None = None
    num_clips: int = 3000
    num_frames: int = 8
    sampling_rate: int = 8
    crop_size: int = 224
    backbone: str = "tiny"
    points: list[str] | None = None
    ops: list[str] = field(default_factory=lambda: ["*"])
    nodes: int = 3
    connections: str = "dense"
    reduction: int = 2
    heads: int = 1
    mode: str = "gdas"
    order: int = 1
    partial_channels: int = 4
    epochs: int = 12
    warmup_epochs: int = 3
    batch_size: int = 32
    lr: float = 0.05
    arch_lr: float = 3e-3
    beta_decay: float = 0.0
    tau_max: float = 10.0
    tau_min: float = 0.1
    device: str = "auto"
    amp: str = "off"
    seed: int = 0
    workers: int = 0
    max_bad_videos: float = 0.05

    def __post_init__(self) -> None:
        if self.data != "synthetic" and not self.annotations:
            raise ValueError(f"--data {self.data} needs --annotations (the list file, CSV or class-folder root)")
        if self.data in ("kinetics", "moments") and not self.video_root:
            raise ValueError(f"--data {self.data} needs --video-root")
        if self.data == "moments" and not self.categories:
            raise ValueError("--data moments needs --categories (moments_categories.txt)")
        if self.amp not in AMP_DTYPES:
            raise ValueError(f"unknown --amp {self.amp!r}; expected one of {tuple(AMP_DTYPES)}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"--warmup-epochs {self.warmup_epochs} must be at least 0 and below --epochs {self.epochs}")
        for name in ("epochs", "batch_size", "num_clips", "num_frames", "sampling_rate"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")

    def space(self) -> SearchSpace:
        """The search space these options describe (also for re-deriving from a run's config.json)."""
        return SearchSpace.from_patterns(self.ops, num_nodes=self.nodes, connections=self.connections,
                                         op_config=OpConfig(self.reduction, self.heads))

    def provenance(self, epoch: int) -> dict:
        """What a genotype derived after ``epoch`` records about the search that produced it."""
        return {"dataset": self.data, "backbone": self.backbone, "seed": self.seed, "epoch": epoch, "mode": self.mode, "order": self.order}

    def resolved_device(self) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"--device {self.device}: no CUDA device is available")
        return self.device


def build_training_data(config: SearchConfig) -> tuple[Dataset, list[str], ClipTransform]:
    """The training set the search splits into its two halves, its class names and transform."""
    if config.data == "synthetic":
        return SyntheticVideoDataset(config.num_clips, "train", config.seed, fresh_each_epoch=True), list(CLASSES), SYNTHETIC_TRANSFORM
    if config.data == "list":
        annotations = read_list_file(config.annotations, config.video_root)
    elif config.data == "folders":
        annotations = read_class_folders(config.annotations)
    elif config.data == "kinetics":
        annotations = read_kinetics_csv(config.annotations, config.video_root)
    else:
        annotations = read_moments_csv(config.annotations, config.video_root, config.categories)
    if annotations.missing:
        print(f"{len(annotations.missing)} annotated videos are not on disk, e.g. {annotations.missing[0]}")
    scale = round(config.crop_size * 8 / 7)
    transform = ClipTransform(crop_size=config.crop_size, train_scale=(scale, round(scale * 1.25)), test_scale=scale)
    dataset = VideoClipDataset(annotations.entries, annotations.classes, "train", ClipSampling(config.num_frames, config.sampling_rate), transform)
    return dataset, annotations.classes, transform


def build_parser() -> argparse.ArgumentParser:
    defaults = SearchConfig()
    parser = argparse.ArgumentParser(
        description="Search an attention cell with a differentiable supernet. With no arguments: the built-in "
        "procedural dataset and the tiny backbone, on CPU, in a few minutes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", choices=DATA_SOURCES, default=defaults.data, help="where the clips come from")
    data.add_argument("--annotations", help="list file ('path label'), class-folder root, Kinetics CSV or MiT trainingSet.csv")
    data.add_argument("--video-root", help="folder the annotations' videos are under (list files: path prefix)")
    data.add_argument("--categories", help="Moments in Time moments_categories.txt")
    data.add_argument("--num-clips", type=int, default=defaults.num_clips, help="procedural clips (split into the two search halves; new draws each epoch)")
    data.add_argument("--num-frames", type=int, default=defaults.num_frames, help="frames per clip (real videos)")
    data.add_argument("--sampling-rate", type=int, default=defaults.sampling_rate, help="frames between clip frames (real videos)")
    data.add_argument("--crop-size", type=int, default=defaults.crop_size, help="training crop (real videos)")
    model = parser.add_argument_group("model and search space")
    model.add_argument("--backbone", choices=list_backbones(), default=defaults.backbone)
    model.add_argument("--points", nargs="+", help="insertion points (default: the backbone's)")
    model.add_argument("--ops", nargs="+", default=defaults.ops, metavar="PATTERN", help="candidate operations, shell-style patterns")
    model.add_argument("--nodes", type=int, default=defaults.nodes, help="operation nodes per cell, K")
    model.add_argument("--connections", choices=tuple(CONNECTIONS), default=defaults.connections)
    model.add_argument("--reduction", type=int, default=defaults.reduction, help="dot-product attention uses C // reduction channels")
    model.add_argument("--heads", type=int, default=defaults.heads)
    search = parser.add_argument_group("search")
    search.add_argument("--mode", choices=MODES, default=defaults.mode, help="darts: full mixture; gdas: one sampled op per node; pc: partial channels")
    search.add_argument("--order", type=int, choices=(1, 2), default=defaults.order, help="first- or second-order architecture gradient")
    search.add_argument("--partial-channels", type=int, default=defaults.partial_channels, help="pc mode: mix 1/k of the channels")
    search.add_argument("--epochs", type=int, default=defaults.epochs)
    search.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs, help="epochs with α and β frozen")
    search.add_argument("--batch-size", type=int, default=defaults.batch_size)
    search.add_argument("--lr", type=float, default=defaults.lr, help="weight learning rate (SGD, cosine)")
    search.add_argument("--arch-lr", type=float, default=defaults.arch_lr, help="α/β learning rate (Adam)")
    search.add_argument("--beta-decay", type=float, default=defaults.beta_decay, help="weight of the β-decay regulariser (0: off)")
    search.add_argument("--tau-max", type=float, default=defaults.tau_max, help="gdas: first Gumbel-softmax temperature")
    search.add_argument("--tau-min", type=float, default=defaults.tau_min, help="gdas: last temperature")
    run = parser.add_argument_group("run")
    run.add_argument("--out", default=defaults.out, help="run directory; an existing one with the same options is resumed")
    run.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:1, ...")
    run.add_argument("--amp", choices=tuple(AMP_DTYPES), default=defaults.amp,
                     help="mixed precision for the weight steps (fp16 with a gradient scaler); architecture steps stay float32")
    run.add_argument("--seed", type=int, default=defaults.seed)
    run.add_argument("--workers", type=int, default=defaults.workers, help="DataLoader worker processes")
    run.add_argument("--max-bad-videos", type=float, default=defaults.max_bad_videos,
                     help="stop once more than this share of the videos failed to decode (they are skipped and listed until then)")
    return parser


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    return SearchConfig(**vars(args))
