"""Write the built-in procedural dataset as real mp4 files plus list files.

    python scripts/make_synthetic_dataset.py OUT [--train 2000 --val 800 --test 800 --seed 0]

Writes OUT/videos/<split>/<index>_<class>.mp4 (H.264, lossless 4:4:4), OUT/<split>.txt in the
``path label`` list format (paths relative to OUT: pass OUT as the prefix) and OUT/classes.txt.
The clips are the ones SyntheticVideoDataset generates in memory for the same seed, so a run can
go through the real decoding path with the same data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from darts_video.cli import DocstringHelpFormatter
from darts_video.data.annotations import write_label_map
from darts_video.data.encode import write_video
from darts_video.data.synthetic import CLASSES, SyntheticVideoDataset
from darts_video.engine.progress import progress
from darts_video.utils.files import atomic_write_text


def write_split(out: Path, split: str, num_clips: int, seed: int) -> Path:
    dataset = SyntheticVideoDataset(num_clips, split=split, seed=seed)
    lines = []
    for index in progress(range(num_clips), f"{split:>5}", unit="clip"):
        relative = Path("videos") / split / f"{index:06d}_{CLASSES[dataset.label(index)]}.mp4"
        write_video(out / relative, dataset.clip(index))
        lines.append(f"{relative} {dataset.label(index)}\n")
    return atomic_write_text(out / f"{split}.txt", "".join(lines))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--train", type=int, default=2000, help="training clips")
    parser.add_argument("--val", type=int, default=800, help="validation clips")
    parser.add_argument("--test", type=int, default=800, help="test clips")
    parser.add_argument("--seed", type=int, default=0, help="the procedural dataset's seed")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    for split in ("train", "val", "test"):
        count = getattr(args, split)
        if count > 0:
            print(f"wrote {write_split(args.out, split, count, args.seed)}")
    print(f"wrote {write_label_map(CLASSES, args.out / 'classes.txt')}")


if __name__ == "__main__":
    main()
