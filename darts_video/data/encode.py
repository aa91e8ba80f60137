"""Writing frames to real video files with PyAV (the procedural dataset on disk, benchmarks, tests)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 8,
    codec: str = "libx264",
    lossless: bool = True,
    keyframe_interval: int | None = None,
) -> Path:
    """Encode uint8 RGB frames ``(T, H, W, 3)``.

    ``lossless`` uses H.264 at qp 0 in 4:4:4 (no chroma subsampling, so small coloured objects keep
    their colour up to the RGB <-> YUV rounding); otherwise 4:2:0 at the encoder's default quality.
    ``keyframe_interval`` fixes the GOP length in frames (e.g. 2 s of video).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _, height, width, _ = frames.shape
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p" if lossless else "yuv420p"
        options = {"qp": "0"} if lossless and codec == "libx264" else {}
        if keyframe_interval:
            stream.codec_context.gop_size = keyframe_interval
            options.update({"keyint_min": str(keyframe_interval), "sc_threshold": "0"} if codec == "libx264" else {})
        stream.options = options
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
