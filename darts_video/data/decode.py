"""Decoding clips from video files with PyAV, touching only the frames a clip needs.

Frame ``i`` of a video is the ``i``-th frame in presentation order. A clip is decoded by seeking
to the keyframe at or before its first frame, decoding forward, converting only the wanted frames
(downscaled in the converter when asked) and stopping after the last one.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch


class VideoDecodeError(RuntimeError):
    """A video that cannot be read: ``path: reason``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int
    pts: tuple[int, ...]  # presentation timestamps of every demuxed video packet, sorted

    @property
    def num_frames(self) -> int:
        """Video packets actually demuxed: known for mkv/webm too, never inflated by a cut file."""
        return len(self.pts)


def probe(path: str | Path) -> VideoInfo:
    """Find every frame's timestamp by demuxing the video packets (no decoding; milliseconds)."""
    with _open(path) as container:
        stream = _video_stream(container, path)
        pts = tuple(sorted(packet.pts for packet in container.demux(stream) if packet.size > 0 and packet.pts is not None))
        if not pts:
            raise VideoDecodeError(path, "no decodable video frame")
        rate = stream.average_rate or stream.guessed_rate
        if rate:
            fps = float(rate)
        elif len(pts) > 1:
            fps = 1.0 / float(np.median(np.diff(pts)) * stream.time_base)
        else:
            fps = 1.0
        return VideoInfo(fps, stream.codec_context.width, stream.codec_context.height, pts)


def decode_frames(
    path: str | Path,
    indices: Sequence[int],
    info: VideoInfo | None = None,
    short_side: int | None = None,
    threads: int = 1,
) -> torch.Tensor:
    """The frames at ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, 3)`` RGB.

    The first frame decoded after the seek is placed by the rank of its timestamp among all
    frames'; the frames after it are counted, since a decoder outputs presentation order even where
    a container's timestamps are unreliable (B-frames in AVI). ``short_side`` resizes each kept
    frame so its shorter side has that length, in the converter. ``threads=1`` is right inside
    DataLoader workers (multi-threaded decoding that stops early has been reported to hang); the
    main process may use more (0: FFmpeg decides). An index past the last frame that actually
    decodes (a cut file) gets the last decoded frame.
    """
    if len(indices) == 0:
        raise ValueError("decode_frames needs at least one frame index")
    info = info or probe(path)
    wanted_set = {int(i) for i in indices}
    wanted = sorted(wanted_set)
    if wanted[0] < 0:
        raise ValueError(f"{path}: negative frame index {wanted[0]}")
    frames: dict[int, np.ndarray] = {}
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream.thread_count = threads
        if 0 < wanted[0] < info.num_frames:
            try:  # to the keyframe at or before the first wanted frame
                container.seek(info.pts[wanted[0]], backward=True, any_frame=False, stream=stream)
            except av.error.FFmpegError:
                pass  # an unseekable file is decoded from its start
        index = None
        try:
            for frame in container.decode(stream):
                if index is None:
                    if frame.pts is None:
                        continue
                    index = bisect.bisect_left(info.pts, frame.pts)
                else:
                    index += 1
                if index > wanted[-1]:
                    break
                if index in wanted_set:
                    frames[index] = _to_rgb(frame, short_side)
        except av.error.FFmpegError as error:  # a cut or corrupt stream: keep what decoded
            if not frames:
                raise VideoDecodeError(path, f"decoding failed: {error}") from error
    if not frames:
        raise VideoDecodeError(path, f"no frame decoded at or after index {wanted[0]} (video has {info.num_frames})")
    for index in wanted:
        if index not in frames:
            frames[index] = _nearest_before(frames, index)
    return torch.from_numpy(np.stack([frames[int(i)] for i in indices]))


def _nearest_before(frames: dict[int, np.ndarray], index: int) -> np.ndarray:
    earlier = [i for i in frames if i < index]
    return frames[max(earlier)] if earlier else frames[min(frames)]


def _to_rgb(frame: av.VideoFrame, short_side: int | None) -> np.ndarray:
    if short_side is None:
        return frame.to_ndarray(format="rgb24")
    scale = short_side / min(frame.width, frame.height)
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    return frame.to_ndarray(format="rgb24", width=width, height=height)


def _open(path: str | Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError as error:
        raise VideoDecodeError(path, "file not found") from error
    except (av.error.FFmpegError, OSError) as error:
        raise VideoDecodeError(path, f"cannot open: {error}") from error


def _video_stream(container: av.container.InputContainer, path: str | Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise VideoDecodeError(path, "no video stream")
    return container.streams.video[0]
