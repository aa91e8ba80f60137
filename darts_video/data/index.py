"""The frame index of a dataset's videos: probed once per video, kept in a few flat numpy arrays.

A training sample needs the video's frame count, rate and timestamps before it decodes. Probing
them per sample demuxes the whole file and opens it a second time; a list of per-video Python
objects would be copied into every DataLoader worker as reference counts touch it (a
Kinetics-600 training set has about 400,000 videos). Here every video is one row of numpy
arrays, shared by forked workers without copies: evenly spaced timestamps (constant frame rate:
most files) are stored as first + step, about 80 bytes per video plus its path (a 400,000-video
index: about 55 MB); others keep every timestamp (8 bytes per frame). A video that failed to probe keeps its reason, which
the dataset raises when the video is drawn, so bad videos are handled as before.

The index can be cached in an ``.npz`` file (read without pickle): rows whose file has the same
size and modification time are reused, others probed again, and the file keeps the rows of every
dataset that used it (train, val and test can share one).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from darts_video.data.decode import VideoDecodeError, VideoInfo, probe
from darts_video.errors import ConfigError
from darts_video.utils.files import atomic_write_bytes

FORMAT_VERSION = 1
_ROW_FIELDS = {  # per-video arrays and their dtypes
    "size": np.int64, "mtime_ns": np.int64, "fps": np.float64, "width": np.int32, "height": np.int32,
    "num_frames": np.int64, "first_pts": np.int64, "pts_step": np.int64, "presentation_pts": np.bool_,
}
_RAGGED_FIELDS = ("path", "irregular_pts", "error")  # stored flat, with N + 1 offsets each


class VideoIndex:
    """Rows of probed videos; ``info(row)`` rebuilds a :class:`VideoInfo` in microseconds."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays["size"])

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.arrays.values())

    def path(self, row: int) -> str:
        return self._ragged("path", row).tobytes().decode()

    def error(self, row: int) -> str | None:
        """Why the video could not be probed, or None."""
        reason = self._ragged("error", row).tobytes().decode()
        return reason or None

    def info(self, row: int) -> VideoInfo:
        """The video's frame index; raises :class:`VideoDecodeError` for a video that failed to probe."""
        reason = self.error(row)
        if reason is not None:
            raise VideoDecodeError(self.path(row), reason)
        a = self.arrays
        irregular = self._ragged("irregular_pts", row)
        pts = irregular if len(irregular) else a["first_pts"][row] + a["pts_step"][row] * np.arange(a["num_frames"][row], dtype=np.int64)
        return VideoInfo(float(a["fps"][row]), int(a["width"][row]), int(a["height"][row]), pts, bool(a["presentation_pts"][row]))

    def rows(self) -> dict[str, int]:
        return {self.path(row): row for row in range(len(self))}

    def take(self, rows: Sequence[int]) -> VideoIndex:
        """A new index of ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        arrays = {name: self.arrays[name][rows] for name in _ROW_FIELDS}
        for name in _RAGGED_FIELDS:
            parts = [self._ragged(name, row) for row in rows]
            arrays[name], arrays[f"{name}_offsets"] = _flatten(parts, self.arrays[name].dtype)
        return VideoIndex(arrays)

    def save(self, path: str | Path) -> Path:
        buffer = io.BytesIO()
        np.savez(buffer, version=np.array(FORMAT_VERSION), **self.arrays)
        return atomic_write_bytes(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> VideoIndex:
        try:
            with np.load(path, allow_pickle=False) as file:
                arrays = {name: file[name] for name in file.files}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise ConfigError(f"{path}: not a readable video index ({error}); delete it to rebuild") from error
        version = int(arrays.pop("version", -1))
        expected = set(_ROW_FIELDS) | set(_RAGGED_FIELDS) | {f"{n}_offsets" for n in _RAGGED_FIELDS}
        if version != FORMAT_VERSION or set(arrays) != expected:
            raise ConfigError(f"{path}: a video index of another format (version {version}); delete it to rebuild")
        return cls(arrays)

    @classmethod
    def from_rows(cls, rows: Sequence[dict]) -> VideoIndex:
        arrays = {name: np.array([row[name] for row in rows], dtype=dtype) for name, dtype in _ROW_FIELDS.items()}
        for name, dtype in (("path", np.uint8), ("irregular_pts", np.int64), ("error", np.uint8)):
            arrays[name], arrays[f"{name}_offsets"] = _flatten([row[name] for row in rows], dtype)
        return cls(arrays)

    def _ragged(self, name: str, row: int) -> np.ndarray:
        offsets = self.arrays[f"{name}_offsets"]
        return self.arrays[name][offsets[row] : offsets[row + 1]]


def build_index(paths: Sequence[str], cache: str | Path | None = None, processes: int = 1) -> VideoIndex:
    """The index of ``paths`` (in that order), probing only what ``cache`` lacks or has stale.

    ``processes > 1`` probes in parallel. With ``cache``, the file is rewritten when anything was
    probed, keeping its other rows.
    """
    cached = VideoIndex.load(cache) if cache is not None and Path(cache).is_file() else None
    known = cached.rows() if cached is not None else {}
    stats = [_stat(path) for path in paths]
    reuse = {i: known[p] for i, p in enumerate(paths) if p in known and _same_file(cached, known[p], stats[i])}
    todo = list(dict.fromkeys(p for i, p in enumerate(paths) if i not in reuse))  # each file once, even if listed twice
    probed = dict(zip(todo, _probe_all(todo, processes)))
    if cached is not None and not probed:
        return cached.take([reuse[i] for i in range(len(paths))])
    rows = [_row_of(cached, reuse[i]) if i in reuse else probed[p] for i, p in enumerate(paths)]
    index = VideoIndex.from_rows(rows)
    if cache is not None:
        requested = set(paths)
        kept = [_row_of(cached, row) for p, row in known.items() if p not in requested]
        VideoIndex.from_rows(rows + kept).save(cache)
    return index


def probe_row(path: str) -> dict:
    """One video's row: its probe, or the reason it failed."""
    size, mtime_ns = _stat(path)
    row = {"path": np.frombuffer(path.encode(), np.uint8), "size": size, "mtime_ns": mtime_ns, "fps": 0.0, "width": 0,
           "height": 0, "num_frames": 0, "first_pts": 0, "pts_step": 0, "presentation_pts": False,
           "irregular_pts": np.zeros(0, np.int64), "error": np.zeros(0, np.uint8)}
    try:
        info = probe(path)
    except VideoDecodeError as error:
        return {**row, "error": np.frombuffer(error.reason.encode(), np.uint8)}
    steps = np.diff(info.pts)
    regular = len(steps) == 0 or bool((steps == steps[0]).all())
    row.update(fps=info.fps, width=info.width, height=info.height, num_frames=info.num_frames, first_pts=int(info.pts[0]),
               pts_step=int(steps[0]) if len(steps) else 0, presentation_pts=info.presentation_pts)
    if not regular:
        row["irregular_pts"] = info.pts
    return row


def _probe_all(paths: list[str], processes: int) -> list[dict]:
    progress = dict(total=len(paths), desc="indexing videos", unit="video", disable=len(paths) < 1000)
    if processes <= 1 or len(paths) < 2 * processes:
        return list(tqdm(map(probe_row, paths), **progress))
    with Pool(processes) as pool:
        return list(tqdm(pool.imap(probe_row, paths, chunksize=16), **progress))


def _row_of(index: VideoIndex, row: int) -> dict:
    values = {name: index.arrays[name][row] for name in _ROW_FIELDS}
    return {**values, **{name: index._ragged(name, row) for name in _RAGGED_FIELDS}}


def _stat(path: str) -> tuple[int, int]:
    try:
        status = os.stat(path)
    except OSError:
        return -1, -1
    return status.st_size, status.st_mtime_ns


def _same_file(index: VideoIndex, row: int, stat: tuple[int, int]) -> bool:
    return (int(index.arrays["size"][row]), int(index.arrays["mtime_ns"][row])) == stat


def _flatten(parts: Sequence[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(part) for part in parts])
    flat = np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
    return flat, offsets
