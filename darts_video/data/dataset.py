"""One decoding / sampling core for every video dataset, and what to do with bad videos.

A sample is a dict: ``video`` (C, T, H, W) uint8 (normalised batch-wise by the loop with
:meth:`ClipTransform.normalize`), ``label``, ``index`` (of the video), ``view``
(test view number) and ``failures`` ("path: reason" for every video that failed on the way).
Training replaces a video that fails to decode by another random one; val/test yield ``video``
None, which :func:`collate_clips` drops while keeping its failure. Failures travel inside
batches, so they reach the main process whatever the number of DataLoader workers, where
:class:`BadVideoLog` collects them and stops a run once too many videos are bad.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset, get_worker_info

from darts_video.data.annotations import VideoEntry, read_exclusions, write_exclusions
from darts_video.data.decode import VideoDecodeError, decode_frames, probe
from darts_video.data.sampling import ClipSampling
from darts_video.data.transforms import ClipTransform

MODES = ("train", "val", "test")


class VideoClipDataset(Dataset):
    """Clips of ``entries`` decoded with PyAV: one per video (train / val) or ``clips x crops`` (test)."""

    def __init__(
        self,
        entries: Sequence[VideoEntry],
        classes: Sequence[str],
        mode: str = "train",
        sampling: ClipSampling = ClipSampling(),
        transform: ClipTransform = ClipTransform(),
        num_test_clips: int = 10,
        num_test_crops: int = 3,
        decode_short_side: int | None = None,
        exclude: Iterable[str] | str | Path = (),
        max_retries: int = 10,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        excluded = read_exclusions(exclude) if isinstance(exclude, (str, Path)) else set(exclude)
        self.entries = [entry for entry in entries if entry.path not in excluded]
        self.excluded = [entry.path for entry in entries if entry.path in excluded]
        if not self.entries:
            raise ValueError("the dataset has no video (after exclusions)")
        self.classes = list(classes)
        self.mode, self.sampling, self.transform = mode, sampling, transform
        self.views_per_video = num_test_clips * num_test_crops if mode == "test" else 1
        self.num_test_clips, self.num_test_crops = num_test_clips, num_test_crops
        self.decode_short_side, self.max_retries = decode_short_side, max_retries

    def __len__(self) -> int:
        return len(self.entries) * self.views_per_video

    @property
    def labels(self) -> list[int]:
        """One label per video (the input of :func:`~darts_video.data.splits.stratified_split`)."""
        return [entry.label for entry in self.entries]

    def __getitem__(self, item: int) -> dict:
        video_index, view = divmod(item, self.views_per_video)
        # torch's generator: DataLoader seeds it per worker and per epoch, and a run can restore it
        rng = random.Random(int(torch.randint(2**62, ())))
        failures = []
        for _ in range(self.max_retries + 1):
            entry = self.entries[video_index]
            try:
                clip = self._load(entry, view, rng)
                return {"video": clip, "label": entry.label, "index": video_index, "view": view, "failures": failures}
            except VideoDecodeError as error:
                failures.append(str(error))
            if self.mode != "train":
                break
            video_index = rng.randrange(len(self.entries))  # a substitute sample
        return {"video": None, "label": entry.label, "index": video_index, "view": view, "failures": failures}

    def _load(self, entry: VideoEntry, view: int, rng: random.Random) -> torch.Tensor:
        info = probe(entry.path)
        if self.mode == "train":
            indices = self.sampling.train_clip(info.num_frames, info.fps, rng)
        else:
            clip, crop = divmod(view, self.num_test_crops) if self.mode == "test" else (0, 0)
            indices = self.sampling.test_clips(info.num_frames, info.fps, self.num_test_clips if self.mode == "test" else 1)[clip]
        threads = 1 if get_worker_info() is not None else 0
        frames = decode_frames(entry.path, indices, info, self.decode_short_side, threads=threads)  # (T, H, W, 3)
        if self.mode == "train":
            return self.transform.train(frames)
        if self.mode == "val":
            return self.transform.val(frames)
        return self.transform.test_crop(frames, crop, self.num_test_crops)


def collate_clips(samples: list[dict]) -> dict:
    """Stack the decoded samples; keep every failure, including those of samples dropped here."""
    failures = [failure for sample in samples for failure in sample["failures"]]
    kept = [sample for sample in samples if sample["video"] is not None]
    if not kept:
        return {"video": None, "label": None, "index": None, "view": None, "failures": failures}
    return {
        "video": torch.stack([s["video"] for s in kept]),  # (B, C, T, H, W)
        "label": torch.tensor([s["label"] for s in kept]),
        "index": torch.tensor([s["index"] for s in kept]),
        "view": torch.tensor([s["view"] for s in kept]),
        "failures": failures,
    }


class TooManyBadVideos(RuntimeError):
    pass


class BadVideoLog:
    """Collects failures from batches; raises once more than ``max_share`` of the videos are bad."""

    def __init__(self, num_videos: int, max_share: float = 0.05) -> None:
        self.num_videos, self.max_share = num_videos, max_share
        self.failures: dict[str, str] = {}  # path -> reason

    def record(self, failures: Iterable[str]) -> None:
        for failure in failures:
            path, _, reason = failure.partition(": ")
            self.failures.setdefault(path, reason)
        if len(self.failures) > self.max_share * self.num_videos:
            listed = "\n  ".join(f"{p}: {r}" for p, r in list(self.failures.items())[:10])
            raise TooManyBadVideos(
                f"{len(self.failures)} of {self.num_videos} videos failed to decode, more than the allowed "
                f"{self.max_share:.0%} (raise the limit, or exclude them with scripts/scan_videos.py):\n  {listed}"
            )

    def write(self, path: str | Path) -> Path:
        """The bad list in the exclusion-file format, which datasets accept as ``exclude``."""
        return write_exclusions(self.failures.items(), path)
