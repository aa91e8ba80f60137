"""The frame index on the vendored real videos: the probe's facts, compact rows, a cache file that
is reused and refreshed, and clips (train, val, every test crop) equal to decoding from the start."""

import os
import random

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

import darts_video.data.dataset as dataset_module
import darts_video.data.index as index_module
from helpers import VIDEOS
from test_decode import FILES, all_frames
from darts_video.data import ClipSampling, ClipTransform, VideoClipDataset, VideoEntry, VideoIndex, build_index
from darts_video.data.decode import VideoDecodeError, decode_frames, probe

PATHS = [str(VIDEOS / name) for name in FILES]


def test_every_row_holds_the_probe_of_its_video_in_a_few_bytes():
    index = build_index(PATHS)
    for row, path in enumerate(PATHS):
        expected, info = probe(path), index.info(row)
        assert index.path(row) == path and index.error(row) is None
        assert (info.fps, info.width, info.height, info.presentation_pts) == (expected.fps, expected.width, expected.height, expected.presentation_pts)
        assert np.array_equal(info.pts, expected.pts) and info.pts.dtype == np.int64
    # evenly spaced timestamps are first + step; short_32frames.mp4 skips one timestamp before its last frame
    assert len(index.arrays["irregular_pts"]) == 32 and np.array_equal(index.arrays["irregular_pts"], probe(PATHS[2]).pts)
    per_video = (index.nbytes - sum(len(p.encode()) for p in PATHS) - 32 * 8) / len(PATHS)
    assert per_video < 120  # bytes: a 400,000-video Kinetics index is about 55 MB with its paths


@pytest.mark.parametrize("name", FILES)
def test_clips_decoded_with_the_index_equal_decoding_from_the_start(name):
    """The cached probe must place every frame as decoding from the first frame does: mp4 frames
    by timestamp (with unwanted non-reference frames skipped), AVI frames by counting."""
    path = VIDEOS / name
    reference, info = all_frames(path), build_index([str(path)]).info(0)
    rng = random.Random(1)
    samplings = [ClipSampling(16, 2), ClipSampling(8, 8), ClipSampling(4, 1), ClipSampling(8, 8, target_fps=30)]
    clips = [s.train_clip(info.num_frames, info.fps, rng) for s in samplings for _ in range(6)]
    clips += [[186, 187, 188, 229, 230, 268]] if name == "arm_wrestling.mp4" else []  # around keyframes
    for indices in clips:
        assert np.array_equal(decode_frames(path, indices, info).numpy(), reference[indices]), f"{name}: {indices}"


def test_a_dataset_decodes_each_test_clip_once_and_its_crops_equal_cutting_them_from_the_full_decode(monkeypatch):
    path = VIDEOS / "arm_wrestling.mp4"  # 340 x 256: the crops run along the width
    sampling, transform = ClipSampling(4, 4), ClipTransform(crop_size=64, train_scale=(72, 96), test_scale=72)
    dataset = VideoClipDataset([VideoEntry(str(path), 0)], ["a"], mode="test", sampling=sampling, transform=transform,
                               num_test_clips=2, num_test_crops=3)
    calls = []
    monkeypatch.setattr(dataset_module, "decode_frames", lambda *a, **k: calls.append(a[1]) or decode_frames(*a, **k))
    items = [dataset[i] for i in range(len(dataset))]
    assert len(calls) == 2  # one decode per clip, not one per crop (was 2 x 3)
    reference = all_frames(path)
    for clip, (item, indices) in enumerate(zip(items, sampling.test_clips(280, 28, 2))):
        assert calls[clip] == indices
        resized = v2.functional.resize(torch.from_numpy(reference[indices]).permute(0, 3, 1, 2), [72])  # (T, C, 72, 95)
        for crop, left in enumerate((0, 12, 23)):  # (95 - 72) * k / 2, rounded: left, centre, right
            expected = resized[..., :, left : left + 72].permute(1, 0, 2, 3)  # (C, T, 72, 72)
            assert torch.equal(item["video"][crop], expected), (clip, crop)
        assert item["view"] == [3 * clip, 3 * clip + 1, 3 * clip + 2]


def test_the_cache_file_is_reused_refreshed_for_changed_files_and_keeps_other_datasets_rows(tmp_path, monkeypatch):
    videos = [tmp_path / name for name in FILES]
    for source, target in zip(PATHS, videos):
        target.write_bytes(open(source, "rb").read())
    paths, cache = [str(v) for v in videos], tmp_path / "videos.index.npz"
    first = build_index(paths[:2], cache)
    build_index(paths[2:], cache)  # another dataset (a val split) adds its rows to the same file
    assert len(VideoIndex.load(cache)) == 3

    probed = []
    real_probe_row = index_module.probe_row
    monkeypatch.setattr(index_module, "probe_row", lambda path: probed.append(path) or real_probe_row(path))
    again = build_index(paths[:2], cache)
    assert probed == [] and all(np.array_equal(again.info(r).pts, first.info(r).pts) for r in range(2))

    videos[1].write_bytes(open(PATHS[2], "rb").read())  # replaced by another video
    os.utime(videos[1], ns=(1, 1))
    refreshed = build_index(paths[:2], cache)
    assert probed == [paths[1]] and refreshed.info(1).num_frames == 32 and refreshed.info(0).num_frames == 280
    assert len(VideoIndex.load(cache)) == 3


def test_a_video_that_failed_to_probe_keeps_its_reason_and_raises_it_when_drawn(tmp_path):
    broken = tmp_path / "text.mp4"
    broken.write_text("not a video\n" * 50)
    index = build_index([str(broken), str(tmp_path / "missing.mp4"), PATHS[0]])
    assert index.error(1) == "file not found" and index.error(2) is None
    with pytest.raises(VideoDecodeError, match=r"text.mp4: cannot open"):
        index.info(0)


def test_a_foreign_cache_file_is_refused_naming_it(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match=r"other.npz: a video index of another format"):
        build_index(PATHS, tmp_path / "other.npz")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ValueError, match=r"cut.npz: not a readable video index"):
        build_index(PATHS, tmp_path / "cut.npz")
