"""Decoder and loader throughput on encoded videos like Kinetics clips.

    python benchmarks/bench_data.py            # 320x240 and 456x256, 10 s, keyframe every 2 s
    python benchmarks/bench_data.py --quick    # 2 s videos, few repeats: checks the script runs

Encodes its own test videos (H.264 4:2:0, 25 fps, a GOP of 2 s, moving textured content), then
measures, alternating in one run: decoding a 16x2 clip (probe + seek + decode, what a dataset
item costs) against decoding every frame of the file; and the clips/s a DataLoader with 2
workers delivers for training clips (probe + decode + scale jitter + crop + flip, uint8: the loop
normalises on its device), next to the same dataset read in the main process.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader

from darts_video.data import ClipSampling, ClipTransform, VideoClipDataset, VideoEntry, collate_clips, decode_frames, probe
from darts_video.data.encode import write_video
from timing import compare_table, markdown_table, time_interleaved

FPS = 25


def make_video(path: Path, width: int, height: int, seconds: int) -> Path:
    """Moving stripes over per-video noise: content an encoder cannot make trivially small."""
    rng = np.random.default_rng(width)
    texture = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    rows, columns = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(seconds * FPS):
        stripes = ((np.sin((columns + 4 * t) / 9.0) + np.cos((rows - 3 * t) / 13.0)) * 60 + 128).astype(np.uint8)
        frames.append(np.roll(texture, shift=2 * t, axis=1) // 2 + stripes[..., None] // 2)
    return write_video(path, np.stack(frames), fps=FPS, lossless=False, keyframe_interval=2 * FPS)


def decode_whole(path: Path) -> None:
    with av.open(str(path)) as container:
        container.streams.video[0].thread_count = 1
        for frame in container.decode(video=0):
            frame.to_ndarray(format="rgb24")


def bench_clip_vs_whole(videos: dict[str, Path], repeats: int) -> str:
    sampling = ClipSampling(num_frames=16, sampling_rate=2)
    title = "Decoding, one thread, median of alternating runs"
    rows, measurements = [], []
    for name, path in videos.items():
        rng = random.Random(0)

        def clip() -> None:
            info = probe(path)
            decode_frames(path, sampling.train_clip(info.num_frames, info.fps, rng), info, threads=1)

        measured = time_interleaved({"16x2 clip": clip, "whole file": lambda: decode_whole(path)}, torch.device("cpu"),
                                    repeats=repeats, label=title, description=name)
        measurements += measured.values()
        rows.append([name, f"{probe(path).num_frames}", f"**{measured['16x2 clip'].median / measured['whole file'].median:.2f}**"])
    return compare_table(measurements) + "\n\n" + markdown_table(["video", "frames", "clip / whole"], rows)


def loader_clips_per_second(path: Path, workers: int, num_items: int) -> float:
    entries = [VideoEntry(str(path), 0)] * num_items
    transform = ClipTransform(crop_size=224, train_scale=(224, 256), test_scale=224)
    dataset = VideoClipDataset(entries, ["video"], mode="train", sampling=ClipSampling(16, 2), transform=transform)
    loader = DataLoader(dataset, batch_size=8, num_workers=workers, collate_fn=collate_clips)
    iterator = iter(loader)
    next(iterator)  # start-up (worker processes, first batch) is not throughput
    start, clips = time.perf_counter(), 0
    for batch in iterator:
        clips += len(batch["video"])
    return clips / (time.perf_counter() - start)


def bench_loader(videos: dict[str, Path], num_items: int) -> str:
    rows = []
    for name, path in videos.items():
        in_process = loader_clips_per_second(path, 0, num_items)
        two_workers = loader_clips_per_second(path, 2, num_items)
        rows.append([name, f"{in_process:.1f}", f"{two_workers:.1f}", f"{two_workers / in_process:.2f}"])
    header = ["video", "main process clips/s", "2 workers clips/s", "ratio"]
    return "Training clips 16x2 -> 224x224 uint8 (probe, decode, jitter, crop, flip), batch 8\n\n" + markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--loader-items", type=int, default=200, help="clips read per loader measurement")
    parser.add_argument("--quick", action="store_true", help="2 s videos, few repeats and items")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeats, args.loader_items = 2, 2, 24
    torch.set_num_threads(1)  # as in a loader worker
    with tempfile.TemporaryDirectory() as folder:
        videos = {f"{w}x{h}, {args.seconds} s": make_video(Path(folder) / f"{w}x{h}.mp4", w, h, args.seconds) for w, h in ((320, 240), (456, 256))}
        print(f"torch {torch.__version__}, PyAV {av.__version__}\n")
        print(bench_clip_vs_whole(videos, args.repeats), end="\n\n")
        print(bench_loader(videos, args.loader_items))


if __name__ == "__main__":
    main()
