"""The dataset core on real files: modes, bad videos inside a 2-worker DataLoader, splits."""

import collections
import json

import pytest
import torch
from torch.utils.data import DataLoader

from helpers import VIDEOS
from test_decode import make_bad_videos
from darts_video.data import (
    BadVideoLog,
    ClipSampling,
    ClipTransform,
    TooManyBadVideos,
    VideoClipDataset,
    VideoEntry,
    collate_clips,
    load_split,
    read_exclusions,
    save_split,
    stratified_split,
)

GOOD = [VideoEntry(str(VIDEOS / name), label) for label, name in enumerate(["arm_wrestling.mp4", "mpeg4_320x240.avi", "short_32frames.mp4"])]
SMALL = dict(sampling=ClipSampling(num_frames=4, sampling_rate=4), transform=ClipTransform(crop_size=64, train_scale=(72, 96), test_scale=72))


@pytest.mark.parametrize("mode,shape", [("train", (3, 4, 64, 64)), ("val", (3, 4, 64, 64)), ("test", (3, 3, 4, 72, 72))])
def test_every_mode_gives_clips_of_the_configured_shape(mode, shape):
    dataset = VideoClipDataset(GOOD, ["a", "b", "c"], mode=mode, num_test_clips=2, num_test_crops=3, decode_short_side=72, **SMALL)
    assert len(dataset) == (3 * 2 if mode == "test" else 3)
    for item in range(len(dataset)):
        sample = dataset[item]
        assert sample["video"].shape == shape and sample["failures"] == []
        assert sample["label"] == GOOD[sample["index"]].label


def test_test_items_are_the_clips_of_each_video_with_their_crops_together():
    dataset = VideoClipDataset(GOOD[:1], ["a"], mode="test", num_test_clips=2, num_test_crops=3, **SMALL)
    items = [dataset[i] for i in range(len(dataset))]
    assert [(s["index"], s["view"]) for s in items] == [(0, [0, 1, 2]), (0, [3, 4, 5])]
    assert not torch.equal(items[0]["video"][0], items[0]["video"][2])  # left and right crops differ
    batch = collate_clips(items)
    assert batch["video"].shape == (6, 3, 4, 72, 72) and batch["view"].tolist() == list(range(6))
    assert batch["index"].tolist() == [0] * 6 and batch["label"].tolist() == [0] * 6


def mixed_entries(tmp_path):
    bad = make_bad_videos(tmp_path / "bad")
    return GOOD + [VideoEntry(str(path), 0) for path in bad.values()], {str(p) for p in bad.values()}


def test_training_substitutes_bad_videos_and_reports_them_through_two_workers(tmp_path):
    entries, bad_paths = mixed_entries(tmp_path)
    dataset = VideoClipDataset(entries, ["a", "b", "c"], mode="train", **SMALL)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate_clips)
    batches = list(loader)
    assert sum(len(b["video"]) for b in batches) == len(entries)  # every sample replaced by a good one
    reported = {f.split(": ", 1)[0] for b in batches for f in b["failures"]}
    assert reported == bad_paths


def test_evaluation_skips_bad_videos_and_lists_them(tmp_path):
    entries, bad_paths = mixed_entries(tmp_path)
    dataset = VideoClipDataset(entries, ["a", "b", "c"], mode="val", **SMALL)
    batches = list(DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate_clips))
    indices = torch.cat([b["index"] for b in batches if b["video"] is not None]).tolist()
    assert sorted(indices) == [0, 1, 2]
    assert {f.split(": ", 1)[0] for b in batches for f in b["failures"]} == bad_paths


def test_bad_video_log_stops_a_run_past_its_share_and_writes_an_exclusion_file(tmp_path):
    entries, bad_paths = mixed_entries(tmp_path)
    failures = [f for i in range(len(entries)) for f in VideoClipDataset(entries, ["a"], mode="val", **SMALL)[i]["failures"]]
    BadVideoLog(len(entries), max_share=0.7).record(failures)  # 5 of 8 bad is allowed at 70 %
    log = BadVideoLog(len(entries), max_share=0.5)
    with pytest.raises(TooManyBadVideos, match=r"5 of 8 videos failed to decode, more than the allowed 50%") as error:
        log.record(failures)
    assert "zero_bytes.mp4: " in str(error.value)
    exclusions = log.write(tmp_path / "bad_videos.txt")
    assert read_exclusions(exclusions) == bad_paths
    cleaned = VideoClipDataset(entries, ["a", "b", "c"], mode="val", exclude=exclusions, **SMALL)
    assert len(cleaned) == 3 and sorted(cleaned.excluded) == sorted(bad_paths)


def test_bad_video_logs_count_each_set_against_its_size_list_them_together_and_resume(tmp_path):
    """Breaks if a set's failures count against another set's size (a wholly bad validation set
    passing because the training set is large), if the run's list misses a set, or if a resumed
    run forgets the failures before its checkpoint (listing and counting them anew)."""
    train = BadVideoLog(100, max_share=0.1)
    val = train.for_set(4)
    train.record(["/v/a.mp4: cannot open", "/v/a.mp4: cannot open"])  # one video, counted once
    with pytest.raises(TooManyBadVideos, match="1 of 4 videos failed"):
        val.record(["/v/b.mp4: no video stream"])  # 1 of 4 is over 10 %, however large the training set
    assert train.failures == val.failures == {"/v/a.mp4": "cannot open", "/v/b.mp4": "no video stream"}
    resumed = BadVideoLog(100, max_share=0.1)
    resumed_val = resumed.for_set(4)
    resumed.load_state_dict(train.state_dict())
    assert resumed.failures == train.failures and resumed_val.own == {"/v/b.mp4": "no video stream"}
    resumed.record([f"/v/{i}.mp4: cannot open" for i in range(9)])  # 10 of 100 with a.mp4: at the limit
    with pytest.raises(TooManyBadVideos, match="11 of 100 videos failed"):
        resumed.record(["/v/last.mp4: cannot open"])


def test_stratified_split_is_seeded_balanced_and_saved(tmp_path):
    labels = [i % 4 for i in range(103)]
    train, val = stratified_split(labels, val_fraction=0.5, seed=3)
    assert (train, val) == stratified_split(labels, val_fraction=0.5, seed=3)
    assert (train, val) != stratified_split(labels, val_fraction=0.5, seed=4)
    assert sorted(train + val) == list(range(103)) and not set(train) & set(val)
    per_class = collections.Counter(labels[i] for i in val)
    assert all(abs(per_class[c] - labels.count(c) / 2) <= 0.5 for c in range(4))
    path = save_split(tmp_path / "split.json", train, val, seed=3, names=[f"v{i}.mp4" for i in range(103)])
    assert load_split(path) == (train, val)
    assert json.loads(path.read_text())["val_names"][0] == f"v{val[0]}.mp4"
    with pytest.raises(ValueError, match="leaves one half empty"):
        stratified_split([0], 0.5)


def test_target_fps_video_index_and_test_crops_reach_the_dataset_from_the_command_line(tmp_path):
    from darts_video.options import build_dataset
    from darts_video.search_config import build_parser as search_parser
    from darts_video.train_config import TrainConfig, build_parser, config_from_args

    (tmp_path / "list.txt").write_text("".join(f"{entry.path} {entry.label}\n" for entry in GOOD))
    arguments = ["--data", "list", "--annotations", str(tmp_path / "list.txt"), "--val-annotations", str(tmp_path / "list.txt"),
                 "--target-fps", "30", "--video-index", str(tmp_path / "index.npz"), "--num-frames", "8", "--test-crops", "1"]
    config, _, _ = config_from_args(build_parser().parse_args(arguments))
    train, _, _ = build_dataset(config, "train")
    assert train.sampling == ClipSampling(8, 8, target_fps=30) and (tmp_path / "index.npz").is_file()
    assert train.entries == GOOD
    test, _, _ = build_dataset(config, "test", num_test_crops=config.test_crops)
    assert test.views_per_item == 1 and test[0]["video"].shape[0] == 1
    assert search_parser().parse_args(["--target-fps", "25"]).target_fps == 25
    assert test[0]["video"].shape[-2:] == (224, 224)  # test views at the training crop unless told otherwise
    wide, _, _ = config_from_args(build_parser().parse_args(arguments + ["--crop-size", "64", "--test-crop-size", "96"]))
    views = build_dataset(wide, "test", num_test_crops=3)[0][0]["video"]
    assert views.shape[0] == 3 and views.shape[-2:] == (96, 96)
    with pytest.raises(ValueError, match="--test-crop-size must be positive, got 0"):
        TrainConfig(test_crop_size=0)
    with pytest.raises(ValueError, match="--target-fps must be positive, got 0"):
        TrainConfig(target_fps=0)
    with pytest.raises(ValueError, match="--video-index indexes video files"):
        TrainConfig(video_index="index.npz")
