"""Retraining end to end on a tiny budget: artifacts, --eval-only, resume, export, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from darts_video.data import EpochSampler
from helpers import Killed, kill_in_weight_step, layer_output_dtypes, run_script
from darts_video.data.synthetic import SyntheticVideoDataset
from darts_video.engine import CheckpointError, load_checkpoint, save_checkpoint
from darts_video.engine.export import load_exported
from darts_video.train import evaluate_checkpoint, run_training
from darts_video.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def tiny(tmp_path: Path, **overrides) -> TrainConfig:
    options = dict(out=str(tmp_path / "run"), num_clips=96, num_val_clips=32, epochs=2, warmup_epochs=1, batch_size=16,
                   genotype="non_local", device="cpu")
    return TrainConfig(**{**options, **overrides})


def test_training_lowers_the_loss_and_eval_only_reproduces_the_test(tmp_path):
    config = tiny(tmp_path, epochs=4, num_clips=256)
    summary = run_training(config)
    run = Path(config.out)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    assert metrics[-1]["loss/train"] < metrics[0]["loss/train"]
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"loss/train", "accuracy/train", "accuracy/val_top1", "lr", "time/data_s"} <= set(events.Tags()["scalars"])
    test = summary["test"]
    assert test["videos"] == 32 and set(test["per_class"]) == set(SyntheticVideoDataset.classes)
    assert "| video (views averaged) |" in (run / "test.md").read_text()
    assert json.loads((run / "summary.json").read_text())["test"] == test
    again = evaluate_checkpoint(config)
    assert again == test
    assert (run / "eval_latest.md").exists()


def test_summary_reports_cost_and_an_export_that_loads_without_the_package(tmp_path):
    summary = run_training(tiny(tmp_path, epochs=1, warmup_epochs=0))
    cost = summary["cost"]
    assert cost["clip_shape"] == [3, 8, 32, 32] and 60_000 < cost["parameters"] < 90_000
    assert list(cost["blocks"]) == ["stage2"] and 0 < cost["blocks"]["stage2"]["flops_per_clip"] < cost["flops_per_clip"]
    assert summary["export"]["max_abs_difference"] < 1e-5
    exported = load_exported(summary["export"]["path"])
    assert exported(torch.randint(0, 256, (5, 3, 8, 32, 32), dtype=torch.uint8)).shape == (5, 8)  # any batch size, uint8 clips


def test_a_retraining_killed_between_epochs_and_inside_one_resumes_to_the_uninterrupted_weights_and_test(tmp_path, monkeypatch):
    """Killed at an epoch's start, resumed, then killed inside epoch 3 after its checkpoint at step
    16 (``--checkpoint-every 4``, 6 steps an epoch): the run ends as the uninterrupted one. Breaks
    if the sampler restarts the epoch (other clips), the dropout generator is not restored, the
    epoch's meter starts empty (another logged loss), or the best validation is forgotten."""
    import darts_video.train as train

    straight = tiny(tmp_path, out=str(tmp_path / "straight"), epochs=3)
    run_training(straight)
    interrupted = replace(straight, out=str(tmp_path / "interrupted"), checkpoint_every=4)
    original_set_epoch, original_step = EpochSampler.set_epoch, train.weight_step

    def kill_at_epoch_three(self, epoch, start=0):
        if epoch == 2 and self.shuffle:  # the training loader
            raise Killed()
        original_set_epoch(self, epoch, start)

    monkeypatch.setattr(EpochSampler, "set_epoch", kill_at_epoch_three)
    with pytest.raises(Killed):
        run_training(interrupted)
    latest = Path(interrupted.out) / "checkpoints" / "latest.pt"
    state = load_checkpoint(latest)
    assert state["epoch"] == 1 and state["bad_videos"] == {"sets": [{}, {}]}  # the training and validation sets'
    # as a format 2 checkpoint written before checkpoints inside an epoch: it must resume alike
    save_checkpoint({name: value for name, value in state.items() if name not in ("meter", "bad_videos")}, latest)
    monkeypatch.setattr(EpochSampler, "set_epoch", original_set_epoch)
    kill_in_weight_step(monkeypatch, train, first_step=13, kill_step=17)
    with pytest.raises(Killed):
        run_training(interrupted)
    state = load_checkpoint(Path(interrupted.out) / "checkpoints" / "latest.pt")
    assert (state["step"], state["epoch"], state["inside_epoch"], state["meter"]["batches"]) == (16, 2, True, 4)
    monkeypatch.setattr(train, "weight_step", original_step)
    resumed = run_training(interrupted)
    a = load_checkpoint(Path(straight.out) / "checkpoints" / "latest.pt")
    b = load_checkpoint(Path(interrupted.out) / "checkpoints" / "latest.pt")
    assert b["step"] == 18 and not b.get("inside_epoch") and b["best"] == a["best"]
    for key in a["model"]:
        assert torch.allclose(a["model"][key].float(), b["model"][key].float(), atol=1e-6), key
    metrics = [[json.loads(line) for line in (Path(run.out) / "metrics.jsonl").read_text().splitlines()] for run in (straight, interrupted)]
    assert [m["step"] for m in metrics[1]] == [6, 12, 18]  # nothing logged twice
    for key in ("loss/train", "accuracy/train", "accuracy/val_top1"):
        assert metrics[1][-1][key] == pytest.approx(metrics[0][-1][key], abs=1e-6), key
    assert resumed["test"] == json.loads((Path(straight.out) / "summary.json").read_text())["test"]


def test_a_checkpoint_of_another_architecture_is_refused_naming_the_difference(tmp_path):
    config = tiny(tmp_path, epochs=1, warmup_epochs=0)
    run_training(config)
    with pytest.raises(CheckpointError, match="holds another architecture \\(baseline: checkpoint None, requested 'nonlocal'"):
        evaluate_checkpoint(replace(config, genotype=None, baseline="nonlocal"))
    supernet = tmp_path / "search.pt"
    save_checkpoint({"model": {}, "epoch": 0}, supernet)
    with pytest.raises(CheckpointError, match="search.pt is not a retraining checkpoint"):
        evaluate_checkpoint(config, str(supernet))


@pytest.mark.parametrize("overrides, message", [
    ({"baseline": "nonlocal"}, "not both"),
    ({"baseline": "gc"}, "unknown --baseline 'gc'"),
    ({"data": "list", "annotations": "train.txt"}, "needs --val-annotations"),
    ({"test_crops": 2}, "--test-crops must be 1 or 3"),
    ({"warmup_epochs": 2}, "--warmup-epochs 2 must be at least 0 and below --epochs 2"),
])
def test_inconsistent_options_are_rejected(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(tmp_path, **overrides)


@pytest.mark.parametrize("overrides, message", [
    ({"genotype": "no_such_cell"}, "no_such_cell"),
    ({"points": ["stage9"]}, "tiny has no insertion point stage9; available: stage2, stage3"),
    ({"batch_size": 128}, "--batch-size 128 x 1 processes is larger than the 96 training clips"),
])
def test_bad_requests_fail_before_the_run_directory_appears(tmp_path, overrides, message):
    with pytest.raises((ValueError, KeyError), match=message):
        run_training(tiny(tmp_path, **overrides))
    assert not (tmp_path / "run").exists()


def test_the_command_line_trains_says_which_cell_and_reports_bad_input(tmp_path):
    script = str(REPO / "scripts" / "train_final.py")
    usage = run_script(script, "--help").stdout
    for option in ("--genotype", "--baseline", "--backbone", "--points", "--data", "--epochs", "--batch-size", "--optimizer",
                   "--amp", "--device", "--seed", "--out", "--eval-only", "--test-clips", "--pretrained"):
        assert option in usage
    run = subprocess.run([sys.executable, script, "--out", str(tmp_path / "bare"), "--baseline", "none", "--num-clips", "32",
                          "--num-val-clips", "16", "--epochs", "1", "--warmup-epochs", "0", "--batch-size", "16"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "model: tiny with baseline: none" in run.stdout and "| clip (each view alone) |" in run.stdout
    bad = run_script(script, "--genotype", str(tmp_path / "missing.json"), cwd=tmp_path)
    assert bad.returncode == 2 and "missing.json" in bad.stderr


def test_the_latest_default_search_is_the_default_cell(tmp_path, monkeypatch):
    from darts_video.genotype import get_genotype

    monkeypatch.chdir(tmp_path)
    assert "non_local (registered" in tiny(tmp_path).__class__().resolve_genotype()[1]
    get_genotype("divided_space_time").save(tmp_path / "runs" / "search" / "genotype.json")
    genotype, source = TrainConfig().resolve_genotype()
    assert source.startswith("runs/search/genotype.json") and genotype.nodes == get_genotype("divided_space_time").nodes


def test_retraining_runs_on_real_video_files_with_multi_view_testing(tmp_path):
    videos = tmp_path / "videos"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_synthetic_dataset.py"), str(videos), "--train", "16", "--val", "8", "--test", "0"],
                   check=True, capture_output=True)
    config = tiny(tmp_path, data="list", annotations=str(videos / "train.txt"), val_annotations=str(videos / "val.txt"),
                  video_root=str(videos), num_frames=4, sampling_rate=1, crop_size=32, epochs=1, warmup_epochs=0, batch_size=8,
                  test_clips=2, test_crops=3)
    test = run_training(config)["test"]
    assert test["videos"] == 8 and test["views"] == 8 * 2 * 3


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_retraining_computes_in_that_precision_keeps_fp32_weights_and_takes_every_step(tmp_path, monkeypatch, amp):
    """Breaks if autocast is left off the weight steps or the evaluation (some layer computes in
    fp32), if the model itself is cast (the weights, and so the updates, lose their fp32
    precision), if fp16's scaler skips steps (overflow on every step) or is never updated, or if
    the optimiser does not take each of the 6 steps."""
    import darts_video.train as train

    low, evaluate, evaluations = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp], train.evaluate, []

    def recorded(*args, **kwargs):  # the validation and the test (not the cost count or the export, which run in fp32)
        with layer_output_dtypes() as dtypes:
            result = evaluate(*args, **kwargs)
        evaluations.append(dtypes)
        return result

    monkeypatch.setattr(train, "evaluate", recorded)
    with layer_output_dtypes() as dtypes:
        run_training(tiny(tmp_path, amp=amp, epochs=1, warmup_epochs=0))
    assert dtypes["train"] == {low} and evaluations == [{"train": set(), "eval": {low}}] * 2
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert {t.dtype for t in state["model"].values() if t.is_floating_point()} == {torch.float32}
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {6}  # 96 clips, batches of 16
    if amp == "fp16":  # a GradScaler only for fp16: its scale and its count of steps since the last overflow are saved
        assert state["scaler"]["scale"] == 2.0 ** 16 and state["scaler"]["_growth_tracker"] == 6
    else:
        assert state["scaler"] == {}


def test_validation_and_test_videos_are_labelled_with_the_training_label_map(tmp_path):
    """A validation split that lacks a class must not shift the others' label indices."""
    from darts_video.options import build_dataset

    for relative in ("train/archery/a.mp4", "train/walking/b.mp4", "val/walking/c.mp4"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    options = TrainConfig(data="folders", annotations=str(tmp_path / "train"), val_annotations=str(tmp_path / "val"))
    _, classes, _ = build_dataset(options, "train")
    val, val_classes, _ = build_dataset(options, "val", options.val_annotations, classes=classes)
    assert val_classes == classes == ["archery", "walking"] and val.labels == [1]
