"""One decoding / sampling core for every video dataset, and what to do with bad videos.

A sample is a dict: ``video`` uint8 ``(C, T, H, W)``, or ``(V, C, T, H, W)`` for the V crops of one
test clip (decoded once, kept together so they travel through DDP shards and batches as one
item), normalised batch-wise by the loop with :meth:`ClipTransform.normalize`; ``label``;
``index`` (of the video); ``view`` (the test view number, a list for several crops); and
``failures`` ("path: reason" for every video that failed on the way). Training replaces a video
that fails to decode by another random one; val/test yield ``video`` None, which
:func:`collate_clips` drops while keeping its failure. Failures travel inside batches, so they
reach the main process whatever the number of DataLoader workers, where :class:`BadVideoLog`
collects them and stops a run once too many videos are bad.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from darts_video.data.annotations import VideoEntry, read_exclusions, write_exclusions
from darts_video.data.decode import VideoDecodeError, decode_frames
from darts_video.data.index import build_index
from darts_video.data.sampler import sample_rng, split_key
from darts_video.data.sampling import ClipSampling
from darts_video.data.transforms import ClipTransform
from darts_video.errors import ConfigError, DartsVideoError

MODES = ("train", "val", "test")


class VideoClipDataset(Dataset):
    """Clips of ``entries`` decoded with PyAV: one per video (train / val), ``num_test_clips`` per
    video with all their ``num_test_crops`` crops (test).

    Every video is probed once, here, into a compact :class:`~darts_video.data.index.VideoIndex`
    (cached in ``index_file`` when given, probing with ``index_processes`` processes), so a sample
    opens its file once. Items are plain indices or the ``(epoch, index)`` keys of an
    :class:`~darts_video.data.sampler.EpochSampler`; a training sample's clip start, scale, crop,
    flip and substitute video come from ``(seed, epoch, index)``.
    """

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
        seed: int = 0,
        index_file: str | Path | None = None,
        index_processes: int = 1,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}; expected one of {MODES}")
        excluded = read_exclusions(exclude) if isinstance(exclude, (str, Path)) else set(exclude)
        kept = [entry for entry in entries if entry.path not in excluded]
        self.excluded = [entry.path for entry in entries if entry.path in excluded]
        if not kept:
            raise ConfigError("the dataset has no video (after exclusions)")
        self.index = build_index([entry.path for entry in kept], index_file, index_processes)  # one row per video
        self._labels = np.array([entry.label for entry in kept], dtype=np.int64)
        self.classes = list(classes)
        self.mode, self.sampling, self.transform, self.seed = mode, sampling, transform, seed
        self.clips_per_video = num_test_clips if mode == "test" else 1
        self.views_per_item = num_test_crops if mode == "test" else 1
        self.num_test_clips, self.num_test_crops = num_test_clips, num_test_crops
        self.decode_short_side, self.max_retries = decode_short_side, max_retries

    def __len__(self) -> int:
        return len(self._labels) * self.clips_per_video

    @property
    def labels(self) -> list[int]:
        """One label per video (the input of :func:`~darts_video.data.splits.stratified_split`)."""
        return self._labels.tolist()

    @property
    def entries(self) -> list[VideoEntry]:
        return [VideoEntry(self.index.path(row), int(label)) for row, label in enumerate(self._labels)]

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, item = split_key(key)
        video_index, clip = divmod(item, self.clips_per_video)
        rng = sample_rng(self.seed, epoch, item)
        failures = []
        for _ in range(self.max_retries + 1):
            try:
                video = self._load(video_index, clip, rng)
                return {"video": video, "label": int(self._labels[video_index]), "index": video_index,
                        "view": self._views(clip), "failures": failures}
            except VideoDecodeError as error:
                failures.append(str(error))
            if self.mode != "train":
                break
            video_index = rng.randrange(len(self._labels))  # a substitute sample
        return {"video": None, "label": int(self._labels[video_index]), "index": video_index, "view": self._views(clip),
                "failures": failures}

    def _views(self, clip: int) -> int | list[int]:
        if self.mode != "test":
            return 0
        return [clip * self.num_test_crops + crop for crop in range(self.num_test_crops)]

    def _load(self, row: int, clip: int, rng) -> torch.Tensor:
        info, path = self.index.info(row), self.index.path(row)
        if self.mode == "train":
            indices = self.sampling.train_clip(info.num_frames, info.fps, rng)
        else:
            indices = self.sampling.test_clips(info.num_frames, info.fps, self.clips_per_video)[clip]
        threads = 1 if get_worker_info() is not None else 0
        frames = decode_frames(path, indices, info, self.decode_short_side, threads=threads)  # (T, H, W, 3)
        if self.mode == "train":
            return self.transform.train(frames, rng)
        if self.mode == "val":
            return self.transform.val(frames)
        return self.transform.test_crops(frames, self.num_test_crops)  # (V, C, T, S, S)


def collate_clips(samples: list[dict]) -> dict:
    """Stack the decoded samples (the crops of a test clip one after the other); keep every
    failure, including those of samples dropped here."""
    failures = [failure for sample in samples for failure in sample["failures"]]
    kept = [sample for sample in samples if sample["video"] is not None]
    if not kept:
        return {"video": None, "label": None, "index": None, "view": None, "failures": failures}
    clips = [s["video"] if s["video"].dim() == 5 else s["video"][None] for s in kept]  # (V, C, T, H, W) each
    counts = torch.tensor([len(c) for c in clips])
    views = [v for s in kept for v in (s["view"] if isinstance(s["view"], list) else [s["view"]])]
    return {
        "video": torch.cat(clips),  # (B, C, T, H, W), B = the views of every kept sample
        "label": torch.tensor([s["label"] for s in kept]).repeat_interleave(counts),
        "index": torch.tensor([s["index"] for s in kept]).repeat_interleave(counts),
        "view": torch.tensor(views),
        "failures": failures,
    }


class TooManyBadVideos(DartsVideoError, RuntimeError):
    pass


class BadVideoLog:
    """The distinct videos of one set (train, val, test) that failed, and the limit on them: a run
    stops once more than ``max_share`` of the set's ``num_videos`` are bad.

    A run reads several sets, each counted against its own size (a validation set whose every
    video is bad must stop the run, however large the training set): :meth:`for_set` gives the
    log of another set, whose failures this log lists too (:attr:`failures`, :meth:`write`: the
    run's one bad-video file). Under DDP the callers record every rank's failures on every rank,
    so all ranks apply the limit to the same global count and stop together.
    """

    def __init__(self, num_videos: int, max_share: float = 0.05) -> None:
        self.num_videos, self.max_share = num_videos, max_share
        self.own: dict[str, str] = {}  # this set's: path -> reason
        self._family: list[BadVideoLog] = [self]  # the logs whose failures are listed together

    def for_set(self, num_videos: int) -> BadVideoLog:
        """The log of another set of ``num_videos`` videos read by the same run (same limit)."""
        log = BadVideoLog(num_videos, self.max_share)
        log._family = self._family
        self._family.append(log)
        return log

    @property
    def failures(self) -> dict[str, str]:
        """Every bad video of this log's family of sets, path -> reason, in the order they failed."""
        listed: dict[str, str] = {}
        for log in self._family:
            for path, reason in log.own.items():
                listed.setdefault(path, reason)
        return listed

    def record(self, failures: Iterable[str]) -> None:
        """Add ``failures`` ("path: reason") to this set; raise once too many of its videos are bad."""
        for failure in failures:
            path, _, reason = failure.partition(": ")
            self.own.setdefault(path, reason)
        if len(self.own) > self.max_share * self.num_videos:
            listed = "\n  ".join(f"{p}: {r}" for p, r in list(self.own.items())[:10])
            raise TooManyBadVideos(
                f"{len(self.own)} of {self.num_videos} videos failed to decode, more than the allowed "
                f"{self.max_share:.0%} (raise the limit, or exclude them with scripts/scan_videos.py):\n  {listed}"
            )

    def state_dict(self) -> dict[str, Any]:
        """Every set's failures so far, in the order the sets were made (a checkpoint component:
        the resumed run lists them and counts them against the limit, as the uninterrupted one)."""
        return {"sets": [dict(log.own) for log in self._family]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for log, own in zip(self._family, state["sets"]):
            log.own = dict(own)

    def write(self, path: str | Path) -> Path:
        """Every listed bad video in the exclusion-file format, which datasets accept as ``exclude``."""
        return write_exclusions(self.failures.items(), path)
