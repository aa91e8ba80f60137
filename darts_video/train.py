"""Retraining, top to bottom: data, model, optimiser, epochs with validation, the multi-view
test, the cost report and the exported model.

Validation during training scores one centre clip per video; the final test averages
``test_clips × test_crops`` views per video (PySlowFast's protocol). Re-running the same command
on the same folder resumes from the last epoch's checkpoint; a finished run only re-tests.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from darts_video.backbones.statistics import InputStatistics
from darts_video.cell import Cell
from darts_video.data import BadVideoLog, ClipTransform, collate_clips, write_label_map
from darts_video.diagram import genotype_to_text
from darts_video.engine import CheckpointError, distributed, load_checkpoint, weight_step
from darts_video.engine.loop import EpochMeter, TrainingRun, resume_point
from darts_video.engine.optim import create_schedule, create_weight_optimizer, current_lr
from darts_video.engine.cost import cost_report, format_cost
from darts_video.engine.evaluate import evaluate, format_evaluation
from darts_video.engine.export import export_model, load_exported
from darts_video.errors import ConfigError
from darts_video.ops import NonLocalBlock
from darts_video.options import AMP_DTYPES, build_dataset
from darts_video.train_config import TrainConfig, architecture, build_model
from darts_video.utils.files import atomic_write_text


def run_training(config: TrainConfig) -> dict:
    """Train (or resume) in ``config.out``, then test; returns the summary (RUN/summary.json)."""
    run = TrainingRun(config.out, config.seed, config.resolved_device(), config.checkpoint_every)
    train_set, classes, transform = build_dataset(config, "train")
    val_set, _, _ = build_dataset(config, "val", config.val_annotations, config.num_val_clips, classes=classes)
    if config.batch_size * run.world_size > len(train_set):
        raise ConfigError(f"--batch-size {config.batch_size} x {run.world_size} processes is larger than the {len(train_set)} training clips")
    genotype, source = config.resolve_genotype()
    arch = architecture(config, genotype, len(classes))
    model = build_model(arch, config.pretrained, config.pretrained_config).to(run.device)
    config.resolve_statistics(model.input_statistics)  # the mean / std its weights expect, unless --mean / --std
    transform = transform.with_statistics(config.mean, config.std)
    directory = run.open(config, len(train_set.labels), config.max_bad_videos)  # every option checked: now the folder
    run.say(f"model: {config.backbone} with {source}" + (f"\n{genotype_to_text(genotype)}" if genotype else ""))
    if run.is_writer:
        write_label_map(classes, directory.path / "classes.txt")
    trained = DistributedDataParallel(model) if run.world_size > 1 else model
    optimizer = create_weight_optimizer(model, config.optimizer, config.lr, config.weight_decay)
    train_loader, val_loader = _batches(train_set, config, True, run.device), _batches(val_set, config, False, run.device)
    steps_per_epoch = len(train_loader)
    schedule = create_schedule(optimizer, config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch)
    amp_dtype = AMP_DTYPES[config.amp]
    scaler = torch.amp.GradScaler(run.device.type, enabled=config.amp == "fp16")
    meter, val_bad_videos = EpochMeter(), run.bad_videos.for_set(len(val_set.labels))
    components = {"model": model, "optimizer": optimizer, "scaler": scaler, "meter": meter, "bad_videos": run.bad_videos}
    counters = {"architecture": arch, "classes": classes, "input_statistics": {"mean": config.mean, "std": config.std}}

    state = run.resume({"architecture": _SameArchitecture(arch, directory.latest_checkpoint)} | components)
    start_epoch, step, under_way = resume_point(state)
    best = state["best"] if state is not None else -1.0

    for epoch in range(start_epoch, config.epochs):
        if not (under_way and epoch == start_epoch):  # else the checkpoint's meter, as far as the epoch got
            components["meter"] = meter = EpochMeter()
        train_loader.sampler.set_epoch(epoch, start=meter.batches * train_loader.batch_size)
        model.train()
        for clips, labels in run.batches(train_loader, transform, meter, f"epoch {epoch + 1}/{config.epochs}"):
            schedule.step_update(step)
            where = f"step {step} (epoch {epoch + 1}); the last good checkpoint is {directory.latest_checkpoint}"
            logits, loss_value = weight_step(trained, clips, labels, optimizer, scaler, amp_dtype, where)
            step += 1
            meter.add(loss=loss_value * len(labels), correct=(logits.argmax(1) == labels).sum().item(), seen=len(labels))
            run.checkpoint_inside_epoch(components, meter, epoch=epoch, step=step, best=best, **counters)
        totals = meter.reduced(run.device)
        val = evaluate(model, val_loader, transform, classes, len(val_set.labels), run.device, amp_dtype, val_bad_videos)
        record = {
            "step": step, "epoch": epoch + 1, "lr": current_lr(optimizer),
            "loss/train": totals["loss"] / max(1, totals["seen"]), "accuracy/train": 100 * totals["correct"] / max(1, totals["seen"]),
            "accuracy/val_top1": val["clip/top1"], "time/data_s": totals["time/data_s"], "time/compute_s": totals["time/compute_s"],
        }
        run.log(record)
        is_best = val["clip/top1"] > best
        best = max(best, val["clip/top1"])
        run.checkpoint(components, is_best=is_best, epoch=epoch, step=step, best=best, **counters)
        run.say(f"epoch {epoch + 1}/{config.epochs}: train loss {record['loss/train']:.3f}, accuracy {record['accuracy/train']:.1f} %, "
                f"val top-1 {val['clip/top1']:.1f} % (one clip per video)")

    run.close()
    test = test_model(model, config, classes, run.device, run.bad_videos)
    summary = {"model": source, "architecture": arch, "epochs": config.epochs, "steps": step, "test": test}
    if run.is_writer:
        report = format_evaluation(test, f"test ({config.backbone}, {source})")
        run.say(report)
        atomic_write_text(directory.path / "test.md", report)
        raw_examples = collate_clips([val_set[i] for i in range(min(4, len(val_set)))])["video"].to(run.device)  # uint8 (N, 3, T, H, W)
        summary["cost"] = _cost(model, transform.normalize(raw_examples))
        run.say(format_cost(summary["cost"]))
        if config.export:
            summary["export"] = _export(model, raw_examples, transform, directory.path / "model.pt2")
            run.say(f"exported {summary['export']['path']} (max |difference| to the trained model: {summary['export']['max_abs_difference']:.2e})")
        if run.bad_videos.failures:
            summary["bad_videos"] = str(run.bad_videos.write(directory.path / "bad_videos.txt"))
            run.say(f"{len(run.bad_videos.failures)} videos failed to decode and were skipped: {summary['bad_videos']}")
        directory.write_json("summary.json", summary)
    return summary


class _SameArchitecture:
    """The checkpoint's ``architecture`` as a resume component: loading it checks it is this run's."""

    def __init__(self, arch: dict, path: Path) -> None:
        self.arch, self.path = arch, path

    def state_dict(self) -> dict:
        return self.arch

    def load_state_dict(self, saved: dict) -> None:
        _check_architecture({"architecture": saved}, self.arch, self.path)


def evaluate_checkpoint(config: TrainConfig, checkpoint: str | None = None) -> dict:
    """``--eval-only``: the multi-view test of a checkpoint of the model ``config`` describes."""
    _, _, device = distributed.setup(config.resolved_device())
    path = Path(checkpoint) if checkpoint else Path(config.out) / "checkpoints" / "latest.pt"
    genotype, source = config.resolve_genotype()
    state = load_checkpoint(path)
    config.resolve_statistics(InputStatistics.recorded(state.get("input_statistics"), str(path)))  # as it was trained
    classes = state.get("classes", [])  # the training set's label map
    arch = architecture(config, genotype, len(classes))
    _check_architecture(state, arch, path)
    model = build_model(arch).to(device)
    model.load_state_dict(state["model"])
    test = test_model(model, config, classes, device, BadVideoLog(0, config.max_bad_videos))  # lists the test set's (see test_model)
    if distributed.is_distributed() and torch.distributed.get_rank() != 0:
        return test
    report = format_evaluation(test, f"test of {path} ({config.backbone}, {source})")
    print(report)
    atomic_write_text(path.parent.parent / f"eval_{path.stem}.md", report)
    return test


def test_model(model: torch.nn.Module, config: TrainConfig, classes: list[str], device: torch.device, bad_videos: BadVideoLog) -> dict:
    """The multi-view test; its bad videos are counted against the test set's size and listed in ``bad_videos``."""
    test_set, _, transform = build_dataset(config, "test", config.test_annotations or config.val_annotations, config.num_val_clips,
                                           num_test_clips=config.test_clips, classes=classes, num_test_crops=config.test_crops)
    return evaluate(model, _batches(test_set, config, False, device), transform, classes, len(test_set.labels), device,
                    AMP_DTYPES[config.amp], bad_videos.for_set(len(test_set.labels)))


def _check_architecture(state: dict, arch: dict, path: Path) -> None:
    saved = state.get("architecture")
    if saved is None:
        raise CheckpointError(f"{path} is not a retraining checkpoint (no 'architecture'); search checkpoints hold a supernet")
    differing = {key: (saved.get(key), arch.get(key)) for key in set(saved) | set(arch) if saved.get(key) != arch.get(key)}
    if differing:
        details = "; ".join(f"{key}: checkpoint {old!r}, requested {new!r}" for key, (old, new) in sorted(differing.items()))
        raise CheckpointError(f"{path} holds another architecture ({details})")


def _batches(dataset, config: TrainConfig, shuffle: bool, device: torch.device):
    return distributed.shard_loader(dataset, config.batch_size, config.workers, config.seed, shuffle, device)


def _cost(model: torch.nn.Module, clips: torch.Tensor) -> dict:
    blocks = {name.removesuffix(".attention"): m for name, m in model.named_modules() if isinstance(m, (Cell, NonLocalBlock))}
    return cost_report(model, clips, blocks)


def _export(model: torch.nn.Module, clips: torch.Tensor, transform: ClipTransform, path: Path) -> dict:
    """Export (taking uint8 clips, standardised inside), load the file back and compare its outputs
    with the model's on real clips (N, 3, T, H, W)."""
    export_model(model, clips, path, transform.mean, transform.std)
    model.eval()
    with torch.no_grad():
        difference = (load_exported(path)(clips) - model(transform.normalize(clips))).abs().max().item()
    return {"path": str(path), "max_abs_difference": difference, "input": "uint8 RGB (N, 3, T, H, W)",
            "mean": list(transform.mean), "std": list(transform.std)}
