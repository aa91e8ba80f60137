"""Options the search and the retraining share: where the clips come from, how a run runs, and
which pretrained weights the backbone starts from.

Both configurations inherit :class:`DataOptions`, :class:`RunOptions` and
:class:`PretrainedOptions` and add their own fields, and both command lines get the same
``data`` and ``run`` argument groups and ``--pretrained`` options from here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from darts_video.backbones.statistics import InputStatistics
from darts_video.data import ClipSampling, ClipTransform, VideoClipDataset
from darts_video.data.annotations import read_class_folders, read_kinetics_csv, read_list_file, read_moments_csv
from darts_video.data.synthetic import CLASSES, SYNTHETIC_TRANSFORM, SyntheticVideoDataset
from darts_video.errors import ConfigError

DATA_SOURCES = ("synthetic", "list", "folders", "kinetics", "moments")
AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class DataOptions:
    data: str = "synthetic"
    annotations: str | None = None
    video_root: str | None = None
    categories: str | None = None
    num_clips: int = 3000
    num_frames: int = 8
    sampling_rate: int = 8
    crop_size: int = 224
    test_crop_size: int | None = None  # None: crop_size
    target_fps: float | None = None
    video_index: str | None = None
    workers: int = 0
    max_bad_videos: float = 0.05
    mean: list[float] | None = None  # None: what the backbone's weights declare (resolve_statistics)
    std: list[float] | None = None

    def check_data(self) -> None:
        if self.data not in DATA_SOURCES:
            raise ConfigError(f"unknown --data {self.data!r}; expected one of {DATA_SOURCES}")
        if self.data != "synthetic" and not self.annotations:
            raise ConfigError(f"--data {self.data} needs --annotations (the list file, CSV or class-folder root)")
        if self.data in ("kinetics", "moments") and not self.video_root:
            raise ConfigError(f"--data {self.data} needs --video-root")
        if self.data == "moments" and not self.categories:
            raise ConfigError("--data moments needs --categories (moments_categories.txt)")
        for name in ("num_clips", "num_frames", "sampling_rate", "crop_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.test_crop_size is not None and self.test_crop_size < 1:
            raise ConfigError(f"--test-crop-size must be positive, got {self.test_crop_size}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise ConfigError(f"--target-fps must be positive, got {self.target_fps}")
        if self.data == "synthetic" and self.video_index is not None:
            raise ConfigError("--video-index indexes video files; the built-in dataset (--data synthetic) has none")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is not None and (len(values) != 3 or (name == "std" and min(values) <= 0)):
                raise ConfigError(f"--{name} takes 3 values (R G B){', all positive' if name == 'std' else ''}, got {values}")

    def resolve_statistics(self, declared: InputStatistics) -> None:
        """Standardise clips with ``declared`` (what the backbone's weights expect) unless
        --mean / --std were given; the resolved values land in config.json."""
        self.mean = list(declared.mean) if self.mean is None else self.mean
        self.std = list(declared.std) if self.std is None else self.std


@dataclass
class RunOptions:
    out: str = "runs/search"
    device: str = "auto"
    amp: str = "off"
    seed: int = 0
    checkpoint_every: int = 0  # steps; 0: at the end of each epoch only
    # what a run whose config.json lacks these options ran with, where that is not today's default
    # (the option was added, then its default changed); the others it lacks count as their defaults
    OLD_RUN_OPTIONS: ClassVar[dict[str, Any]] = {}

    def check_run(self) -> None:
        if self.amp not in AMP_DTYPES:
            raise ConfigError(f"unknown --amp {self.amp!r}; expected one of {tuple(AMP_DTYPES)}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"--checkpoint-every counts steps and must be 0 (off) or positive, got {self.checkpoint_every}")

    def resolved_device(self) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"--device {self.device}: no CUDA device is available")
        return self.device


@dataclass
class PretrainedOptions:
    pretrained: bool | str = False
    pretrained_config: str | None = None


def build_dataset(options: DataOptions, mode: str, annotations: str | None = None, num_clips: int | None = None,
                  num_test_clips: int = 10, classes: list[str] | None = None,
                  num_test_crops: int = 3) -> tuple[Dataset, list[str], ClipTransform]:
    """The clips of ``mode`` (train / val / test), their class names and transform.

    The built-in dataset draws ``num_clips`` procedural clips of that split (training clips are new
    every epoch; its test clips are single views); real videos come from ``annotations`` (default:
    ``options.annotations``), labelled by ``classes`` when given (the training set's, for
    validation and test), and are probed once into the frame index (``--video-index``: cached in
    that file, which one process writes under torchrun while the others wait for it).
    """
    if options.data == "synthetic":
        dataset = SyntheticVideoDataset(num_clips or options.num_clips, mode, options.seed, fresh_each_epoch=mode == "train")
        return dataset, list(CLASSES), _with_statistics(SYNTHETIC_TRANSFORM, options)
    annotations = annotations or options.annotations
    if options.data == "list":
        read = read_list_file(annotations, options.video_root, classes)
    elif options.data == "folders":
        read = read_class_folders(annotations, classes)
    elif options.data == "kinetics":
        read = read_kinetics_csv(annotations, options.video_root, classes)
    else:
        read = read_moments_csv(annotations, options.video_root, options.categories)
    if read.missing:
        print(f"{len(read.missing)} annotated videos of {annotations} are not on disk, e.g. {read.missing[0]}")
    transform = _with_statistics(real_video_transform(options.crop_size, options.test_crop_size), options)
    sampling = ClipSampling(options.num_frames, options.sampling_rate, options.target_fps)
    sharing = options.video_index is not None and dist.is_available() and dist.is_initialized()
    first = not sharing or dist.get_rank() == 0
    if not first:
        dist.barrier()  # rank 0 brings the index file up to date first
    try:
        dataset = VideoClipDataset(read.entries, read.classes, mode, sampling, transform, num_test_clips=num_test_clips,
                                   num_test_crops=num_test_crops, seed=options.seed, index_file=options.video_index,
                                   index_processes=max(1, options.workers))
    finally:
        if sharing and first:
            dist.barrier()  # even when rank 0 failed: the others then fail alike instead of waiting
    return dataset, read.classes, transform


def real_video_transform(crop_size: int, test_crop_size: int | None = None) -> ClipTransform:
    """PySlowFast's proportions: training short side jittered in [8/7, 10/7] of the crop, validation
    centre crops from the 8/7 short side, test views of ``test_crop_size`` (default: the training
    crop) cut from a short side of max(8/7 crop, test crop), as PySlowFast's 256 after 224."""
    scale = round(crop_size * 8 / 7)
    test_crop = crop_size if test_crop_size is None else test_crop_size
    return ClipTransform(crop_size=crop_size, train_scale=(scale, round(scale * 1.25)), test_scale=max(scale, test_crop),
                         test_crop_size=test_crop)


def _with_statistics(transform: ClipTransform, options: DataOptions) -> ClipTransform:
    """The transform standardising with the options' statistics once resolved (else its own)."""
    if options.mean is None and options.std is None:
        return transform
    return transform.with_statistics(options.mean or transform.mean, options.std or transform.std)


def add_data_arguments(parser: argparse.ArgumentParser, defaults: DataOptions) -> argparse._ArgumentGroup:
    data = parser.add_argument_group("data")
    data.add_argument("--data", choices=DATA_SOURCES, default=defaults.data, help="where the clips come from")
    data.add_argument("--annotations", help="training videos: list file ('path label'), class-folder root, Kinetics CSV or MiT trainingSet.csv "
                      "(needed for every --data but synthetic; default: none)")
    data.add_argument("--video-root", help="folder the annotations' videos are under (list files: path prefix; default: paths as written, "
                      "relative to the working directory; needed for kinetics and moments)")
    data.add_argument("--categories", help="Moments in Time moments_categories.txt (needed for --data moments; default: none)")
    data.add_argument("--num-clips", type=int, default=defaults.num_clips, help="procedural training clips (new draws each epoch)")
    data.add_argument("--num-frames", type=int, default=defaults.num_frames, help="frames per clip (real videos)")
    data.add_argument("--sampling-rate", type=int, default=defaults.sampling_rate, help="frames between clip frames (real videos)")
    data.add_argument("--crop-size", type=int, default=defaults.crop_size, help="training crop (real videos)")
    data.add_argument("--test-crop-size", type=int, default=defaults.test_crop_size,
                      help="side of the test views (real videos), cut from a short side of max(8/7 crop, this); PySlowFast and "
                      "MMAction2 test at 256 after 224-px training (default: the training crop, which small inputs need)")
    data.add_argument("--target-fps", type=float, default=defaults.target_fps,
                      help="frame rate --sampling-rate counts at, so clips span the same time at any video rate "
                      "(PySlowFast uses 30 for Kinetics); default: each video's own rate")
    data.add_argument("--video-index", default=defaults.video_index, metavar="FILE",
                      help="cache of the videos' frame index (.npz): read when current, else probed once and written; "
                      "train, val and test can share one (default: probe every video at start-up, keep nothing)")
    data.add_argument("--workers", type=int, default=defaults.workers,
                      help="DataLoader worker processes (kept across epochs); also the processes that probe videos")
    data.add_argument("--max-bad-videos", type=float, default=defaults.max_bad_videos,
                      help="stop once more than this share of the videos failed to decode (they are skipped and listed until then)")
    data.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                      help="per-channel mean of RGB in [0, 1] that clips are standardised with (default: what the backbone's "
                      "weights expect: ImageNet's for --pretrained i3d_r50, [-1, 1] for i3d, torchvision's Kinetics-400 ones "
                      "for s3d, the checkpoint's config for PySlowFast / MMAction2 files; PySlowFast's 0.45 from scratch)")
    data.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"),
                      help="per-channel std (default: as --mean; PySlowFast's 0.225 from scratch)")
    return data


def add_pretrained_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--pretrained", nargs="?", const=True, default=False, metavar="PATH",
                       help="start the backbone from torchvision's weights (ImageNet; Kinetics-400 for s3d), or from a file: "
                       "torchvision's state dict (offline), or for i3d_r50 a PySlowFast / MMAction2 Kinetics checkpoint "
                       "(default: from scratch)")
    group.add_argument("--pretrained-config", metavar="FILE",
                       help="the PySlowFast YAML / MMAction2 .py config of a --pretrained checkpoint that does not embed its own "
                       "(default: the one in the checkpoint)")


def add_run_arguments(parser: argparse.ArgumentParser, defaults: RunOptions) -> argparse._ArgumentGroup:
    run = parser.add_argument_group("run")
    run.add_argument("--out", default=defaults.out, help="run directory; an existing one with the same options is resumed")
    run.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:1, ...")
    run.add_argument("--amp", choices=tuple(AMP_DTYPES), default=defaults.amp,
                     help="mixed precision for the weight steps (fp16 with a gradient scaler)")
    run.add_argument("--seed", type=int, default=defaults.seed, help="seeds every random generator of the run")
    run.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every, metavar="STEPS",
                     help="also checkpoint every STEPS weight steps inside an epoch (its position, meters and generators "
                     "included, so a resumed run continues as if never stopped); 0: at the end of each epoch only")
    return run
