"""The built-in procedural video dataset: classes that only long-range attention can tell apart.

Clips are uint8 ``(8, 32, 32, 3)``: a dark noisy background and coloured objects from a palette
of six. Four pairs of classes; inside each pair the object shapes, sizes and counts are the same,
so a pair is recognisable locally, but the label depends on one relation:

| label | name | what decides it | needs |
| --- | --- | --- | --- |
| 0 / 1 | spatial_same / spatial_different | two static 5x5 squares >= 16 px apart in every frame: same colour or not | spatial attention |
| 2 / 3 | temporal_same / temporal_different | one 12x12 square at one place, shown in frames 0-1 and 6-7 only: same colour or not | temporal attention |
| 4 / 5 | spacetime_same / spacetime_different | a 10x10 ring in frames 0-1 and another >= 16 px away in frames 6-7: same colour or not | spatiotemporal attention |
| 6 / 7 | motion_horizontal / motion_vertical | one 7x7 plus moving 2 px per frame left/right or up/down | local motion: any 3D CNN |

Why it works (see ``shared/notes/procedural_dataset.md``): colour *agreement* is a relation
about content, invisible to attention-free pooling of local features (each colour is equally
likely in both classes of a pair), and the distances (>= 16 px, 5 frames) exceed the receptive
field of the tiny backbone. Relations never depend on position or order, which attention
without positional encoding could not see. Every clip is a pure function of (seed, split, index)
(and the epoch, when fresh each epoch).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from darts_video.data.sampler import split_key
from darts_video.data.transforms import ClipTransform
from darts_video.errors import ConfigError

CLASSES = (
    "spatial_same",
    "spatial_different",
    "temporal_same",
    "temporal_different",
    "spacetime_same",
    "spacetime_different",
    "motion_horizontal",
    "motion_vertical",
)
PAIRS = {"spatial": (0, 1), "temporal": (2, 3), "spacetime": (4, 5), "motion": (6, 7)}
LONG_RANGE_CLASSES = (0, 1, 2, 3, 4, 5)
SPLITS = {"train": 0, "val": 1, "test": 2}
FRAMES, SIZE = 8, 32
PALETTE = np.array(
    [(220, 40, 40), (40, 200, 40), (50, 80, 230), (230, 220, 40), (210, 50, 210), (40, 210, 210)], dtype=np.uint8
)
MIN_DISTANCE = 16  # px between object centres: beyond the tiny backbone's receptive field
# Clips are exactly what the model sees: no resizing, cropping or flip; only the normalisation.
SYNTHETIC_TRANSFORM = ClipTransform(crop_size=SIZE, train_scale=(SIZE, SIZE), test_scale=SIZE, flip=False)


def make_clip(label: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of class ``label``: uint8 ``(T, H, W, 3)``."""
    clip = np.clip(rng.normal(24, 8, size=(FRAMES, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    pair, same = label // 2, label % 2 == 0
    first = int(rng.integers(len(PALETTE)))
    second = first if same else int((first + rng.integers(1, len(PALETTE))) % len(PALETTE))
    if pair == 0:
        (y1, x1), (y2, x2) = _far_apart(rng, 5)
        _paint(clip, range(FRAMES), y1, x1, _square(5), PALETTE[first])
        _paint(clip, range(FRAMES), y2, x2, _square(5), PALETTE[second])
    elif pair == 1:
        y, x = rng.integers(0, SIZE - 12 + 1, size=2)
        _paint(clip, (0, 1), y, x, _square(12), PALETTE[first])
        _paint(clip, (FRAMES - 2, FRAMES - 1), y, x, _square(12), PALETTE[second])
    elif pair == 2:
        (y1, x1), (y2, x2) = _far_apart(rng, 10)
        _paint(clip, (0, 1), y1, x1, _ring(10), PALETTE[first])
        _paint(clip, (FRAMES - 2, FRAMES - 1), y2, x2, _ring(10), PALETTE[second])
    else:
        vertical, speed = label == 7, 2 * (1 if rng.integers(2) else -1)
        travel = speed * (FRAMES - 1)
        along = int(rng.integers(max(0, -travel), SIZE - 7 + 1 - max(0, travel)))
        across = int(rng.integers(0, SIZE - 7 + 1))
        for t in range(FRAMES):
            y, x = (along + speed * t, across) if vertical else (across, along + speed * t)
            _paint(clip, (t,), y, x, _plus(7), PALETTE[first])
    return clip


def _far_apart(rng: np.random.Generator, size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Top-left corners of two ``size`` objects whose centres are at least MIN_DISTANCE apart."""
    while True:
        a, b = rng.integers(0, SIZE - size + 1, size=(2, 2))
        if np.hypot(*(a - b)) >= MIN_DISTANCE:
            return (int(a[0]), int(a[1])), (int(b[0]), int(b[1]))


def _square(size: int) -> np.ndarray:
    return np.ones((size, size), dtype=bool)


def _ring(size: int, border: int = 2) -> np.ndarray:
    mask = _square(size)
    mask[border:-border, border:-border] = False
    return mask


def _plus(size: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[size // 2 - 1 : size // 2 + 2, :] = True
    mask[:, size // 2 - 1 : size // 2 + 2] = True
    return mask


def _paint(clip: np.ndarray, frames, y: int, x: int, mask: np.ndarray, colour: np.ndarray) -> None:
    height, width = mask.shape
    for t in frames:
        clip[t, y : y + height, x : x + width][mask] = colour


class SyntheticVideoDataset(Dataset):
    """``num_clips`` procedural clips, classes balanced (label = index mod 8), deterministic per seed.

    With ``fresh_each_epoch`` the clips of epoch ``e`` are new draws: the relations are learnt
    from many more distinct examples at no extra cost per epoch, where a fixed set of a few
    thousand clips lets a network memorise it instead (docs/data.md). The epoch comes with the
    item, as the ``(epoch, index)`` key of an :class:`~darts_video.data.sampler.EpochSampler`, so
    persistent DataLoader workers draw each epoch's clips without being told. Samples have the
    same form as :class:`~darts_video.data.dataset.VideoClipDataset`'s.
    """

    classes = list(CLASSES)
    views_per_item = 1

    def __init__(self, num_clips: int = 2000, split: str = "train", seed: int = 0, fresh_each_epoch: bool = False) -> None:
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; expected one of {tuple(SPLITS)}")
        if num_clips < 1:
            raise ConfigError(f"num_clips must be positive, got {num_clips}")
        self.num_clips, self.split, self.seed, self.fresh_each_epoch = num_clips, split, seed, fresh_each_epoch

    def __len__(self) -> int:
        return self.num_clips

    def label(self, index: int) -> int:
        return index % len(CLASSES)

    @property
    def labels(self) -> list[int]:
        return [self.label(i) for i in range(self.num_clips)]

    def clip(self, index: int, epoch: int = 0) -> np.ndarray:
        """The uint8 ``(T, H, W, 3)`` clip at ``index`` (of ``epoch``, if fresh each epoch)."""
        if not 0 <= index < self.num_clips:
            raise IndexError(f"index {index} out of range for {self.num_clips} clips")
        stream = [self.seed, SPLITS[self.split], index] + ([epoch] if self.fresh_each_epoch else [])
        return make_clip(self.label(index), np.random.default_rng(stream))

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = split_key(key)
        video = torch.from_numpy(self.clip(index, epoch)).permute(3, 0, 1, 2)  # (T, H, W, 3) -> (C, T, H, W)
        return {"video": video, "label": self.label(index), "index": index, "view": 0, "failures": []}
