"""Clip transforms with torchvision v2 on video tensors, as PySlowFast / MMAction2 do.

Input: uint8 frames ``(T, H, W, 3)`` from the decoder. Output: uint8 ``(C, T, H, W)``; the training
loop calls :meth:`ClipTransform.normalize` on whole batches on its device. Shipping uint8 out of
DataLoader workers moves 4x fewer bytes between processes and measured 1.5x more clips/s on 2
cores (docs/benchmarks.md), and normalising on a GPU is free.
- train: random short-side scale in ``train_scale``, random ``crop_size`` crop, horizontal flip;
- val: short side to ``test_scale``, centre ``crop_size`` crop;
- test: short side to ``test_scale``, three ``test_crop_size`` squares along the long side
  (left / centre / right, or top / centre / bottom), MMAction2's ThreeCrop, all cut from one
  decoded and resized clip. ``test_crop_size`` defaults to ``test_scale`` (full-height squares,
  PySlowFast's 256 after 224-px training); ``options.build_dataset`` tests at the training crop
  unless ``--test-crop-size`` says otherwise, because a small network trained on 32-px crops
  does not carry over to 37-px views (docs/retraining.md).
Training draws its scale, crop and flip from the generator it is given (the sample's own, see
:func:`~darts_video.data.sampler.sample_rng`), never from a global one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from darts_video.errors import ConfigError

KINETICS_MEAN = (0.45, 0.45, 0.45)  # PySlowFast's defaults; pretrained backbones declare their own
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class ClipTransform:
    crop_size: int = 224
    train_scale: tuple[int, int] = (256, 320)
    test_scale: int = 256
    test_crop_size: int | None = None  # None: test_scale
    flip: bool = True
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD

    def __post_init__(self) -> None:
        low, high = self.train_scale
        if not 0 < low <= high:
            raise ConfigError(f"train_scale must be an increasing pair of positive sizes, got {self.train_scale}")
        if self.crop_size > low or self.crop_size > self.test_scale:
            raise ConfigError(f"crop_size {self.crop_size} is larger than the short side it is cut from ({low} / {self.test_scale})")
        if not 0 < self.test_views_size <= self.test_scale:
            raise ConfigError(f"test_crop_size {self.test_crop_size} must be positive and at most the test short side {self.test_scale}")

    @property
    def test_views_size(self) -> int:
        """The side of the test views' squares."""
        return self.test_scale if self.test_crop_size is None else self.test_crop_size

    def train(self, frames: torch.Tensor, rng: random.Random) -> torch.Tensor:
        video = _as_video(frames)  # (T, 3, H, W)
        height, width = video.shape[-2:]
        scale = rng.randint(*self.train_scale) / min(height, width)
        size = [round(height * scale), round(width * scale)]  # the short side is at least crop_size
        video = v2.functional.resize(video, size, antialias=True)
        top, left = rng.randint(0, size[0] - self.crop_size), rng.randint(0, size[1] - self.crop_size)
        video = v2.functional.crop(video, top, left, self.crop_size, self.crop_size)
        if self.flip and rng.random() < 0.5:
            video = v2.functional.horizontal_flip(video)
        return self._to_c_t_h_w(video)

    def val(self, frames: torch.Tensor) -> torch.Tensor:
        video = v2.CenterCrop(self.crop_size)(self._resize(frames))
        return self._to_c_t_h_w(video)

    def test_crops(self, frames: torch.Tensor, num_crops: int = 3) -> torch.Tensor:
        """``num_crops`` evenly spaced squares along the long side (one: the centre), ``(V, C, T, S, S)``."""
        video = self._resize(frames)  # (T, C, H, W), resized once for every crop
        if num_crops == 1:
            return self._to_c_t_h_w(v2.CenterCrop(self.test_views_size)(video))[None]
        height, width, side = *video.shape[-2:], self.test_views_size
        centre = (min(height, width) - side) // 2
        crops = []
        for crop in range(num_crops):
            offset = round(crop * (max(height, width) - side) / (num_crops - 1))
            top, left = (offset, centre) if height > width else (centre, offset)
            crops.append(self._to_c_t_h_w(v2.functional.crop(video, top, left, side, side)))
        return torch.stack(crops)

    def with_statistics(self, mean: Sequence[float], std: Sequence[float]) -> ClipTransform:
        """The same transform standardising with another mean / std (those of a backbone's weights)."""
        return replace(self, mean=tuple(mean), std=tuple(std))

    def normalize(self, video: torch.Tensor) -> torch.Tensor:
        """uint8 ``(..., C, T, H, W)`` -> float32, scaled to [0, 1] and standardised per channel."""
        shape = (3, 1, 1, 1)
        mean = torch.tensor(self.mean, device=video.device).view(shape)
        std = torch.tensor(self.std, device=video.device).view(shape)
        return (video.float() / 255 - mean) / std

    def _resize(self, frames: torch.Tensor) -> tv_tensors.Video:
        return v2.Resize(self.test_scale)(_as_video(frames))

    def _to_c_t_h_w(self, video: torch.Tensor) -> torch.Tensor:
        return video.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()  # (T, C, H, W) -> (C, T, H, W)


def _as_video(frames: torch.Tensor) -> tv_tensors.Video:
    return tv_tensors.Video(frames.permute(0, 3, 1, 2))  # (T, H, W, 3) -> (T, 3, H, W)
