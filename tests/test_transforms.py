"""Train / val / test-view transforms on decoded frames."""

import random

import pytest
import torch

from darts_video.data.transforms import ClipTransform


def frames(height=240, width=320, num=4) -> torch.Tensor:
    columns = torch.arange(width).div(width / 256, rounding_mode="floor").to(torch.uint8)
    return columns.expand(num, height, width).unsqueeze(-1).repeat(1, 1, 1, 3).contiguous()  # (T, H, W, 3)


def test_train_val_and_test_give_uint8_c_t_h_w_clips():
    transform = ClipTransform(crop_size=112, train_scale=(128, 160), test_scale=128)
    x = frames()
    assert transform.train(x, random.Random(0)).shape == (3, 4, 112, 112)
    assert transform.val(x).shape == (3, 4, 112, 112)
    assert transform.test_crops(x).shape == (3, 3, 4, 128, 128)  # (V, C, T, S, S)
    assert transform.test_crops(x, 1).shape == (1, 3, 4, 128, 128)
    assert transform.val(x).dtype == torch.uint8


def test_test_views_have_their_own_size_cut_from_the_test_short_side():
    from darts_video.options import real_video_transform

    x = frames(240, 320)
    assert ClipTransform(crop_size=32, train_scale=(37, 46), test_scale=37, test_crop_size=32).test_crops(x).shape == (3, 3, 4, 32, 32)
    small = real_video_transform(32)  # small inputs: test at the training crop, from the validation's short side
    assert (small.test_scale, small.test_views_size) == (37, 32) and small.test_crops(x, 1).shape[-2:] == (32, 32)
    pyslowfast = real_video_transform(224, 256)  # train 224 crops from [256, 320], test 256 squares of the 256 short side
    assert (pyslowfast.train_scale, pyslowfast.test_scale, pyslowfast.test_views_size) == ((256, 320), 256, 256)
    with pytest.raises(ValueError, match="test_crop_size 40 must be positive and at most the test short side 37"):
        ClipTransform(crop_size=32, train_scale=(37, 46), test_scale=37, test_crop_size=40)


def test_normalize_standardises_batches_per_channel():
    transform = ClipTransform(mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    batch = torch.full((2, 3, 4, 5, 5), 255, dtype=torch.uint8)  # (B, C, T, H, W)
    batch[:, 1] = 0
    normalised = transform.normalize(batch)
    assert normalised.dtype == torch.float32 and normalised.shape == batch.shape
    assert normalised[:, 0].unique().tolist() == [1.0]  # (1 - 0.5) / 0.5
    assert normalised[:, 1].unique().tolist() == [-1.0]  # (0 - 0.25) / 0.25
    assert normalised[:, 2].unique().tolist() == [1.0]
    assert torch.equal(transform.normalize(batch[0]), normalised[0])  # one clip (C, T, H, W) too


def test_three_test_crops_cover_left_centre_right_of_the_long_side():
    transform = ClipTransform(crop_size=112, train_scale=(128, 128), test_scale=128)
    x = frames(240, 320)  # resized to 128 x 171; pixel value grows with the column
    left, centre, right = transform.test_crops(x)
    assert left[0, 0, 0, 0] < centre[0, 0, 0, 0] < right[0, 0, 0, 0]
    assert left[0, 0, 0, 0] <= 1 and right[0, 0, 0, -1] >= 254


def test_three_test_crops_run_along_the_height_of_portrait_videos():
    transform = ClipTransform(crop_size=64, train_scale=(64, 64), test_scale=64)
    x = frames(240, 320).transpose(1, 2).contiguous()  # (T, 320, 240, 3) portrait: value grows with the row
    tops = [crop[0, 0, 0, 0] for crop in transform.test_crops(x)]
    assert tops[0] < tops[1] < tops[2]


def test_flip_can_be_switched_off_and_crops_must_fit():
    transform = ClipTransform(crop_size=32, train_scale=(32, 32), test_scale=32, flip=False)
    x = frames(32, 32)
    assert torch.equal(transform.train(x, random.Random(0)), transform.val(x))
    with pytest.raises(ValueError, match="crop_size 300 is larger"):
        ClipTransform(crop_size=300)


def test_training_randomness_comes_only_from_the_generator_given():
    """A transform that drew from a global generator would differ between workers and after a resume."""
    transform = ClipTransform(crop_size=96, train_scale=(100, 160), test_scale=100)
    x = frames(120, 160)
    torch.manual_seed(1)
    first = transform.train(x, random.Random(5))
    torch.manual_seed(2)
    random.seed(2)
    assert torch.equal(transform.train(x, random.Random(5)), first)
    assert any(not torch.equal(transform.train(x, random.Random(seed)), first) for seed in range(6, 10))
