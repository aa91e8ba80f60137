"""Clip sampling as PySlowFast: linspace over the clip span, target fps, train random start, val
centre, test K segments, short videos. Expected indices are computed by hand (PySlowFast's
``temporal_sampling``: ``linspace(start, start + clip_size - 1, num_frames)``, clamped, rounded down)."""

import itertools
import random

import pytest

from darts_video.data.sampling import ClipSampling


def test_clip_indices_spread_evenly_over_num_frames_times_sampling_rate():
    sampling = ClipSampling(num_frames=4, sampling_rate=3)  # covers 12 frames: linspace(10, 21, 4) = 10, 13.67, 17.33, 21
    assert sampling.indices(100, start=10, video_fps=30) == [10, 13, 17, 21]
    assert sampling.clip_size(30) == 12
    assert ClipSampling(8, 8).indices(300, 0, 30) == [0, 9, 18, 27, 36, 45, 54, 63]  # step 63 / 7 = 9, as PySlowFast's


@pytest.mark.parametrize("num_frames,rate,start,expected", [
    (8, 8, 0, [0, 7, 14, 22, 29, 37, 44, 52]),  # clip size 64 * 25 / 30 = 53.33: step 52.33 / 7 = 7.476
    (8, 8, 10.5, [10, 17, 25, 32, 40, 47, 55, 62]),  # 10.5 + 7.476 i
    (16, 2, 0, [0, 1, 3, 5, 6, 8, 10, 11, 13, 15, 17, 18, 20, 22, 23, 25]),  # size 26.67: step 25.67 / 15 = 1.711
])
def test_target_fps_25_to_30_picks_pyslowfasts_indices(num_frames, rate, start, expected):
    sampling = ClipSampling(num_frames, rate, target_fps=30)
    assert sampling.indices(1000, start, video_fps=25) == expected


@pytest.mark.parametrize("start,length,expected", [
    (0, 1000, [0, 18, 36, 54, 72, 90, 108, 127]),  # clip size 64 * 60 / 30 = 128: step 127 / 7 = 18.14
    (7.25, 1000, [7, 25, 43, 61, 79, 97, 116, 134]),  # 7.25 + 18.14 i
    (0, 100, [0, 18, 36, 54, 72, 90, 99, 99]),  # a 100-frame video: clamped to its last frame
])
def test_target_fps_60_to_30_picks_pyslowfasts_indices(start, length, expected):
    assert ClipSampling(8, 8, target_fps=30).indices(length, start, video_fps=60) == expected


def test_a_training_clip_starts_uniformly_in_the_slack_as_pyslowfast_draws_it():
    sampling = ClipSampling(8, 8, target_fps=30)  # clip size 53.33 at 25 fps
    start = random.Random(3).uniform(0, 250 - 64 * 25 / 30)  # PySlowFast: random.uniform(0, delta)
    assert sampling.train_clip(250, 25, random.Random(3)) == sampling.indices(250, start, 25)


def test_train_starts_are_uniform_over_every_start_that_fits():
    sampling = ClipSampling(num_frames=8, sampling_rate=2)  # clip size 16
    rng = random.Random(0)
    starts = [sampling.train_clip(40, 30, rng)[0] for _ in range(5000)]
    assert set(starts) == set(range(40 - 16))  # uniform(0, 24) rounded down: 24 itself has probability 0, as in PySlowFast
    counts = [starts.count(s) for s in range(40 - 16)]
    assert max(counts) / min(counts) < 1.5


def test_val_clip_is_centred_and_test_clips_are_centred_in_equal_segments():
    sampling = ClipSampling(num_frames=4, sampling_rate=2)  # clip size 8
    assert sampling.test_clips(108, 25, num_clips=1) == [[50, 52, 54, 57]]  # slack 100: start 50, linspace(50, 57, 4)
    starts = [clip[0] for clip in sampling.test_clips(108, 25, num_clips=4)]
    assert starts == [12, 37, 62, 87]  # 100 * (k + 0.5) / 4 = 12.5, 37.5, 62.5, 87.5, rounded down


@pytest.mark.parametrize("policy,expected", [("repeat_last", [0, 4, 9, 9, 9, 9]), ("loop", [0, 4, 9, 3, 8, 3])])
def test_videos_shorter_than_the_clip(policy, expected):
    sampling = ClipSampling(num_frames=6, sampling_rate=4, short_video=policy)  # linspace(0, 23, 6) = 0, 4.6, 9.2, 13.8, 18.4, 23
    assert sampling.train_clip(10, 30, random.Random(0)) == expected
    assert sampling.test_clips(10, 30, num_clips=3) == [expected] * 3


def test_target_fps_converts_the_sampling_rate_to_the_video_rate():
    sampling = ClipSampling(num_frames=4, sampling_rate=2, target_fps=15)
    assert sampling.indices(1000, 0, video_fps=30) == [0, 5, 10, 15]  # 8 frames at 15 fps = 16 at 30 fps: linspace(0, 15, 4)
    assert sampling.indices(1000, 0, video_fps=15) == [0, 2, 4, 7]


@pytest.mark.parametrize("num_frames,rate,length", list(itertools.product((1, 8, 16), (1, 2, 8), (1, 5, 64, 300))))
def test_indices_are_always_inside_the_video(num_frames, rate, length):
    for policy in ("repeat_last", "loop"):
        sampling = ClipSampling(num_frames, rate, short_video=policy)
        clips = [sampling.train_clip(length, 30, random.Random(1)), *sampling.test_clips(length, 30, num_clips=5)]
        for clip in clips:
            assert len(clip) == num_frames and all(0 <= i < length for i in clip)


@pytest.mark.parametrize(
    "kwargs,message",
    [({"num_frames": 0}, "must be positive"), ({"target_fps": 0}, "target_fps"), ({"short_video": "pad"}, "unknown short_video policy 'pad'")],
)
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClipSampling(**kwargs)
