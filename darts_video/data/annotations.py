"""Readers of the annotation formats users have on disk; each returns entries and class names.

- list files (PySlowFast / MMAction2): ``path label`` per line, optional path prefix;
- Kinetics-600 CSVs: ``label,youtube_id,time_start,time_end,split``;
- Moments in Time: ``trainingSet.csv`` / ``validationSet.csv`` and ``moments_categories.txt``;
- a folder per class.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from darts_video.errors import DartsVideoError
from darts_video.utils.files import atomic_write_text

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")


@dataclass(frozen=True)
class VideoEntry:
    path: str
    label: int


@dataclass(frozen=True)
class Annotations:
    entries: list[VideoEntry]
    classes: list[str]
    missing: list[str]  # rows whose video file is not on disk, as "row: reason"


class AnnotationError(DartsVideoError, ValueError):
    """A row that cannot be parsed: ``file:line: reason``."""


def read_list_file(path: str | Path, prefix: str | Path | None = None, classes: list[str] | None = None) -> Annotations:
    """``path label`` per line (the path may contain spaces); blank lines and ``#`` comments skipped."""
    entries = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or int(parts[1]) < 0:
            raise AnnotationError(f"{path}:{number}: expected 'path label' with a non-negative integer label, got {line!r}")
        video = Path(prefix) / parts[0] if prefix is not None else Path(parts[0])
        entries.append(VideoEntry(str(video), int(parts[1])))
    num_classes = max((e.label for e in entries), default=-1) + 1
    if classes is not None and len(classes) < num_classes:
        raise AnnotationError(f"{path}: label {num_classes - 1} but only {len(classes)} class names")
    return Annotations(entries, classes or [str(i) for i in range(num_classes)], [])


def read_kinetics_csv(csv_path: str | Path, root: str | Path, classes: list[str] | None = None) -> Annotations:
    """Kinetics rows; videos named ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` anywhere under ``root``.

    Class indices come from ``classes`` (pass the train split's for val/test) or, when not given,
    from the sorted labels of this CSV, as MMAction2 does.
    """
    rows = []
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        required = {"label", "youtube_id", "time_start", "time_end"}
        if reader.fieldnames is None or not required <= set(reader.fieldnames):
            raise AnnotationError(f"{csv_path}:1: expected the columns {sorted(required)}, got {reader.fieldnames}")
        for number, row in enumerate(reader, start=2):
            try:
                rows.append((number, row["label"], row["youtube_id"], int(float(row["time_start"])), int(float(row["time_end"]))))
            except (TypeError, ValueError) as error:
                raise AnnotationError(f"{csv_path}:{number}: cannot parse {row}: {error}") from None
    classes = classes or sorted({label for _, label, *_ in rows})
    index = {name: i for i, name in enumerate(classes)}
    on_disk = _index_kinetics_files(root)
    entries, missing = [], []
    for number, label, youtube_id, start, end in rows:
        if label not in index:
            raise AnnotationError(f"{csv_path}:{number}: label {label!r} is not among the {len(classes)} classes")
        path = on_disk.get((youtube_id, start, end))
        if path is None:
            missing.append(f"{csv_path}:{number}: {youtube_id}_{start:06d}_{end:06d}: no video file under {root}")
        else:
            entries.append(VideoEntry(path, index[label]))
    return Annotations(entries, classes, missing)


def _index_kinetics_files(root: str | Path) -> dict[tuple[str, int, int], str]:
    """(youtube_id, start, end) -> path, for every video under ``root`` (flat or per-label folders)."""
    found = {}
    for path in _walk_videos(root):
        parts = Path(path).stem.rsplit("_", 2)  # ids may contain '_'
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            found[(parts[0], int(parts[1]), int(parts[2]))] = path
    return found


def read_moments_csv(csv_path: str | Path, video_root: str | Path, categories_path: str | Path) -> Annotations:
    """Moments in Time: rows ``class/file.mp4,label,n_agree,n_disagree`` (no header), files under ``video_root``."""
    categories = {}
    with open(categories_path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            if len(row) != 2 or not row[1].strip().isdigit():
                raise AnnotationError(f"{categories_path}:{number}: expected 'label,index', got {row}")
            categories[row[0]] = int(row[1])
    classes = [name for name, _ in sorted(categories.items(), key=lambda item: item[1])]
    entries, missing = [], []
    with open(csv_path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            if len(row) < 2:
                raise AnnotationError(f"{csv_path}:{number}: expected 'path,label,n_agree,n_disagree', got {row}")
            if row[1] not in categories:
                raise AnnotationError(f"{csv_path}:{number}: label {row[1]!r} is not in {categories_path}")
            path = Path(video_root) / row[0]
            if path.is_file():
                entries.append(VideoEntry(str(path), categories[row[1]]))
            else:
                missing.append(f"{csv_path}:{number}: {path}: no such file")
    return Annotations(entries, classes, missing)


def read_class_folders(root: str | Path, classes: list[str] | None = None) -> Annotations:
    """``root/<class>/**/<video>``; classes are the sorted folder names, or ``classes`` (pass the
    train split's for val/test, so a split that lacks a class keeps the same label indices)."""
    folders = sorted(entry.name for entry in Path(root).iterdir() if entry.is_dir())
    if not folders:
        raise AnnotationError(f"{root}: no class folder")
    unknown = [name for name in folders if classes is not None and name not in classes]
    if unknown:
        raise AnnotationError(f"{root}: class folders {unknown} are not among the {len(classes)} classes")
    classes = classes or folders
    entries = [VideoEntry(path, label) for label, name in enumerate(classes) for path in sorted(_walk_videos(Path(root) / name))]
    return Annotations(entries, classes, [])


def write_label_map(classes: Iterable[str], path: str | Path) -> Path:
    """MMAction2's label map: one class name per line, the line number is the index."""
    return atomic_write_text(Path(path), "".join(f"{name}\n" for name in classes))


def read_label_map(path: str | Path) -> list[str]:
    return [line for line in Path(path).read_text().splitlines() if line]


def write_exclusions(bad: Iterable[tuple[str, str]], path: str | Path) -> Path:
    """A bad-video file: ``path<TAB>reason`` per line, sorted; :func:`read_exclusions` reads it."""
    return atomic_write_text(Path(path), "".join(f"{video}\t{reason}\n" for video, reason in sorted(bad)))


def read_exclusions(path: str | Path) -> set[str]:
    """Paths listed in a bad-video file (``path<TAB>reason`` lines, as ``scan_videos.py`` writes)."""
    lines = Path(path).read_text().splitlines()
    return {line.split("\t", 1)[0] for line in lines if line.strip() and not line.startswith("#")}


def _walk_videos(root: str | Path) -> Iterable[str]:
    for folder, _, files in os.walk(root):
        for name in files:
            if name.lower().endswith(VIDEO_EXTENSIONS):
                yield os.path.join(folder, name)
