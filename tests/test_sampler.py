"""Samples as functions of (seed, epoch, index): the same in any worker and after a resume, new
every epoch, through loaders built once with persistent workers; shards without padding."""

import pytest
import torch
from torch.utils.data import DataLoader

from helpers import VIDEOS
from darts_video.data import (ClipSampling, ClipTransform, EpochSampler, SyntheticVideoDataset, VideoClipDataset, VideoEntry,
                              collate_clips)
from darts_video.engine.distributed import shard_loader


def real_training_set(seed=0) -> VideoClipDataset:
    entries = [VideoEntry(str(VIDEOS / name), i) for i, name in enumerate(["arm_wrestling.mp4", "mpeg4_320x240.avi"] * 2)]
    return VideoClipDataset(entries, ["a", "b", "c", "d"], mode="train", sampling=ClipSampling(4, 4), seed=seed,
                            transform=ClipTransform(crop_size=48, train_scale=(56, 80), test_scale=56))


def loader(dataset, workers, batch_size=2) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=EpochSampler(range(len(dataset)), shuffle=True, seed=3),
                      num_workers=workers, persistent_workers=workers > 0, collate_fn=collate_clips)


def epoch_batches(data: DataLoader, epoch: int) -> list[dict]:
    data.sampler.set_epoch(epoch)
    return list(data)


def same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(torch.equal(x["video"], y["video"]) and torch.equal(x["index"], y["index"]) for x, y in zip(a, b))


@pytest.mark.parametrize("make", [lambda: SyntheticVideoDataset(8, seed=1, fresh_each_epoch=True), real_training_set],
                         ids=["procedural", "real videos"])
def test_persistent_workers_give_every_epoch_the_samples_a_fresh_loader_gives_and_new_ones_per_epoch(make):
    """Per-worker or global randomness would make the worker loader disagree with the in-process
    one; dataset state set per epoch would freeze inside persistent workers (epoch 1 = epoch 0)."""
    dataset = make()
    long_lived = loader(dataset, workers=2)
    first, second = epoch_batches(long_lived, 0), epoch_batches(long_lived, 1)
    torch.manual_seed(123)  # the global generator plays no part
    assert same(first, epoch_batches(loader(dataset, workers=0), 0))
    assert same(second, epoch_batches(loader(make(), workers=0), 1))  # a resumed run starting at epoch 1
    ordered = lambda batches: sorted((int(i), v) for b in batches for i, v in zip(b["index"], b["video"]))
    assert any(not torch.equal(a[1], b[1]) for a, b in zip(ordered(first), ordered(second)))  # fresh draws each epoch


def test_a_real_sample_is_a_function_of_seed_epoch_and_index():
    dataset = real_training_set()
    assert torch.equal(dataset[(2, 1)]["video"], real_training_set()[(2, 1)]["video"])
    assert not torch.equal(dataset[(2, 1)]["video"], dataset[(3, 1)]["video"])
    assert not torch.equal(dataset[(2, 1)]["video"], real_training_set(seed=1)[(2, 1)]["video"])
    assert torch.equal(dataset[1]["video"], dataset[(0, 1)]["video"])  # a plain index is epoch 0


def test_shuffled_shards_are_disjoint_equal_and_depend_only_on_seed_and_epoch():
    shards = [EpochSampler(range(11), shuffle=True, seed=5, rank=r, world_size=2) for r in range(2)]
    keys = [list(s) for s in shards]
    assert [len(k) for k in keys] == [5, 5] and [len(s) for s in shards] == [5, 5]
    assert not {i for _, i in keys[0]} & {i for _, i in keys[1]}
    assert keys[0] == list(EpochSampler(range(11), shuffle=True, seed=5, rank=0, world_size=2))
    shards[0].set_epoch(1)
    assert {e for e, _ in shards[0]} == {1} and [i for _, i in shards[0]] != [i for _, i in keys[0]]


def test_evaluation_shards_cover_every_item_once_without_padding():
    shards = [list(EpochSampler(range(7), shuffle=False, rank=r, world_size=2)) for r in range(2)]
    assert sorted(i for shard in shards for _, i in shard) == list(range(7))  # DistributedSampler would repeat item 0
    assert [len(EpochSampler(range(7), shuffle=False, rank=r, world_size=2)) for r in range(2)] == [4, 3]


def test_shard_loader_counts_clips_per_batch_and_keeps_its_workers():
    entries = [VideoEntry(str(VIDEOS / "short_32frames.mp4"), 0)] * 3
    test_set = VideoClipDataset(entries, ["a"], mode="test", sampling=ClipSampling(2, 2), num_test_clips=1, num_test_crops=3,
                                transform=ClipTransform(crop_size=32, train_scale=(32, 40), test_scale=32))
    batches = list(shard_loader(test_set, 6, 0, 0, False, "cpu"))
    assert [len(b["video"]) for b in batches] == [6, 3]  # 2 items of 3 crops, then 1
    train = shard_loader(SyntheticVideoDataset(16), 4, 1, 0, True, "cpu")
    assert train.persistent_workers and not train.pin_memory


@pytest.mark.parametrize("shuffle", [True, False])
def test_an_epoch_resumed_at_a_position_reads_the_rest_of_that_epochs_order(shuffle):
    """A resumed epoch (``set_epoch(epoch, start)``) gives exactly the keys its rank had left. Breaks
    if the start is ignored (the epoch read again from its first clips), applied before the shard
    is cut (another rank's keys), or if ``len`` still counts the skipped keys."""
    for rank in (0, 1):
        sampler = EpochSampler(range(11), shuffle=shuffle, seed=5, rank=rank, world_size=2)
        sampler.set_epoch(3)
        whole = list(sampler)
        sampler.set_epoch(3, start=2)
        assert list(sampler) == whole[2:] and len(sampler) == len(whole) - 2
        sampler.set_epoch(3, start=len(whole) + 1)
        assert list(sampler) == [] and len(sampler) == 0
