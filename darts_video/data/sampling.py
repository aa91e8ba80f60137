"""Which frames make a clip: PySlowFast's ``num_frames x sampling_rate`` sampling.

A clip covers ``num_frames * sampling_rate`` frames at ``target_fps`` (the video's own rate when
None), i.e. ``num_frames * sampling_rate * video_fps / target_fps`` of the video's frames, and
takes ``num_frames`` indices spread evenly from its first to its last frame, rounded down:
PySlowFast's ``linspace`` rule (``slowfast/datasets/decoder.py``), so that clips match what
PySlowFast-trained weights saw. The step is therefore ``(N * s - 1) / (N - 1)`` frames, not ``s``
(9 for 8x8 at the video's rate; MMAction2's SampleFrames steps exactly ``s``).

- train: one clip starting uniformly at random in ``[0, frames - clip size]`` (PySlowFast);
- val: one clip at the centre;
- test: K clips centred in K equal segments of that range (MMAction2's test sampling; PySlowFast
  starts clip k at k/K of it, which never reaches the end of the video); K=1 is the val clip.
A video shorter than the clip either repeats its last frame (``repeat_last``, as PySlowFast
clamps indices) or loops back to its start (``loop``, as MMAction2).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from darts_video.errors import ConfigError

SHORT_VIDEO_POLICIES = ("repeat_last", "loop")


@dataclass(frozen=True)
class ClipSampling:
    num_frames: int = 8
    sampling_rate: int = 8  # frames between clip frames, at the target fps
    target_fps: float | None = None  # None: use the video's own frame rate
    short_video: str = "repeat_last"

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.sampling_rate < 1:
            raise ConfigError(f"num_frames and sampling_rate must be positive, got {self.num_frames} and {self.sampling_rate}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise ConfigError(f"target_fps must be positive, got {self.target_fps}")
        if self.short_video not in SHORT_VIDEO_POLICIES:
            raise ConfigError(f"unknown short_video policy {self.short_video!r}; expected one of {SHORT_VIDEO_POLICIES}")

    def clip_size(self, video_fps: float) -> float:
        """The video's frames one clip covers: ``num_frames * sampling_rate`` at the target fps."""
        rate = 1.0 if self.target_fps is None else video_fps / self.target_fps
        return self.num_frames * self.sampling_rate * rate

    def indices(self, num_video_frames: int, start: float, video_fps: float) -> list[int]:
        """``num_frames`` indices from ``start`` to ``start + clip_size - 1``, evenly spread, rounded down."""
        positions = np.linspace(start, start + self.clip_size(video_fps) - 1, self.num_frames)  # (num_frames,)
        if self.short_video == "loop":
            return (np.floor(positions).astype(np.int64) % num_video_frames).tolist()
        return np.floor(np.clip(positions, 0, num_video_frames - 1)).astype(np.int64).tolist()

    def train_clip(self, num_video_frames: int, video_fps: float, rng: random.Random) -> list[int]:
        slack = max(num_video_frames - self.clip_size(video_fps), 0.0)
        return self.indices(num_video_frames, rng.uniform(0, slack), video_fps)

    def test_clips(self, num_video_frames: int, video_fps: float, num_clips: int = 1) -> list[list[int]]:
        """``num_clips`` clips centred in equal segments; one clip is the centre (val) clip."""
        slack = max(num_video_frames - self.clip_size(video_fps), 0.0)
        return [self.indices(num_video_frames, slack * (k + 0.5) / num_clips, video_fps) for k in range(num_clips)]
