"""Decoder and loader throughput on videos like Kinetics clips, with decord as the reference.

    python benchmarks/bench_data.py            # 320x240 and 456x256 encodes (10 s, keyframe every 2 s) + a real Kinetics clip
    python benchmarks/bench_data.py --quick    # 2 s videos, few repeats: checks the script runs

Encodes its own test videos (H.264 4:2:0, 25 fps, a GOP of 2 s, moving textured content) and adds
the vendored Kinetics clip (tests/data/videos/arm_wrestling.mp4), then measures, alternating in
one run:
- one 16x2 training clip: this package's path (PyAV, the video's frame index known, as a dataset
  item decodes it) against decord (``VideoReader`` + ``get_batch``, what MMAction2 users switch to
  for speed), one thread each, the same clip indices; and decoding every frame of the file;
- the clips/s of a DataLoader with 2 workers over training clips (decode + scale jitter + crop +
  flip, uint8: the loop normalises on its device), for both decoders with the same sampling and
  transform, next to this package's dataset read in the main process.
decord is a benchmark-only reference, not a requirement: without it (``pip install decord``) its
columns are skipped.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader

from darts_video.data import ClipSampling, ClipTransform, EpochSampler, VideoClipDataset, VideoEntry, collate_clips, decode_frames, probe
from darts_video.data.encode import write_video
from timing import compare_table, markdown_table, time_interleaved

try:
    import decord
except ImportError:
    decord = None

FPS = 25
KINETICS_CLIP = Path(__file__).resolve().parents[1] / "tests" / "data" / "videos" / "arm_wrestling.mp4"
NO_DECORD = "decord is not installed (pip install decord): its columns are skipped"


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


def bench_clips(videos: dict[str, Path], repeats: int) -> str:
    sampling = ClipSampling(num_frames=16, sampling_rate=2)
    title = "Decoding, one thread, median of alternating runs"
    rows, measurements = [], []
    for name, path in videos.items():
        info = probe(path)  # what the dataset's frame index holds
        rng = random.Random(0)
        clips = [sampling.train_clip(info.num_frames, info.fps, rng) for _ in range(repeats + 1)]
        turn = {"pyav": 0, "decord": 0}

        def next_clip(decoder: str) -> list[int]:
            turn[decoder] += 1
            return clips[(turn[decoder] - 1) % len(clips)]

        candidates = {"16x2 clip (PyAV)": lambda: decode_frames(path, next_clip("pyav"), info, threads=1),
                      "whole file (PyAV)": lambda: decode_whole(path)}
        if decord is not None:
            candidates["16x2 clip (decord)"] = lambda: decord.VideoReader(str(path), num_threads=1).get_batch(next_clip("decord")).asnumpy()
        measured = time_interleaved(candidates, torch.device("cpu"), repeats=repeats, label=title, description=name)
        measurements += measured.values()
        pyav, whole = measured["16x2 clip (PyAV)"].median, measured["whole file (PyAV)"].median
        reference = f"**{pyav / measured['16x2 clip (decord)'].median:.2f}**" if decord is not None else "–"
        rows.append([name, f"{info.num_frames}", reference, f"{pyav / whole:.2f}"])
    return compare_table(measurements) + "\n\n" + markdown_table(["video", "frames", "PyAV / decord", "clip / whole"], rows)


class DecordClipDataset(VideoClipDataset):
    """The same samples decoded by decord, as MMAction2's DecordInit + DecordDecode do: the reader
    opens and indexes the file itself, then ``get_batch`` decodes the clip."""

    def _load(self, row: int, clip: int, rng) -> torch.Tensor:
        reader = decord.VideoReader(self.index.path(row), num_threads=1)
        indices = self.sampling.train_clip(len(reader), reader.get_avg_fps(), rng)
        return self.transform.train(torch.from_numpy(reader.get_batch(indices).asnumpy()), rng)  # (T, H, W, 3) -> (C, T, H, W)


def clips_per_second(dataset: VideoClipDataset, workers: int) -> float:
    loader = DataLoader(dataset, batch_size=8, sampler=EpochSampler(range(len(dataset)), shuffle=False), num_workers=workers,
                        collate_fn=collate_clips)
    iterator = iter(loader)
    next(iterator)  # start-up (worker processes, first batch) is not throughput
    start, clips = time.perf_counter(), 0
    for batch in iterator:
        clips += len(batch["video"])
    return clips / (time.perf_counter() - start)


def bench_loader(videos: dict[str, Path], num_items: int, rounds: int) -> str:
    sampling, transform = ClipSampling(16, 2), ClipTransform(crop_size=224, train_scale=(224, 256), test_scale=224)
    rows = []
    for name, path in videos.items():
        entries = [VideoEntry(str(path), 0)] * num_items
        datasets = {"pyav": VideoClipDataset(entries, ["video"], sampling=sampling, transform=transform)}
        if decord is not None:
            datasets["decord"] = DecordClipDataset(entries, ["video"], sampling=sampling, transform=transform)
        in_process = clips_per_second(datasets["pyav"], 0)
        rates = {decoder: [] for decoder in datasets}
        for _ in range(rounds):  # alternate the decoders, keep the median
            for decoder, dataset in datasets.items():
                rates[decoder].append(clips_per_second(dataset, 2))
        pyav = statistics.median(rates["pyav"])
        if decord is not None:
            other = statistics.median(rates["decord"])
            reference = [f"{other:.1f}", f"**{pyav / other:.2f}**"]
        else:
            reference = ["–", "–"]
        rows.append([name, f"{in_process:.1f}", f"{pyav:.1f}", *reference])
    header = ["video", "main process clips/s (PyAV)", "2 workers clips/s (PyAV)", "2 workers clips/s (decord)", "PyAV / decord"]
    return ("Training clips 16x2 -> 224x224 uint8 (decode, jitter, crop, flip), batch 8, median of alternating runs\n\n"
            + markdown_table(header, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--loader-items", type=int, default=200, help="clips read per loader measurement")
    parser.add_argument("--loader-rounds", type=int, default=3, help="alternating loader measurements per decoder")
    parser.add_argument("--quick", action="store_true", help="2 s videos, few repeats and items")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeats, args.loader_items, args.loader_rounds = 2, 2, 16, 1
    torch.set_num_threads(1)  # as in a loader worker
    with tempfile.TemporaryDirectory() as folder:
        videos = {f"{w}x{h}, {args.seconds} s": make_video(Path(folder) / f"{w}x{h}.mp4", w, h, args.seconds) for w, h in ((320, 240), (456, 256))}
        videos["arm_wrestling.mp4 (Kinetics, 340x256, 10 s)"] = KINETICS_CLIP
        print(f"torch {torch.__version__}, PyAV {av.__version__}, " + (f"decord {decord.__version__}" if decord else NO_DECORD) + "\n")
        print(bench_clips(videos, args.repeats), end="\n\n")
        print(bench_loader(videos, args.loader_items, args.loader_rounds))


if __name__ == "__main__":
    main()
