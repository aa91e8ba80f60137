"""Check every video of a dataset up front and write the list of bad ones.

    python scripts/scan_videos.py LIST [--prefix DIR] [--out bad_videos.txt] [--workers 4] [--full] [--video-index FILE]

LIST is a ``path label`` list file. Each video is demuxed once into the frame index (written to
``--video-index``, the file the search and the retraining take with the same option, so they
need not probe again), and its first and last frames are decoded (``--full``: every frame). Bad videos go to ``--out`` as ``path<TAB>reason``
lines, which every dataset accepts as an exclusion file (``exclude=...``). Exits 1 when any video
is bad, so it can gate a pipeline.
"""

from __future__ import annotations

import argparse
import sys
from multiprocessing import Pool
from pathlib import Path

from darts_video.cli import DocstringHelpFormatter
from darts_video.data.annotations import read_list_file, write_exclusions
from darts_video.data.decode import VideoDecodeError, decode_frames
from darts_video.data.index import VideoIndex, build_index
from darts_video.engine.progress import progress


_index: VideoIndex | None = None  # each worker's copy of the frame index


def _keep_index(index: VideoIndex) -> None:
    global _index
    _index = index


def check_video(job: tuple[int, bool]) -> tuple[str, str | None]:
    """(path, None) for a good video, (path, reason) for a bad one: row ``job[0]`` of the index."""
    row, full = job
    path = _index.path(row)
    try:
        info = _index.info(row)  # raises the reason probing failed
        indices = range(info.num_frames) if full else sorted({0, info.num_frames - 1})
        decode_frames(path, indices, info, short_side=64)
    except VideoDecodeError as error:
        return path, error.reason
    return path, None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("list", type=Path, help="a 'path label' list file")
    parser.add_argument("--prefix", type=Path, help="folder the list's paths are relative to (default: the working directory)")
    parser.add_argument("--out", type=Path, default=Path("bad_videos.txt"), help="where to write the bad list")
    parser.add_argument("--workers", type=int, default=4, help="parallel processes")
    parser.add_argument("--full", action="store_true", help="decode every frame, not only the first and last")
    parser.add_argument("--video-index", type=Path, help="write (or bring up to date) the videos' frame index in this .npz file (default: write none)")
    return parser


def main() -> int:
    args = build_parser().parse_args()

    paths = sorted({entry.path for entry in read_list_file(args.list, args.prefix).entries})
    index = build_index(paths, args.video_index, args.workers)
    jobs = [(row, args.full) for row in range(len(paths))]
    with Pool(args.workers, initializer=_keep_index, initargs=(index,)) as pool:
        results = list(progress(pool.imap_unordered(check_video, jobs, chunksize=4), "scanning", unit="video", total=len(jobs)))
    bad = sorted((path, reason) for path, reason in results if reason is not None)
    write_exclusions(bad, args.out)
    print(f"{len(paths) - len(bad)} good, {len(bad)} bad of {len(paths)} videos; bad list: {args.out}")
    for path, reason in bad[:20]:
        print(f"  {path}: {reason}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
