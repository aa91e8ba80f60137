"""Decoding clips from video files with PyAV, touching only the frames a clip needs.

Frame ``i`` of a video is the ``i``-th frame in presentation order. A clip is decoded in one open
of the file: seek to the keyframe at or before its first frame, decode forward, convert only the
wanted frames to RGB with one reused converter (downscaled in it when asked), and stop after the
last one. Where the container stores presentation timestamps (mp4/mov, mkv/webm) frames are
placed by timestamp, so the decoder may skip the unwanted frames nothing refers to (about 40 %
of a typical H.264 file's frames; docs/data.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from darts_video.errors import DartsVideoError

# Containers whose frames carry their presentation timestamp. Others (AVI) may label B-frames
# with decode-order timestamps; there frames are counted from the first one after the seek.
PRESENTATION_TIMESTAMP_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm")


class VideoDecodeError(DartsVideoError, RuntimeError):
    """A video that cannot be read: ``path: reason``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass(frozen=True, eq=False)
class VideoInfo:
    fps: float
    width: int
    height: int
    pts: np.ndarray  # int64 presentation timestamps of every demuxed video packet, sorted
    presentation_pts: bool = False  # decoded frames carry these timestamps (see PRESENTATION_TIMESTAMP_FORMATS)

    @property
    def num_frames(self) -> int:
        """Video packets actually demuxed: known for mkv/webm too, never inflated by a cut file."""
        return len(self.pts)


def probe(path: str | Path) -> VideoInfo:
    """Find every frame's timestamp by demuxing the video packets (no decoding; milliseconds)."""
    with _open(path) as container:
        return _probe_open(container, _video_stream(container, path), path)


def _probe_open(container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: str | Path) -> VideoInfo:
    pts = np.sort(np.array([p.pts for p in container.demux(stream) if p.size > 0 and p.pts is not None], dtype=np.int64))
    if len(pts) == 0:
        raise VideoDecodeError(path, "no decodable video frame")
    rate = stream.average_rate or stream.guessed_rate
    if rate:
        fps = float(rate)
    elif len(pts) > 1:
        fps = 1.0 / float(np.median(np.diff(pts)) * stream.time_base)
    else:
        fps = 1.0
    return VideoInfo(fps, stream.codec_context.width, stream.codec_context.height, pts,
                     container.format.name in PRESENTATION_TIMESTAMP_FORMATS)


def decode_frames(
    path: str | Path,
    indices: Sequence[int],
    info: VideoInfo | None = None,
    short_side: int | None = None,
    threads: int = 1,
) -> torch.Tensor:
    """The frames at ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, 3)`` RGB.

    ``info`` is the video's frame index (from :func:`probe` or a
    :class:`~darts_video.data.index.VideoIndex`); without it the file is demuxed first, in the
    same open. Where timestamps are not presentation timestamps, the first frame decoded after the
    seek is placed by the rank of its timestamp and the frames after it are counted, since a
    decoder outputs presentation order even where a container's timestamps are unreliable
    (B-frames in AVI). ``short_side`` resizes each kept frame so its shorter side has that length,
    in the converter. ``threads=1`` is right inside DataLoader workers (multi-threaded decoding
    that stops early has been reported to hang); the main process may use more (0: FFmpeg
    decides). An index past the last frame that actually decodes (a cut file) gets the last
    decoded frame.
    """
    if len(indices) == 0:
        raise ValueError("decode_frames needs at least one frame index")
    wanted = sorted({int(i) for i in indices})
    if wanted[0] < 0:
        raise ValueError(f"{path}: negative frame index {wanted[0]}")
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream.thread_count = threads
        probed = info is None
        if probed:
            info = _probe_open(container, stream, path)
        first = min(wanted[0], info.num_frames - 1)
        if first > 0 or probed:
            try:  # to the keyframe at or before the first wanted frame
                container.seek(int(info.pts[first]), backward=True, any_frame=False, stream=stream)
            except av.error.FFmpegError:
                pass  # an unseekable file is decoded from its start
        convert = _Converter(short_side, threads)
        collect = _collect_by_timestamp if info.presentation_pts else _collect_by_count
        frames: dict[int, np.ndarray] = {}
        try:
            collect(container, stream, info, wanted, frames, convert)
        except av.error.FFmpegError as error:  # a cut or corrupt stream: keep what decoded
            if not frames:
                raise VideoDecodeError(path, f"decoding failed: {error}") from error
    if not frames:
        raise VideoDecodeError(path, f"no frame decoded at or after index {wanted[0]} (video has {info.num_frames})")
    for index in wanted:
        if index not in frames:
            frames[index] = _nearest_before(frames, index)
    return torch.from_numpy(np.stack([frames[int(i)] for i in indices]))


def _collect_by_timestamp(container, stream, info: VideoInfo, wanted: list[int], frames: dict, convert) -> None:
    """Frames placed by their timestamps; the decoder skips unwanted frames nothing refers to."""
    wanted_set, context = set(wanted), stream.codec_context
    for packet in container.demux(stream):
        if packet.pts is not None:  # (the empty packet at the end flushes the decoder)
            rank = int(np.searchsorted(info.pts, packet.pts))
            context.skip_frame = "DEFAULT" if rank in wanted_set else "NONREF"
        for frame in context.decode(packet):
            if frame.pts is None:
                continue
            index = int(np.searchsorted(info.pts, frame.pts))
            if index in wanted_set:
                frames[index] = convert(frame)
            if index >= wanted[-1] or len(frames) == len(wanted_set):
                return


def _collect_by_count(container, stream, info: VideoInfo, wanted: list[int], frames: dict, convert) -> None:
    """Frames counted in output order from the first one, which is placed by its timestamp."""
    wanted_set, index = set(wanted), None
    for frame in container.decode(stream):
        if index is None:
            if frame.pts is None:
                continue
            index = int(np.searchsorted(info.pts, frame.pts))
        else:
            index += 1
        if index > wanted[-1]:
            return
        if index in wanted_set:
            frames[index] = convert(frame)


class _Converter:
    """YUV -> RGB uint8 with one software scaler for the whole clip: a fresh one per frame
    (``frame.to_ndarray``) costs 3-7x as much on small clips (benchmarks/profile_clip.py)."""

    def __init__(self, short_side: int | None, threads: int) -> None:
        self.short_side, self.threads, self.reformatter = short_side, threads, VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        width = height = None
        if self.short_side is not None:
            scale = self.short_side / min(frame.width, frame.height)
            width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
        return self.reformatter.reformat(frame, width=width, height=height, format="rgb24", threads=self.threads).to_ndarray()


def _nearest_before(frames: dict[int, np.ndarray], index: int) -> np.ndarray:
    earlier = [i for i in frames if i < index]
    return frames[max(earlier)] if earlier else frames[min(frames)]


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
