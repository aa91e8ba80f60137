"""A second procedural task, with other long-range relations, written as real mp4 files and list
files: the check that a search method transfers beyond the built-in dataset it was developed on.
No default of the package is set on it.

    python benchmarks/heldout_task.py --out runs/heldout/data      # 4000 / 800 / 800 videos, about a minute
    python scripts/search_supernet.py --data list --annotations runs/heldout/data/train.txt \\
        --video-root runs/heldout/data --val-annotations runs/heldout/data/val.txt \\
        --crop-size 32 --num-frames 8 --sampling-rate 1

Videos are 8 frames of 36x36 at 8 fps, lossless H.264 4:4:4 (``darts_video.data.encode``). The
list-file path resizes the short side to 37-46 px and crops 32 (``--crop-size 32``), so every
object lies in the central 24x24 square, which such a crop keeps. Four pairs; inside a pair the
objects' shapes, sizes and counts are the same, and the label depends on one relation:

| label | name | what decides it |
| --- | --- | --- |
| 0 / 1 | triplet_same / triplet_odd | three static 6x6 squares, pairwise >= 12 px apart: all one colour, or one of another |
| 2 / 3 | change_same / change_different | a 10x10 ring at one place in frames 0-2, then a 10x10 square >= 12 px away in frames 5-7: same colour or not |
| 4 / 5 | brightness_same / brightness_different | two static 8x8 squares >= 12 px apart, each full or half brightness: equal or not |
| 6 / 7 | stripes_horizontal / stripes_vertical | one static 10x10 striped patch: local texture, any CNN |

The relations differ from the built-in dataset's (a colour agreement of three objects, an
agreement across a change of shape and place, an agreement of brightness instead of hue), and
pooled local statistics carry no signal about them: every colour and brightness is equally
likely in both classes of a pair. Every video is a pure function of (seed, split, index).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from darts_video.data.encode import write_video

CLASSES = ("triplet_same", "triplet_odd", "change_same", "change_different",
           "brightness_same", "brightness_different", "stripes_horizontal", "stripes_vertical")
FRAMES, SIZE, BORDER = 8, 36, 6  # objects inside [BORDER, SIZE - BORDER)
MIN_DISTANCE = 12
PALETTE = np.array(
    [(220, 40, 40), (40, 200, 40), (50, 80, 230), (230, 220, 40), (210, 50, 210), (40, 210, 210)], dtype=np.uint8
)
SPLITS = {"train": 0, "val": 1, "test": 2}


def make_clip(label: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of class ``label``: uint8 ``(T, H, W, 3)``."""
    clip = np.clip(rng.normal(24, 8, size=(FRAMES, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    pair, same = label // 2, label % 2 == 0
    everywhere = range(FRAMES)
    if pair == 0:
        corners = _apart(rng, 6, count=3)
        first = int(rng.integers(len(PALETTE)))
        colours = [first] * 3
        if not same:
            colours[int(rng.integers(3))] = _other(rng, first)
        for (y, x), colour in zip(corners, colours):
            _paint(clip, everywhere, y, x, np.ones((6, 6), bool), PALETTE[colour])
    elif pair == 1:
        (y1, x1), (y2, x2) = _apart(rng, 10, count=2)
        first = int(rng.integers(len(PALETTE)))
        second = first if same else _other(rng, first)
        ring = np.ones((10, 10), bool)
        ring[2:-2, 2:-2] = False
        _paint(clip, (0, 1, 2), y1, x1, ring, PALETTE[first])
        _paint(clip, (5, 6, 7), y2, x2, np.ones((10, 10), bool), PALETTE[second])
    elif pair == 2:
        corners = _apart(rng, 8, count=2)
        colour = PALETTE[int(rng.integers(len(PALETTE)))]
        first = int(rng.integers(2))
        levels = (first, first if same else 1 - first)
        for (y, x), level in zip(corners, levels):
            _paint(clip, everywhere, y, x, np.ones((8, 8), bool), (colour * (1.0 if level else 0.5)).astype(np.uint8))
    else:
        y, x = (int(v) for v in rng.integers(BORDER, SIZE - BORDER - 10 + 1, size=2))
        stripes = np.zeros((10, 10), bool)
        stripes[::3] = True
        _paint(clip, everywhere, y, x, stripes if label == 6 else stripes.T, PALETTE[int(rng.integers(len(PALETTE)))])
    return clip


def _other(rng: np.random.Generator, colour: int) -> int:
    return int((colour + rng.integers(1, len(PALETTE))) % len(PALETTE))


def _apart(rng: np.random.Generator, size: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` objects of ``size`` whose centres are pairwise >= MIN_DISTANCE apart."""
    while True:
        corners = rng.integers(BORDER, SIZE - BORDER - size + 1, size=(count, 2))
        gaps = [np.hypot(*(corners[i] - corners[j])) for i in range(count) for j in range(i + 1, count)]
        if min(gaps) >= MIN_DISTANCE:
            return [(int(y), int(x)) for y, x in corners]


def _paint(clip: np.ndarray, frames, y: int, x: int, mask: np.ndarray, colour: np.ndarray) -> None:
    height, width = mask.shape
    for t in frames:
        clip[t, y : y + height, x : x + width][mask] = colour


def write_split(out: Path, split: str, count: int, seed: int) -> None:
    """``count`` videos, classes balanced, and ``split.txt`` listing ``path label`` (paths relative to ``out``)."""
    lines = []
    for index in range(count):
        label = index % len(CLASSES)
        rng = np.random.default_rng([seed, SPLITS[split], index])
        name = f"{split}/{index:05d}.mp4"
        write_video(out / name, make_clip(label, rng))
        lines.append(f"{name} {label}")
    (out / f"{split}.txt").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/heldout/data"))
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--val", type=int, default=800)
    parser.add_argument("--test", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    for split, count in (("train", args.train), ("val", args.val), ("test", args.test)):
        write_split(args.out, split, count, args.seed)
    (args.out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    print(f"wrote {args.train} / {args.val} / {args.test} videos to {args.out} in {time.perf_counter() - start:.0f} s; "
          f"long-range classes 0-5, local 6-7", file=sys.stderr)


if __name__ == "__main__":
    main()
