"""The procedural dataset: deterministic, balanced, each class decided by the relation it documents."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from darts_video.data import ClipSampling, VideoClipDataset, read_list_file
from darts_video.data.synthetic import CLASSES, PALETTE, PAIRS, SYNTHETIC_TRANSFORM, SyntheticVideoDataset

REPO = Path(__file__).resolve().parents[1]


def objects(frame: np.ndarray) -> dict[int, np.ndarray]:
    """Palette colour -> (row, column) centroid of the pixels painted in it."""
    found = {}
    for colour, rgb in enumerate(PALETTE):
        mask = (np.abs(frame.astype(int) - rgb.astype(int)).sum(-1) == 0)
        if mask.any():
            found[colour] = np.argwhere(mask).mean(0)
    return found


def painted_pixels(frames: np.ndarray) -> int:
    """Pixels in a palette colour (the background noise never reaches one)."""
    pixels = frames.reshape(-1, 1, 3).astype(int)
    return int((np.abs(pixels - PALETTE.astype(int)).sum(-1) == 0).any(-1).sum())


def test_clips_are_deterministic_per_seed_and_split():
    a, b = SyntheticVideoDataset(16, seed=1), SyntheticVideoDataset(16, seed=1)
    assert all(np.array_equal(a.clip(i), b.clip(i)) for i in range(16))
    assert not np.array_equal(a.clip(3), SyntheticVideoDataset(16, seed=2).clip(3))
    assert not np.array_equal(a.clip(3), SyntheticVideoDataset(16, seed=1, split="val").clip(3))
    assert torch.equal(a[5]["video"], b[5]["video"])


def test_fresh_each_epoch_draws_new_clips_per_epoch_deterministically():
    fresh, fixed = SyntheticVideoDataset(8, seed=1, fresh_each_epoch=True), SyntheticVideoDataset(8, seed=1)
    assert not np.array_equal(fresh.clip(2, epoch=1), fresh.clip(2, epoch=0))
    assert np.array_equal(fixed.clip(2, epoch=1), fixed.clip(2, epoch=0))
    again = SyntheticVideoDataset(8, seed=1, fresh_each_epoch=True)
    assert np.array_equal(again.clip(2, epoch=1), fresh.clip(2, epoch=1)) and fresh.label(2) == again.label(2)
    assert torch.equal(fresh[(1, 2)]["video"], torch.from_numpy(fresh.clip(2, epoch=1)).permute(3, 0, 1, 2))  # a sampler's key


def test_classes_are_balanced_and_samples_have_the_dataset_form():
    dataset = SyntheticVideoDataset(80)
    assert np.bincount(dataset.labels).tolist() == [10] * len(CLASSES)
    sample = dataset[0]
    assert sample["video"].shape == (3, 8, 32, 32) and sample["video"].dtype == torch.uint8
    assert torch.equal(sample["video"], torch.from_numpy(dataset.clip(0)).permute(3, 0, 1, 2))
    assert sample["failures"] == [] and dataset.clip(0).dtype == np.uint8


@pytest.mark.parametrize("index", range(48))
def test_each_class_is_decided_by_its_documented_relation(index):
    dataset = SyntheticVideoDataset(48, seed=7)
    clip, label = dataset.clip(index), dataset.label(index)
    pair, same = label // 2, label % 2 == 0
    per_frame = [objects(frame) for frame in clip]
    if pair == 0:  # two static squares far apart in every frame; colours agree iff "same"
        assert all(f.keys() == per_frame[0].keys() for f in per_frame)
        assert painted_pixels(clip[0]) == 2 * 5 * 5
        assert len(per_frame[0]) == (1 if same else 2)
    elif pair in (1, 2):  # shown only in frames 0-1 and 6-7
        assert all(not f for f in per_frame[2:6])
        first, last = set(per_frame[0]), set(per_frame[-1])
        assert (first == last) == same and len(first) == len(last) == 1
        distance = np.hypot(*(per_frame[0][first.pop()] - per_frame[-1][last.pop()]))
        assert distance == 0 if pair == 1 else distance >= 16
    else:  # one plus moving 2 px per frame, horizontally or vertically
        colour = next(iter(per_frame[0]))
        track = np.array([f[colour] for f in per_frame])
        step = np.diff(track, axis=0)
        moving_axis = 0 if label == CLASSES.index("motion_vertical") else 1
        assert np.allclose(np.abs(step[:, moving_axis]), 2) and np.allclose(step[:, 1 - moving_axis], 0)


def test_pair_members_share_shapes_and_counts():
    """Only the relation differs inside a pair: painted-pixel counts are the same for both labels."""
    dataset = SyntheticVideoDataset(64, seed=3)
    for first, second in PAIRS.values():
        counts = set()
        for index in range(64):
            if dataset.label(index) in (first, second):
                counts.add(painted_pixels(dataset.clip(index)))
        assert len(counts) == 1, (first, second, counts)


def test_written_mp4_files_decode_back_to_the_in_memory_clips(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_synthetic_dataset.py"), str(tmp_path), "--train", "16", "--val", "8", "--test", "0", "--seed", "5"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "classes.txt").read_text().split() == list(CLASSES)
    annotations = read_list_file(tmp_path / "train.txt", prefix=tmp_path)
    in_memory = SyntheticVideoDataset(16, split="train", seed=5)
    from_disk = VideoClipDataset(annotations.entries, CLASSES, mode="val", sampling=ClipSampling(8, 1), transform=SYNTHETIC_TRANSFORM)
    for index in range(16):
        assert from_disk[index]["label"] == in_memory[index]["label"]
        difference = (from_disk[index]["video"].int() - in_memory[index]["video"].int()).abs()
        assert difference.max() <= 3  # lossless H.264 4:4:4: RGB <-> YUV rounding only
