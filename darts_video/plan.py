"""The plan of a search before it runs: memory, time per step and the wall time of the whole run,
measured on the configured supernet with a few real steps on clips of the real shape.

    plan = plan_search(config, PlanOptions(memory_limit_gib=40))
    print(format_plan(plan))          # darts_video.plan_report

What is measured, on the device the search would use (``scripts/plan_search.py`` takes the
search's own options):

- the search step as the loop runs it (architecture step on a search-val batch, then the weight
  step) of the whole supernet and of the backbone with one insertion point's cell alone, and the
  bare backbone's training step: peak memory and mean seconds of each part. Random clips of the
  data's shape stand in for real ones: a step's cost does not depend on pixel values;
- the largest batch per device whose search step fits under the memory limit: doubling from the
  configured batch, then bisecting. A probe that the probes so far predict (linearly in the batch)
  to exceed the limit by over 10 % is not run (nearer ones are: the line is an approximation), so
  the planner never tries a batch far beyond the limit;
- the data time: the real loader's batches, and the loading of the selection clips;
- the selection's forward passes, with every candidate and through the bare backbone: each
  perturbation evaluation is projected from the number of candidates it runs (the candidates a
  decided node keeps are counted at the mean candidate's cost: which one wins is not known yet);
- the shortlist (``--shortlist``): the path scores of its pool, projected like the selection's
  evaluations, and the short trainings, from the training step of one cell drawn from the space
  (which cells the shortlist trains is not known before the search).

Peak memory: on CUDA the allocator's peak; on CPU the tensors held between steps (weights,
gradients, optimiser states and the step's clips, counted) plus the rise of the process's
resident set during the step (``utils/memory.py``).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from darts_video.backbones import create_backbone
from darts_video.data import stratified_split
from darts_video.derive import selection_batches
from darts_video.engine import save_checkpoint, weight_step
from darts_video.errors import ConfigError, DartsVideoError
from darts_video.engine.distributed import shard_loader
from darts_video.engine.optim import create_weight_optimizer, current_lr
from darts_video.models import create_model
from darts_video.options import AMP_DTYPES, build_dataset
from darts_video.search import MAX_GRAD_NORM, SearchParts, build_search_parts
from darts_video.search_config import WEIGHT_OPTIMIZERS, SearchConfig
from darts_video.shortlist import proposal_count, round_plan
from darts_video.space import SearchSpace
from darts_video.supernet.select import per_clip_scores
from darts_video.utils.memory import peak_memory_bytes

GIB = 2**30
PREDICTION_MARGIN = 1.1  # a batch predicted above 1.1 x the limit is not run; nearer ones are measured
SELECTION_BATCH = 32  # clips per forward of the perturbation selector (derive.selection_batches)


@dataclass
class PlanOptions:
    steps: int = 3  # timed steps per measurement, after one warm-up step
    memory_limit_gib: float | None = None  # None: the CUDA device's memory, or the memory available on CPU
    max_batch: int = 256
    processes: int = 1  # processes of the planned torchrun run: steps per epoch divide by it
    without_data: bool = False  # random clips of --num-frames x --crop-size², no data read (no data time)
    classes: int = 400  # classes when without data
    startup_s: float = 0.0  # the interpreter's start and the imports, as the planning process took them (process_startup_seconds)

    def __post_init__(self) -> None:
        for name in ("steps", "max_batch", "processes", "classes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--plan-{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.memory_limit_gib is not None and self.memory_limit_gib <= 0:
            raise ConfigError(f"--memory-limit must be positive (GiB), got {self.memory_limit_gib}")


@dataclass
class StepCost:
    """One network's step at one batch: peak bytes (None where unmeasurable) and mean seconds."""

    peak_bytes: int | None
    weight_s: float
    arch_s: float | None = None  # None: no architecture step (the bare backbone)


@dataclass
class Probe:
    batch: int
    peak_bytes: int | None  # None: not run (predicted above the limit) or out of memory
    how: str  # "measured", "predicted" or "out of memory"
    fits: bool


@dataclass
class Plan:
    description: dict
    clip_shape: list[int]  # (3, T, H, W)
    batch_size: int
    backbone: StepCost
    points: dict[str, StepCost]  # the backbone with that point's cell alone
    total: StepCost
    data_batch_s: float | None  # the loader's seconds per batch (None: no data read)
    data_step_s: dict[str, float]  # a step's wait for data: "warmup" and "search" epochs
    memory_limit_bytes: int
    memory_limit_source: str
    largest_batch: int
    probes: list[Probe]
    per_clip_bytes: float | None  # the search step's memory per extra clip
    backbone_per_clip_bytes: float | None  # the bare backbone's training step's
    selection: dict
    shortlist: dict
    checkpoint_s: float
    setup_s: float
    steps_per_epoch: int
    projection: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def plan_search(config: SearchConfig, options: PlanOptions | None = None) -> Plan:
    """Measure and project the search ``config`` describes (see the module docstring)."""
    options = options or PlanOptions()
    config = dataclasses.replace(config)  # resolving the statistics must not touch the caller's
    device = torch.device(config.resolved_device())
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    data = _DataSource(config, options, device)
    num_classes, shape, batch = data.num_classes, data.clip_shape, config.batch_size
    parts = _still(build_search_parts(config, _backbone(config, num_classes), device))
    setup_s = options.startup_s + time.perf_counter() - started - data.measuring_s  # what the search does before its first step

    bare = _backbone(config, num_classes).to(device)
    bare_optimizer = create_weight_optimizer(bare, config.optimizer, 0.0, WEIGHT_OPTIMIZERS[config.optimizer][1])  # _still's reason
    bare_step = _training_step(bare, bare_optimizer, config)
    backbone = _measure(lambda b: bare_step(*_clips(b, shape, num_classes, device)), batch, options.steps, device, [bare], [bare_optimizer])
    bare_double = step_peak_bytes(lambda: bare_step(*_clips(2 * batch, shape, num_classes, device)), device, [bare], [bare_optimizer])
    selection_clips = data.selection_batch[0]
    bare_forward_s = _timed(lambda: _selection_forward(bare, selection_clips), device, options.steps)
    del bare, bare_optimizer, bare_step
    _release(device)

    points = {}
    if len(parts.model.points) > 1:
        for point in parts.model.points:
            alone = _still(build_search_parts(config, _backbone(config, num_classes), device, points=[point]))
            points[point] = _measure(_search_step(alone, shape, num_classes, device), batch, options.steps, device,
                                     [alone.model], [alone.weight_optimizer, alone.architect.optimizer])
            del alone
            _release(device)
    step = _search_step(parts, shape, num_classes, device)
    held = ([parts.model], [parts.weight_optimizer, parts.architect.optimizer])
    total = _measure(step, batch, options.steps, device, *held)
    if not points:
        points = {parts.model.points[0]: total}

    limit, limit_source = _memory_limit(options, device)
    probes = _largest_batch(lambda b: _probe(step, b, device, *held), batch, limit, options.max_batch, total.peak_bytes)
    largest = max([p.batch for p in probes if p.fits], default=0)
    full_forward_s = _timed(lambda: per_clip_scores(parts.model, [data.selection_batch], parts.model.mask), device, options.steps)
    selection = _selection(config, parts.model.space, data, full_forward_s, bare_forward_s)
    steps_per_epoch = data.train_size // options.processes // batch
    shortlist = _shortlist(config, parts.model.space, data, full_forward_s, bare_forward_s, steps_per_epoch, options.steps, device)
    checkpoint_s = _checkpoint_seconds(parts)

    plan = Plan(
        description=_describe(config, parts, device), clip_shape=list(shape), batch_size=batch, backbone=backbone, points=points,
        total=total, data_batch_s=data.batch_s, data_step_s=_data_step(data, config, total), memory_limit_bytes=limit,
        memory_limit_source=limit_source, largest_batch=largest, probes=probes, per_clip_bytes=_slope(probes),
        backbone_per_clip_bytes=_difference(bare_double, backbone.peak_bytes, batch), selection=selection, shortlist=shortlist,
        checkpoint_s=checkpoint_s, setup_s=setup_s, steps_per_epoch=steps_per_epoch,
    )
    plan.projection = project(plan, config)
    return plan


def project(plan: Plan, config: SearchConfig) -> dict[str, float]:
    """The search's wall time, in seconds, part by part: setup, the warm-up epochs (weight steps
    only), the search epochs (architecture + weight steps), a checkpoint per epoch, the selection,
    the shortlist."""
    steps, total = plan.steps_per_epoch, plan.total
    warmup = config.warmup_epochs * steps * (total.weight_s + plan.data_step_s["warmup"])
    search = (config.epochs - config.warmup_epochs) * steps * ((total.arch_s or 0.0) + total.weight_s + plan.data_step_s["search"])
    parts = {"setup_s": plan.setup_s, "warmup_epochs_s": warmup, "search_epochs_s": search,
             "checkpoints_s": config.epochs * plan.checkpoint_s, "selection_s": plan.selection["seconds"],
             "shortlist_s": plan.shortlist["seconds"]}
    return parts | {"total_s": sum(parts.values())}


def process_startup_seconds() -> float:
    """Seconds since this process started (Linux ``/proc``; 0 elsewhere): called first thing in a
    command's ``main``, the interpreter's start and the package's imports, which the search's
    process pays alike."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return 0.0
    return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22 of stat: the start, in clock ticks after boot


def selection_evaluations(space: SearchSpace) -> list[int]:
    """The candidate operations each evaluation of the perturbation selector runs, in its order
    (``select_by_perturbation``): per node, the supernet as it stands and once without each
    candidate operation, then the same for its inputs if it has several; a decided node runs one."""
    nodes, ops, evaluations = space.num_nodes, len(space.ops), []
    for number in range(1, nodes + 1):
        later = (nodes - number) * ops
        evaluations += [number - 1 + ops + later] + [number - 1 + ops - 1 + later] * ops
        inputs = len(space.candidate_inputs(number))
        if inputs > 1:
            evaluations += [number + later] * (inputs + 1)
    return evaluations


class _DataSource:
    """The clips' shape, the classes, the size of the search-train half and the data times: from
    the configured data, or (``without_data``) from the options alone."""

    def __init__(self, config: SearchConfig, options: PlanOptions, device: torch.device) -> None:
        selection_size = min(SELECTION_BATCH, config.batch_size, config.selection_clips)
        if options.without_data:
            self.num_classes, self.train_size = options.classes, config.num_clips // 2
            self.clip_shape = (3, config.num_frames, config.crop_size, config.crop_size)
            self.val_size, self.batch_s, self.selection_clip_s = config.num_clips - self.train_size, None, None
            self.selection_batch = _clips(selection_size, self.clip_shape, self.num_classes, device)
            self.measuring_s = 0.0
            return
        dataset, classes, transform = build_dataset(config, "train")
        train_indices, val_indices = stratified_split(dataset.labels, 0.5, config.seed)
        self.num_classes, self.train_size, self.val_size = len(classes), len(train_indices), len(val_indices)
        per_process = min(self.train_size, self.val_size) // options.processes
        if config.batch_size > per_process:
            raise ConfigError(f"--batch-size {config.batch_size} is larger than a search half ({per_process} clips per process)")
        started = time.perf_counter()
        loader = shard_loader(dataset, config.batch_size, config.workers, config.seed, True, device, train_indices)
        loader.sampler.set_epoch(0)
        waits, tick = [], time.perf_counter()
        for batch in loader:  # as the search's batches: the wait, then the clips normalised on the device
            if batch["video"] is not None:
                clips = transform.normalize(batch["video"].to(device))  # (B, 3, T, H, W)
                waits.append(time.perf_counter() - tick)
            if len(waits) > options.steps:
                break
            tick = time.perf_counter()
        if not waits:
            raise DartsVideoError(f"no clip of {config.annotations or config.data} could be loaded")
        self.clip_shape = tuple(clips.shape[1:])
        self.batch_s = sum(waits[1:]) / len(waits[1:]) if len(waits) > 1 else waits[0]  # the first: workers starting
        selected = time.perf_counter()
        batches, _ = selection_batches(dataclasses.replace(config, selection_clips=selection_size), classes, val_indices, device)
        self.selection_clip_s = (time.perf_counter() - selected) / selection_size
        self.selection_batch = batches[0]
        self.measuring_s = time.perf_counter() - started


def _still(parts: SearchParts) -> SearchParts:
    """The weights' learning rate set to 0: every step does the same arithmetic, but many steps
    on random clips and labels cannot drive fresh weights to non-finite losses (they did, for
    I3D-R50 with AdamW at 3e-3 within a few steps at batch 2)."""
    for group in parts.weight_optimizer.param_groups:
        group["lr"] = 0.0
    return parts


def _backbone(config: SearchConfig, num_classes: int) -> nn.Module:
    """The configured backbone with fresh weights: pretrained ones cost the same."""
    return create_backbone(config.backbone, num_classes=num_classes)


def _clips(batch: int, shape: tuple[int, ...], num_classes: int, device: torch.device) -> tuple[Tensor, Tensor]:
    return torch.randn(batch, *shape, device=device), torch.randint(0, num_classes, (batch,), device=device)  # (B, 3, T, H, W), (B,)


def _training_step(model: nn.Module, optimizer: torch.optim.Optimizer, config: SearchConfig) -> Callable:
    """The bare backbone's weight step (as the retraining's), timed as (None, seconds)."""
    scaler = torch.amp.GradScaler(next(model.parameters()).device.type, enabled=config.amp == "fp16")

    def step(clips: Tensor, labels: Tensor) -> tuple[None, float]:
        device = clips.device
        _synchronize(device)
        started = time.perf_counter()
        weight_step(model, clips, labels, optimizer, scaler, AMP_DTYPES[config.amp], "a planning step")
        _synchronize(device)
        return None, time.perf_counter() - started

    return step


def _search_step(parts: SearchParts, shape: tuple[int, ...], num_classes: int, device: torch.device) -> Callable[[int], tuple[float, float]]:
    """A search step at batch ``b`` as the loop runs it: (architecture step s, weight step s)."""

    def step(b: int) -> tuple[float, float]:
        clips, labels = _clips(b, shape, num_classes, device)
        val = _clips(b, shape, num_classes, device)
        _synchronize(device)
        started = time.perf_counter()
        parts.architect.step((clips, labels), val, current_lr(parts.weight_optimizer))
        _synchronize(device)
        arch_s = time.perf_counter() - started
        started = time.perf_counter()
        weight_step(parts.model, clips, labels, parts.weight_optimizer, parts.scaler, parts.amp_dtype, "a planning step", MAX_GRAD_NORM)
        _synchronize(device)
        return arch_s, time.perf_counter() - started

    return step


def _measure(step: Callable[[int], tuple[float | None, float]], batch: int, steps: int, device: torch.device,
             modules: list[nn.Module], optimizers: list[torch.optim.Optimizer]) -> StepCost:
    """One warm-up step (optimiser states, kernel choices), one step for the peak, ``steps`` timed."""
    step(batch)
    peak = step_peak_bytes(lambda: step(batch), device, modules, optimizers)
    times = [step(batch) for _ in range(steps)]
    arch = [a for a, _ in times if a is not None]
    return StepCost(peak, sum(w for _, w in times) / steps, sum(arch) / len(arch) if arch else None)


def step_peak_bytes(fn: Callable[[], object], device: torch.device, modules: list[nn.Module],
                    optimizers: list[torch.optim.Optimizer]) -> int | None:
    """The peak of tensor memory during ``fn()`` (module docstring)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    rise = peak_memory_bytes(fn, device)
    return None if rise is None else rise + _held_bytes(modules, optimizers)


def _held_bytes(modules: list[nn.Module], optimizers: list[torch.optim.Optimizer]) -> int:
    """Bytes of the weights, their gradients and the optimisers' states (each storage once)."""
    storages: dict[int, int] = {}
    tensors = [t for m in modules for p in m.parameters() for t in (p, p.grad) if t is not None]
    tensors += [t for m in modules for t in m.buffers()]
    tensors += [v for o in optimizers for state in o.state.values() for v in state.values() if isinstance(v, Tensor)]
    for tensor in tensors:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def _probe(step: Callable, batch: int, device: torch.device, modules: list[nn.Module], optimizers: list[torch.optim.Optimizer]) -> int | None:
    """The search step's peak at ``batch``; None when CUDA ran out of memory."""
    try:
        return step_peak_bytes(lambda: step(batch), device, modules, optimizers)
    except torch.OutOfMemoryError:
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        _release(device)
        return None


def _largest_batch(probe: Callable[[int], int | None], start: int, limit: int, max_batch: int, start_peak: int | None) -> list[Probe]:
    """Probes of the search step: doubling from ``start`` while it fits (or halving until it
    does), then bisecting; the largest fitting batch is the largest probe that fits."""
    probes: dict[int, Probe] = {}
    if start_peak is not None:
        probes[start] = Probe(start, start_peak, "measured", start_peak <= limit)

    def fits(b: int) -> bool:
        if b not in probes:
            predicted = _predict(list(probes.values()), b)
            if predicted is not None and predicted > PREDICTION_MARGIN * limit:
                probes[b] = Probe(b, round(predicted), "predicted", False)
            else:
                peak = probe(b)
                probes[b] = Probe(b, peak, "measured" if peak is not None else "out of memory", peak is not None and peak <= limit)
        return probes[b].fits

    lo, hi = 0, None
    b = min(start, max_batch)
    if fits(b):
        lo = b
        while lo < max_batch and hi is None:
            following = min(2 * lo, max_batch)
            lo, hi = (following, None) if fits(following) else (lo, following)
    else:
        hi = b
        while hi > 1 and not lo:
            lower = hi // 2
            lo, hi = (lower, hi) if fits(lower) else (0, lower)
    while hi is not None and lo and hi - lo > 1:
        middle = (lo + hi) // 2
        lo, hi = (middle, hi) if fits(middle) else (lo, middle)
    return sorted(probes.values(), key=lambda p: p.batch)


def _predict(probes: list[Probe], batch: int) -> float | None:
    """The peak at ``batch`` on the straight line through the measured probes (least squares)."""
    points = [(p.batch, p.peak_bytes) for p in probes if p.how == "measured"]
    if len({b for b, _ in points}) < 2:
        return None
    slope = _fit(points)
    mean_b, mean_p = (sum(v) / len(points) for v in zip(*points))
    return mean_p + slope * (batch - mean_b)


def _fit(points: list[tuple[int, int]]) -> float:
    mean_b, mean_p = (sum(v) / len(points) for v in zip(*points))
    return sum((b - mean_b) * (p - mean_p) for b, p in points) / sum((b - mean_b) ** 2 for b, _ in points)


def _slope(probes: list[Probe]) -> float | None:
    points = [(p.batch, p.peak_bytes) for p in probes if p.how == "measured"]
    return _fit(points) if len({b for b, _ in points}) > 1 else None


def _difference(double: int | None, single: int | None, batch: int) -> float | None:
    return None if double is None or single is None else (double - single) / batch


def _memory_limit(options: PlanOptions, device: torch.device) -> tuple[int, str]:
    if options.memory_limit_gib is not None:
        return round(options.memory_limit_gib * GIB), "--memory-limit"
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory, "the device's memory"
    match = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE) if Path("/proc/meminfo").exists() else None
    if match is None:
        raise ConfigError("the memory available is unknown on this system: give --memory-limit GiB")
    return int(match.group(1)) * 1024, "the memory available at start"


def _selection(config: SearchConfig, space: SearchSpace, data: _DataSource, full_s: float, bare_s: float) -> dict:
    """The selector's projected seconds: its data and its evaluations (module docstring)."""
    clips = min(config.selection_clips, data.val_size)
    if config.selector != "perturbation":
        return {"evaluations": 0, "clip_forwards": 0, "seconds": 0.0, "data_s": 0.0, "full_forward_s_per_clip": None}
    measured = len(data.selection_batch[1])
    evaluations = selection_evaluations(space)
    forwards = sum(_forward_s(full_s, bare_s, space, active) for active in evaluations) * clips / measured
    data_s = (data.selection_clip_s or 0.0) * clips
    return {"evaluations": len(evaluations), "clip_forwards": len(evaluations) * clips, "seconds": forwards + data_s, "data_s": data_s,
            "full_forward_s_per_clip": full_s / measured}


def _forward_s(full_s: float, bare_s: float, space: SearchSpace, active: int) -> float:
    """A selection batch's forward with ``active`` candidates running, from the measured forwards
    with all of them (``full_s``) and with none (``bare_s``): each candidate at the mean cost."""
    return bare_s + active * max(0.0, full_s - bare_s) / (space.num_nodes * len(space.ops))


def _shortlist(config: SearchConfig, space: SearchSpace, data: _DataSource, full_s: float, bare_s: float, steps_per_epoch: int,
               steps: int, device: torch.device) -> dict:
    """The shortlist's projected seconds: the pool's path scores (at most: a pool drawn from the
    evidence can be smaller) and the scoring of the trained
    cells (a path's forward: the bare backbone's plus one candidate per node), their clips, and
    ``shortlist × shortlist_epochs`` epochs of a cell's training steps (each waits for data as a
    warm-up step does); ``racing_s``: what its further rounds (racing or exploring) would add at
    most, when the first round's choice is not beyond noise (not in ``seconds``: whether they run
    is not known before)."""
    if not config.shortlist:
        return {"cells": 0, "path_scores": 0, "train_step_s": None, "seconds": 0.0, "racing_s": 0.0}
    path_s = _forward_s(full_s, bare_s, space, space.num_nodes) / len(data.selection_batch[1])  # per clip
    pool = min(config.shortlist_pool, space.num_cells - 1) + 1  # and the selector's cell
    proposals = min(pool, proposal_count(config.shortlist, config.shortlist_rounds, config.shortlist_later))
    scored_clips = min(config.shortlist_clips, data.val_size)
    cell = create_model(config.backbone, data.num_classes, space.sample(random.Random(config.seed)), points=config.points).to(device)
    optimizer = create_weight_optimizer(cell, config.optimizer, 0.0, WEIGHT_OPTIMIZERS[config.optimizer][1])  # _still's reason
    train_step = _training_step(cell, optimizer, config)
    shape, batch = data.clip_shape, config.batch_size
    step_s = _measure(lambda b: train_step(*_clips(b, shape, data.num_classes, device)), batch, steps, device, [cell], [optimizer]).weight_s
    wait = 0.0 if data.batch_s is None else data.batch_s if config.workers == 0 else max(0.0, data.batch_s - step_s)
    rounds = [cells * (epochs * steps_per_epoch * (step_s + wait) + scored_clips * path_s)  # each round's trainings and scoring
              for cells, epochs in round_plan(config.shortlist, config.shortlist_epochs, config.shortlist_rounds, config.shortlist_later, proposals)]
    path_scores = pool * min(config.selection_clips, data.val_size) * path_s
    data_s = (data.selection_clip_s or 0.0) * scored_clips
    return {"cells": config.shortlist, "path_scores": pool, "train_step_s": step_s, "seconds": path_scores + rounds[0] + data_s,
            "racing_s": sum(rounds[1:])}


def _selection_forward(model: nn.Module, clips: Tensor) -> None:
    """The bare backbone's forward as the selector runs the supernet's: no gradients, batch statistics."""
    with torch.no_grad():
        model.train()(clips)


def _timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        _synchronize(device)
        started = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - started)
    return sum(times) / repeats


def _checkpoint_seconds(parts: SearchParts) -> float:
    """One epoch's checkpoint (model and both optimisers), written as the search writes it."""
    state = {"model": parts.model.state_dict(), "weight_optimizer": parts.weight_optimizer.state_dict(),
             "arch_optimizer": parts.architect.optimizer.state_dict()}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        save_checkpoint(state, Path(folder) / "latest.pt")
        return time.perf_counter() - started


def _data_step(data: _DataSource, config: SearchConfig, total: StepCost) -> dict[str, float]:
    """A step's wait for data: in the main process (no workers) every batch is loaded in turn (a
    search step takes a search-train and a search-val batch); workers prepare batches while the
    step computes, so only what the step does not cover is waited for."""
    if data.batch_s is None:
        return {"warmup": 0.0, "search": 0.0}
    if config.workers == 0:
        return {"warmup": data.batch_s, "search": 2 * data.batch_s}
    return {"warmup": max(0.0, data.batch_s - total.weight_s), "search": max(0.0, data.batch_s - total.weight_s - (total.arch_s or 0.0))}


def _describe(config: SearchConfig, parts: SearchParts, device: torch.device) -> dict:
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else f" ({torch.cuda.get_device_name(device)})"
    return {"device": f"{device}{threads}", "backbone": config.backbone, "points": list(parts.model.points), "mode": config.mode,
            "order": config.order, "candidates": len(parts.model.space.ops), "nodes": parts.model.space.num_nodes, "amp": config.amp,
            "recompute": config.recompute, "epochs": config.epochs, "warmup_epochs": config.warmup_epochs, "selector": config.selector,
            "selection_clips": config.selection_clips, "workers": config.workers}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
