"""Retraining, top to bottom: data, model, optimiser, epochs with validation, the multi-view
test, the cost report and the exported model.

Validation during training scores one centre clip per video; the final test averages
``test_clips × test_crops`` views per video (PySlowFast's protocol). Re-running the same command
on the same folder resumes from the last epoch's checkpoint; a finished run only re-tests.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from darts_video.backbones.statistics import InputStatistics
from darts_video.cell import Cell
from darts_video.data import BadVideoLog, ClipTransform, collate_clips, write_label_map
from darts_video.diagram import genotype_to_text
from darts_video.engine import CheckpointError, RunDirectory, distributed, load_checkpoint, restore_rng_state, rng_state, weight_step
from darts_video.engine.progress import progress
from darts_video.engine.cost import cost_report, format_cost
from darts_video.engine.evaluate import evaluate, format_evaluation
from darts_video.engine.export import export_model, load_exported
from darts_video.ops import NonLocalBlock
from darts_video.options import AMP_DTYPES, build_dataset
from darts_video.train_config import TrainConfig, architecture, build_model
from darts_video.utils.files import atomic_write_text


def run_training(config: TrainConfig) -> dict:
    """Train (or resume) in ``config.out``, then test; returns the summary (RUN/summary.json)."""
    torch.manual_seed(config.seed)
    rank, world_size, device = distributed.setup(config.resolved_device())
    say = print if rank == 0 else (lambda *args, **kwargs: None)
    train_set, classes, transform = build_dataset(config, "train")
    val_set, _, _ = build_dataset(config, "val", config.val_annotations, config.num_val_clips, classes=classes)
    if config.batch_size * world_size > len(train_set):
        raise ValueError(f"--batch-size {config.batch_size} x {world_size} processes is larger than the {len(train_set)} training clips")
    genotype, source = config.resolve_genotype()
    arch = architecture(config, genotype, len(classes))
    model = build_model(arch, config.pretrained, config.pretrained_config).to(device)
    config.resolve_statistics(model.input_statistics)  # the mean / std its weights expect, unless --mean / --std
    transform = transform.with_statistics(config.mean, config.std)
    run = RunDirectory(config.out, dataclasses.asdict(config), rank=rank)  # every option checked: now the folder
    say(f"model: {config.backbone} with {source}" + (f"\n{genotype_to_text(genotype)}" if genotype else ""))
    if run.is_writer:
        write_label_map(classes, run.path / "classes.txt")
    trained = DistributedDataParallel(model) if world_size > 1 else model
    optimizer = _optimizer(model, config)
    steps_per_epoch = len(_batches(train_set, config, shuffle=True))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch))
    amp_dtype = AMP_DTYPES[config.amp]
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    bad_videos = BadVideoLog(len(train_set.labels), config.max_bad_videos)

    start_epoch, step, best = 0, 0, -1.0
    state = run.resume_state()
    if state is not None:
        _check_architecture(state, arch, run.latest_checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, step, best = state["epoch"] + 1, state["step"], state["best"]
        restore_rng_state(state["rng"])
        say(f"resuming {run.path} after epoch {start_epoch}")

    for epoch in range(start_epoch, config.epochs):
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        totals = {"loss": 0.0, "correct": 0, "seen": 0, "data_s": 0.0, "compute_s": 0.0}
        model.train()
        tick = time.perf_counter()
        for batch in progress(_batches(train_set, config, shuffle=True, epoch=epoch), f"epoch {epoch + 1}/{config.epochs}",
                              enabled=run.is_writer):
            bad_videos.record(batch["failures"])
            if batch["video"] is None:
                continue
            clips, labels = transform.normalize(batch["video"].to(device)), batch["label"].to(device)  # (B, 3, T, H, W)
            started = time.perf_counter()
            totals["data_s"] += started - tick
            where = f"step {step} (epoch {epoch + 1}); the last good checkpoint is {run.latest_checkpoint}"
            logits, loss_value = weight_step(trained, clips, labels, optimizer, scaler, amp_dtype, where)
            scheduler.step()
            step += 1
            totals["loss"] += loss_value * len(labels)
            totals["correct"] += (logits.argmax(1) == labels).sum().item()
            totals["seen"] += len(labels)
            tick = time.perf_counter()
            totals["compute_s"] += tick - started
        keys = ("loss", "correct", "seen")
        totals.update(zip(keys, distributed.all_reduce_sum([totals[k] for k in keys], device)))
        val = evaluate(model, _batches(val_set, config, shuffle=False), transform, classes, len(val_set.labels), device, amp_dtype, bad_videos)
        record = {
            "step": step, "epoch": epoch + 1, "lr": scheduler.get_last_lr()[0],
            "loss/train": totals["loss"] / max(1, totals["seen"]), "accuracy/train": 100 * totals["correct"] / max(1, totals["seen"]),
            "accuracy/val_top1": val["clip/top1"], "time/data_s": totals["data_s"], "time/compute_s": totals["compute_s"],
        }
        run.log_metrics(record)
        is_best = val["clip/top1"] > best
        best = max(best, val["clip/top1"])
        run.save_checkpoint({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "epoch": epoch, "step": step, "best": best, "rng": rng_state(), "architecture": arch,
            "classes": classes, "input_statistics": {"mean": config.mean, "std": config.std},
        }, is_best=is_best)
        say(f"epoch {epoch + 1}/{config.epochs}: train loss {record['loss/train']:.3f}, accuracy {record['accuracy/train']:.1f} %, "
            f"val top-1 {val['clip/top1']:.1f} % (one clip per video)")

    run.close()
    distributed.barrier()
    test = test_model(model, config, classes, device, bad_videos)
    summary = {"model": source, "architecture": arch, "epochs": config.epochs, "steps": step, "test": test}
    if run.is_writer:
        say(format_evaluation(test, f"test ({config.backbone}, {source})"))
        atomic_write_text(run.path / "test.md", format_evaluation(test, f"test ({config.backbone}, {source})"))
        raw_examples = collate_clips([val_set[i] for i in range(min(4, len(val_set)))])["video"].to(device)  # uint8 (N, 3, T, H, W)
        summary["cost"] = _cost(model, transform.normalize(raw_examples))
        say(format_cost(summary["cost"]))
        if config.export:
            summary["export"] = _export(model, raw_examples, transform, run.path / "model.pt2")
            say(f"exported {summary['export']['path']} (max |difference| to the trained model: {summary['export']['max_abs_difference']:.2e})")
        if bad_videos.failures:
            summary["bad_videos"] = str(bad_videos.write(run.path / "bad_videos.txt"))
            say(f"{len(bad_videos.failures)} videos failed to decode and were skipped: {summary['bad_videos']}")
        run.write_json("summary.json", summary)
    return summary


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
    test = test_model(model, config, classes, device, BadVideoLog(1, 1.0))
    if distributed.is_distributed() and torch.distributed.get_rank() != 0:
        return test
    report = format_evaluation(test, f"test of {path} ({config.backbone}, {source})")
    print(report)
    atomic_write_text(path.parent.parent / f"eval_{path.stem}.md", report)
    return test


def test_model(model: torch.nn.Module, config: TrainConfig, classes: list[str], device: torch.device, bad_videos: BadVideoLog) -> dict:
    test_set, _, transform = build_dataset(config, "test", config.test_annotations or config.val_annotations, config.num_val_clips,
                                           num_test_clips=config.test_clips, classes=classes)
    return evaluate(model, _batches(test_set, config, shuffle=False), transform, classes, len(test_set.labels), device,
                    AMP_DTYPES[config.amp], bad_videos)


def _check_architecture(state: dict, arch: dict, path: Path) -> None:
    saved = state.get("architecture")
    if saved is None:
        raise CheckpointError(f"{path} is not a retraining checkpoint (no 'architecture'); search checkpoints hold a supernet")
    differing = {key: (saved.get(key), arch.get(key)) for key in set(saved) | set(arch) if saved.get(key) != arch.get(key)}
    if differing:
        details = "; ".join(f"{key}: checkpoint {old!r}, requested {new!r}" for key, (old, new) in sorted(differing.items()))
        raise CheckpointError(f"{path} holds another architecture ({details})")


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _warmup_cosine(warmup_steps: int, total_steps: int):
    """Learning-rate factor per step: linear from 1/warm-up to 1, then a cosine down to 0."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def _batches(dataset, config: TrainConfig, shuffle: bool, epoch: int = 0):
    return distributed.shard_loader(dataset, config.batch_size, config.workers, config.seed, shuffle, epoch)


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
