"""Clip sampling as PySlowFast: train random start, val centre, test K segments, short videos."""

import itertools
import random

import pytest

from darts_video.data.sampling import ClipSampling


def test_clip_frames_are_sampling_rate_apart():
    sampling = ClipSampling(num_frames=4, sampling_rate=3)
    assert sampling.indices(100, start=10, video_fps=30) == [10, 13, 16, 19]
    assert sampling.span(30) == 10


def test_train_starts_are_uniform_over_every_start_that_fits():
    sampling = ClipSampling(num_frames=8, sampling_rate=2)  # span 15
    rng = random.Random(0)
    starts = [sampling.train_clip(40, 30, rng)[0] for _ in range(5000)]
    assert set(starts) == set(range(40 - 15 + 1))
    counts = [starts.count(s) for s in set(starts)]
    assert max(counts) / min(counts) < 1.5


def test_val_clip_is_centred_and_test_clips_are_centred_in_equal_segments():
    sampling = ClipSampling(num_frames=4, sampling_rate=2)  # span 7
    assert sampling.test_clips(107, 25, num_clips=1) == [[50, 52, 54, 56]]  # slack 100: start 50
    starts = [clip[0] for clip in sampling.test_clips(107, 25, num_clips=4)]
    assert starts == [12, 38, 62, 88]  # 100 * (k + 0.5) / 4, rounded half to even


@pytest.mark.parametrize("policy,expected", [("repeat_last", [0, 4, 8, 9, 9, 9]), ("loop", [0, 4, 8, 2, 6, 0])])
def test_videos_shorter_than_the_clip(policy, expected):
    sampling = ClipSampling(num_frames=6, sampling_rate=4, short_video=policy)
    assert sampling.train_clip(10, 30, random.Random(0)) == expected
    assert sampling.test_clips(10, 30, num_clips=3) == [expected] * 3


def test_target_fps_converts_the_sampling_rate_to_the_video_rate():
    sampling = ClipSampling(num_frames=4, sampling_rate=2, target_fps=15)
    assert sampling.indices(1000, 0, video_fps=30) == [0, 4, 8, 12]  # 2 frames at 15 fps = 4 at 30 fps
    assert sampling.indices(1000, 0, video_fps=15) == [0, 2, 4, 6]


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
