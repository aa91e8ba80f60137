"""Where a training clip's decoding time goes: open, demux (probe), seek, decode, colour conversion.

    python benchmarks/profile_clip.py            # the vendored real videos + a Kinetics-like encode
    python benchmarks/profile_clip.py --quick    # few clips: checks the script runs

For random training clips (16x2 and 8x8 at the video's rate, one decoding thread) the phases of
PyAV's path are timed one by one with the same calls the dataset makes:
- open: ``av.open`` and the stream lookup (paid twice per sample while the probe opened the file
  itself);
- demux: reading every video packet's timestamp (the per-sample probe, before the frame index
  was computed once per video);
- seek: ``container.seek`` to the keyframe at or before the clip's first frame;
- decode: decoding every frame from that keyframe to the clip's last frame (pre-roll + span),
  without conversion;
- convert: YUV -> RGB of the clip's frames (``frame.to_ndarray`` per frame, then a reused
  ``VideoReformatter``, side by side).
Means over the clips, in ms, and each phase's share of the sum (the path before the frame index),
then the same clip through today's ``decode_frames`` (index known, one open, one reused
converter, unwanted non-reference frames skipped in mp4).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from bench_data import make_video
from darts_video.data.decode import decode_frames, probe
from darts_video.data.sampling import ClipSampling
from timing import markdown_table

VENDORED = Path(__file__).resolve().parents[1] / "tests" / "data" / "videos"
PHASES = ("open", "demux", "seek", "decode", "convert (to_ndarray)", "convert (reused reformatter)", "decode_frames")


def profile_clip(path: Path, indices: list[int]) -> tuple[dict[str, float], int]:
    """Seconds per phase for one clip, and the number of frames decoded."""
    seconds = dict.fromkeys(PHASES, 0.0)
    start = time.perf_counter()
    container = av.open(str(path))
    stream = container.streams.video[0]
    stream.thread_count = 1
    seconds["open"] = time.perf_counter() - start
    start = time.perf_counter()
    pts = sorted(p.pts for p in container.demux(stream) if p.size > 0 and p.pts is not None)
    seconds["demux"] = time.perf_counter() - start
    wanted = set(indices)
    start = time.perf_counter()
    container.seek(pts[min(indices)], backward=True, any_frame=False, stream=stream)
    seconds["seek"] = time.perf_counter() - start
    kept, decoded, index = [], 0, None
    frames = container.decode(stream)
    while True:
        start = time.perf_counter()
        frame = next(frames, None)
        seconds["decode"] += time.perf_counter() - start
        if frame is None:
            break
        decoded += 1
        index = int(np.searchsorted(pts, frame.pts)) if index is None else index + 1
        if index in wanted:
            kept.append(frame)
        if index >= max(indices):
            break
    container.close()
    start = time.perf_counter()
    for frame in kept:
        frame.to_ndarray(format="rgb24")
    seconds["convert (to_ndarray)"] = time.perf_counter() - start
    reformatter = VideoReformatter()
    start = time.perf_counter()
    for frame in kept:
        reformatter.reformat(frame, format="rgb24").to_ndarray()
    seconds["convert (reused reformatter)"] = time.perf_counter() - start
    info = probe(path)
    start = time.perf_counter()
    decode_frames(path, indices, info, threads=1)
    seconds["decode_frames"] = time.perf_counter() - start
    return seconds, decoded


def profile_video(path: Path, sampling: ClipSampling, clips: int) -> list[str]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        num_frames = sum(1 for p in container.demux(stream) if p.size > 0)
        fps = float(stream.average_rate)
    rng = random.Random(0)
    totals, decoded = dict.fromkeys(PHASES, 0.0), 0
    profile_clip(path, sampling.train_clip(num_frames, fps, rng))  # warm the file cache
    for _ in range(clips):
        seconds, frames = profile_clip(path, sampling.train_clip(num_frames, fps, rng))
        decoded += frames
        for phase in PHASES:
            totals[phase] += seconds[phase]
    means = {phase: 1e3 * totals[phase] / clips for phase in PHASES}
    today = sum(means[p] for p in PHASES[:5]) + means["open"]  # the probe opened the file once more
    shares = [f"{means[p]:.1f} ({100 * means[p] / today:.0f} %)" for p in PHASES[:5]]
    return [f"{path.name}", f"{sampling.num_frames}x{sampling.sampling_rate}", f"{decoded / clips:.0f}", *shares,
            f"{today:.1f}", f"{means['convert (reused reformatter)']:.1f}", f"**{means['decode_frames']:.1f}**"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=40, help="random clips per video and clip shape")
    parser.add_argument("--quick", action="store_true", help="3 clips per video")
    args = parser.parse_args()
    clips = 3 if args.quick else args.clips
    with tempfile.TemporaryDirectory() as folder:
        videos = [VENDORED / "arm_wrestling.mp4", VENDORED / "mpeg4_320x240.avi",
                  make_video(Path(folder) / "320x240_gop50.mp4", 320, 240, 2 if args.quick else 10)]
        rows = [profile_video(path, sampling, clips) for path in videos for sampling in (ClipSampling(16, 2), ClipSampling(8, 8))]
    print(f"PyAV {av.__version__}, one decoding thread, mean over {clips} random training clips per row\n")
    header = ["video", "clip", "frames decoded", "open ms", "demux ms", "seek ms", "decode ms", "convert ms (to_ndarray)",
              "sum ms (two opens)", "convert ms (reused reformatter)", "decode_frames ms now"]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
