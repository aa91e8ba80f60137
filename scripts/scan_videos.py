"""Check every video of a dataset up front and write the list of bad ones.

    python scripts/scan_videos.py LIST [--prefix DIR] [--out bad_videos.txt] [--workers 4] [--full]

LIST is a ``path label`` list file. Each video is demuxed to count its frames, and its first and
last frames are decoded (``--full``: every frame). Bad videos go to ``--out`` as ``path<TAB>reason``
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
from darts_video.data.decode import VideoDecodeError, decode_frames, probe
from darts_video.engine.progress import progress


def check_video(job: tuple[str, bool]) -> tuple[str, str | None]:
    """(path, None) for a good video, (path, reason) for a bad one."""
    path, full = job
    try:
        info = probe(path)
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
    return parser


def main() -> int:
    args = build_parser().parse_args()

    paths = sorted({entry.path for entry in read_list_file(args.list, args.prefix).entries})
    jobs = [(path, args.full) for path in paths]
    with Pool(args.workers) as pool:
        results = list(progress(pool.imap_unordered(check_video, jobs, chunksize=4), "scanning", unit="video", total=len(jobs)))
    bad = sorted((path, reason) for path, reason in results if reason is not None)
    write_exclusions(bad, args.out)
    print(f"{len(paths) - len(bad)} good, {len(bad)} bad of {len(paths)} videos; bad list: {args.out}")
    for path, reason in bad[:20]:
        print(f"  {path}: {reason}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
