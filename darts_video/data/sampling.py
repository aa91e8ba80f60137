"""Which frames make a clip: PySlowFast-style ``num_frames x sampling_rate`` sampling.

- train: one clip at a uniformly random start;
- val: one clip at the centre;
- test: K clips centred in K equal segments of the video (K=1 is the val clip).
A video shorter than the clip either repeats its last frame (``repeat_last``, as PySlowFast
clamps indices) or loops back to its start (``loop``, as MMAction2).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SHORT_VIDEO_POLICIES = ("repeat_last", "loop")


@dataclass(frozen=True)
class ClipSampling:
    num_frames: int = 8
    sampling_rate: int = 8  # frames skipped between clip frames, at the target fps
    target_fps: float | None = None  # None: use the video's own frame rate
    short_video: str = "repeat_last"

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.sampling_rate < 1:
            raise ValueError(f"num_frames and sampling_rate must be positive, got {self.num_frames} and {self.sampling_rate}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise ValueError(f"target_fps must be positive, got {self.target_fps}")
        if self.short_video not in SHORT_VIDEO_POLICIES:
            raise ValueError(f"unknown short_video policy {self.short_video!r}; expected one of {SHORT_VIDEO_POLICIES}")

    def step(self, video_fps: float) -> float:
        """Source frames between clip frames: the sampling rate converted to the video's fps."""
        if self.target_fps is None:
            return float(self.sampling_rate)
        return self.sampling_rate * video_fps / self.target_fps

    def span(self, video_fps: float) -> int:
        """Source frames one clip covers."""
        return int(round((self.num_frames - 1) * self.step(video_fps))) + 1

    def indices(self, num_video_frames: int, start: int, video_fps: float) -> list[int]:
        step = self.step(video_fps)
        raw = [start + int(round(i * step)) for i in range(self.num_frames)]
        if self.short_video == "loop":
            return [i % num_video_frames for i in raw]
        return [min(i, num_video_frames - 1) for i in raw]

    def train_clip(self, num_video_frames: int, video_fps: float, rng: random.Random) -> list[int]:
        slack = max(num_video_frames - self.span(video_fps), 0)
        return self.indices(num_video_frames, rng.randint(0, slack), video_fps)

    def test_clips(self, num_video_frames: int, video_fps: float, num_clips: int = 1) -> list[list[int]]:
        """``num_clips`` clips centred in equal segments; one clip is the centre (val) clip."""
        slack = max(num_video_frames - self.span(video_fps), 0)
        starts = [int(round(slack * (k + 0.5) / num_clips)) for k in range(num_clips)]
        return [self.indices(num_video_frames, start, video_fps) for start in starts]
