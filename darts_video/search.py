"""The supernet search, top to bottom: data halves, supernet, bilevel loop, genotype per epoch.

Weights learn on the search-train half, α/β on the search-val half (never the evaluation set).
Every epoch derives and saves the genotype, logs α/β, and checkpoints everything needed to
continue identically; re-running the same configuration on the same folder resumes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from darts_video.backbones import create_backbone
from darts_video.data import BadVideoLog, save_split, stratified_split, write_label_map
from darts_video.diagram import genotype_to_text, write_diagram
from darts_video.engine import RunDirectory, distributed, restore_rng_state, rng_state, weight_step
from darts_video.engine.progress import progress
from darts_video.genotype import Genotype
from darts_video.options import AMP_DTYPES, build_dataset
from darts_video.search_config import WEIGHT_OPTIMIZERS, SearchConfig
from darts_video.space import SearchSpace
from darts_video.supernet import Supernet, derive_genotype
from darts_video.supernet.architect import Architect
from darts_video.supernet.diagnostics import collapse_diagnostics, parameter_free_ops


def run_search(config: SearchConfig) -> Genotype:
    """Search, or resume the search in ``config.out``; returns the final genotype (RUN/genotype.json).

    Under ``torchrun`` every process trains on its shard of each half with DDP; all ranks keep the
    same α/β (their gradients are averaged) and end with the same genotype; rank 0 writes.
    """
    torch.manual_seed(config.seed)  # the same on every rank: GDAS samples the same cells everywhere
    rank, world_size, device = distributed.setup(config.resolved_device())
    dataset, classes, transform = build_dataset(config, "train")
    train_indices, val_indices = stratified_split(dataset.labels, 0.5, config.seed)
    per_process = min(len(train_indices), len(val_indices)) // world_size
    if config.batch_size > per_process:
        raise ValueError(f"--batch-size {config.batch_size} is larger than a search half ({per_process} clips per process)")
    space = config.space()
    backbone = create_backbone(config.backbone, num_classes=len(classes), pretrained=config.pretrained,
                               pretrained_config=config.pretrained_config)
    config.resolve_statistics(backbone.input_statistics)  # the mean / std its weights expect, unless --mean / --std
    transform = transform.with_statistics(config.mean, config.std)
    model = Supernet(backbone, space, config.points, config.mode, config.partial_channels).to(device)
    # only now, with every option checked, does the run directory appear
    run = RunDirectory(config.out, dataclasses.asdict(config), rank=rank)
    if run.is_writer:
        save_split(run.path / "split.json", train_indices, val_indices, config.seed)
        write_label_map(classes, run.path / "classes.txt")
    trained = DistributedDataParallel(model, find_unused_parameters=config.mode == "gdas") if world_size > 1 else model
    say = print if run.is_writer else (lambda *args, **kwargs: None)
    bad_videos = BadVideoLog(len(dataset.labels), config.max_bad_videos)
    weight_optimizer = _weight_optimizer(model, config)
    amp_dtype = AMP_DTYPES[config.amp]
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(weight_optimizer, T_max=config.epochs, eta_min=config.lr / 50)
    architect = Architect(model, weight_optimizer, lr=config.arch_lr, order=config.order, beta_decay_weight=config.beta_decay)

    start_epoch, step = 0, 0
    state = run.resume_state()
    if state is not None:
        model.load_state_dict(state["model"])
        weight_optimizer.load_state_dict(state["weight_optimizer"])
        architect.optimizer.load_state_dict(state["arch_optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        restore_rng_state(state["rng"])
        say(f"resuming {run.path} after epoch {state['epoch'] + 1}")

    genotype_path = run.path / "genotype.json"
    parameter_free = parameter_free_ops(space)
    for epoch in range(start_epoch, config.epochs):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        model.temperature = config.tau_max - (config.tau_max - config.tau_min) * epoch / max(1, config.epochs - 1)
        search_arch = epoch >= config.warmup_epochs
        train_loader = distributed.shard_loader(Subset(dataset, train_indices), config.batch_size, config.workers, config.seed, True, epoch)
        val_batches = _Endless(lambda: distributed.shard_loader(Subset(dataset, val_indices), config.batch_size, config.workers, config.seed, True, epoch))
        totals = {"loss": 0.0, "correct": 0, "seen": 0, "arch_loss": 0.0, "arch_steps": 0, "data_s": 0.0, "compute_s": 0.0}
        tick = time.perf_counter()
        model.train()
        for batch in progress(train_loader, f"epoch {epoch + 1}/{config.epochs}", enabled=run.is_writer):
            bad_videos.record(batch["failures"])
            if batch["video"] is None:
                continue
            clips, labels = transform.normalize(batch["video"].to(device)), batch["label"].to(device)
            started = time.perf_counter()
            totals["data_s"] += started - tick
            if search_arch:
                val_batch = val_batches.next()
                bad_videos.record(val_batch["failures"])
                if val_batch["video"] is not None:
                    val_clips = transform.normalize(val_batch["video"].to(device))
                    totals["arch_loss"] += architect.step((clips, labels), (val_clips, val_batch["label"].to(device)), scheduler.get_last_lr()[0])
                    totals["arch_steps"] += 1
            where = f"step {step} (epoch {epoch + 1}); the last good checkpoint is {run.latest_checkpoint}"
            logits, loss_value = weight_step(trained, clips, labels, weight_optimizer, scaler, amp_dtype, where, max_grad_norm=5.0)
            step += 1
            totals["loss"] += loss_value * len(labels)
            totals["correct"] += (logits.argmax(1) == labels).sum().item()
            totals["seen"] += len(labels)
            tick = time.perf_counter()
            totals["compute_s"] += tick - started
        scheduler.step()
        keys = ("loss", "correct", "seen", "arch_loss", "arch_steps")
        totals.update(zip(keys, distributed.all_reduce_sum([totals[k] for k in keys], device)))
        totals["arch_steps"] /= world_size  # every rank took the same architecture steps

        genotype = derive_genotype(model.arch, config.provenance(epoch + 1))
        if run.is_writer:
            genotype.save(run.path / "genotypes" / f"epoch_{epoch + 1:03d}.json")
            genotype.save(genotype_path)
        record = {
            "step": step, "epoch": epoch + 1, "loss/train": totals["loss"] / max(1, totals["seen"]),
            "accuracy/train": 100 * totals["correct"] / max(1, totals["seen"]),
            "time/data_s": totals["data_s"], "time/compute_s": totals["compute_s"], "gdas/temperature": model.temperature,
        }
        if totals["arch_steps"]:
            record["loss/arch_val"] = totals["arch_loss"] / totals["arch_steps"]
        record.update(_probabilities(model, space))
        record.update(collapse_diagnostics(model.arch.op_probabilities(), model.arch.input_probabilities(), parameter_free))
        run.log_metrics(record)
        if run.is_writer:
            run.tensorboard.add_image("alpha/probabilities", _heatmap(model.arch.op_probabilities().detach()), step)
        run.save_checkpoint({
            "model": model.state_dict(), "weight_optimizer": weight_optimizer.state_dict(),
            "arch_optimizer": architect.optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "epoch": epoch, "step": step, "rng": rng_state(), "input_statistics": {"mean": config.mean, "std": config.std},
        })
        say(f"epoch {epoch + 1}/{config.epochs}: train loss {record['loss/train']:.3f}, accuracy {record['accuracy/train']:.1f} %"
              + (f", arch val loss {record['loss/arch_val']:.3f}" if "loss/arch_val" in record else " (warm-up: α frozen)")
              + f", op entropy {record['collapse/op_entropy/mean_relative']:.2f} of uniform, parameter-free {record['collapse/parameter_free/mean']:.2f}"
              + f"\n{genotype_to_text(genotype)}")

    run.close()
    distributed.barrier()  # rank 0 has written the last genotype
    final = Genotype.load(genotype_path)
    if run.is_writer:
        if bad_videos.failures:
            say(f"{len(bad_videos.failures)} videos failed to decode and were skipped: {bad_videos.write(run.path / 'bad_videos.txt')}")
        diagram = write_diagram(final, run.path / "cell", title=f"searched cell ({config.data}, {config.mode})")
        run.write_json("summary.json", {"genotype": str(genotype_path), "diagram": [str(p) for p in diagram], "steps": step})
    return derive_genotype(model.arch, final.provenance)  # this rank's own α: equal on every rank


def _weight_optimizer(model: Supernet, config: SearchConfig) -> torch.optim.Optimizer:
    weight_decay = WEIGHT_OPTIMIZERS[config.optimizer][1]
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.weight_parameters(), lr=config.lr, momentum=0.9, weight_decay=weight_decay)
    return torch.optim.AdamW(model.weight_parameters(), lr=config.lr, weight_decay=weight_decay)


class _Endless:
    """One persistent iterator over a loader, started again when exhausted (never a fresh
    ``iter(loader)`` per step, which would re-shuffle and restart workers every time)."""

    def __init__(self, make_loader: Callable[[], DataLoader]) -> None:
        self.make_loader = make_loader
        self.iterator = iter(make_loader())

    def next(self) -> dict:
        batch = next(self.iterator, None)
        if batch is None:
            self.iterator = iter(self.make_loader())
            batch = next(self.iterator)
        return batch


def _heatmap(probabilities: torch.Tensor, cell: int = 12) -> torch.Tensor:
    """(K, num_ops) probabilities -> a grey (1, K·cell, num_ops·cell) image: one row per node,
    one column per candidate in ``space.ops`` order, brightest where the probability is highest."""
    image = probabilities / probabilities.max().clamp_min(1e-12)
    return image.repeat_interleave(cell, dim=0).repeat_interleave(cell, dim=1).unsqueeze(0).float().cpu()


def _probabilities(model: Supernet, space: SearchSpace) -> dict[str, float]:
    """Every decision's probabilities as scalars: ``alpha/node1/dot_temporal_softmax``, ``beta/node2/input0``."""
    scalars = {}
    for number, row in enumerate(model.arch.op_probabilities().tolist(), start=1):
        scalars.update({f"alpha/node{number}/{spec.name}": p for spec, p in zip(space.ops, row)})
    for number, row in enumerate(model.arch.input_probabilities(), start=1):
        scalars.update({f"beta/node{number}/input{j}": p for j, p in zip(space.candidate_inputs(number), row.tolist())})
    return scalars
