"""The skeleton the search and the retraining share, so that each loop reads as what it alone does.

:class:`TrainingRun` is one process's part of a run: seeding, the process group, the run
directory, resuming every component from the checkpoint (each rank its own random generators),
the batches of an epoch (on the device, normalised, bad videos recorded with every rank agreeing,
data and compute time measured), the epoch's totals summed over ranks, and checkpoints with a
format version: at the end of every epoch, and every ``checkpoint_every`` steps inside one.

    run = TrainingRun(config.out, seed=config.seed, device=config.resolved_device(), checkpoint_every=config.checkpoint_every)
    ... build data and model (bad options raise here, before any folder exists) ...
    run.open(config, num_videos=len(dataset), max_bad_videos=config.max_bad_videos)
    meter = EpochMeter()
    components = {"model": model, "optimizer": optimizer, ..., "meter": meter}
    start_epoch, step, under_way = resume_point(run.resume(components))
    for epoch in range(start_epoch, epochs):
        if not (under_way and epoch == start_epoch):  # else: the checkpoint's meter, as far as it got
            components["meter"] = meter = EpochMeter()
        loader.sampler.set_epoch(epoch, start=meter.batches * loader.batch_size)
        for clips, labels in run.batches(loader, transform, meter, f"epoch {epoch + 1}/{epochs}"):
            ... the loop's own step; step += 1; meter.add(loss=..., correct=..., seen=...)
            run.checkpoint_inside_epoch(components, meter, epoch=epoch, step=step)
        totals = meter.reduced(run.device)
        run.checkpoint(components, epoch=epoch, step=step)

A checkpoint inside an epoch holds the epoch's meter (its sums and how many batches the loader
had given), so the resumed run reads the rest of the epoch's order with every generator as it
was, and logs the epoch's totals as the uninterrupted run does.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from darts_video.data import BadVideoLog, ClipTransform
from darts_video.engine import distributed
from darts_video.engine.checkpoint import CheckpointError, restore_rng_state, rng_state
from darts_video.engine.progress import progress as show_progress
from darts_video.engine.rundir import RunDirectory

CHECKPOINT_FORMAT = 2  # 1: darts_video 0.1 (unversioned, one parameter group, rank 0's generators only)
# components that format 2 checkpoints written before checkpoints inside an epoch lack; such a
# checkpoint ends an epoch, so the meters start empty, and its run's bad videos were not kept
ADDED_IN_FORMAT_2 = frozenset({"meter", "val_meter", "bad_videos"})


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> Any: ...


def check_checkpoint_format(state: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint this version cannot continue, naming its format."""
    found = state.get("format", 1)
    if found != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {found}; this darts_video continues format {CHECKPOINT_FORMAT} runs only "
            f"(format 1 came from darts_video 0.1, whose optimiser had one parameter group): start a new run directory"
        )


def resume_point(state: dict[str, Any] | None) -> tuple[int, int, bool]:
    """Where a run continues from its checkpoint ``state`` (None: a fresh run): its first epoch,
    the steps already taken, and whether that epoch is under way (the checkpoint was written
    inside it: its meters and positions are the checkpoint's)."""
    if state is None:
        return 0, 0, False
    under_way = bool(state.get("inside_epoch", False))  # checkpoints of darts_video <= 0.2 end epochs only
    return state["epoch"] + (0 if under_way else 1), state["step"], under_way


class EpochMeter:
    """Per-epoch sums (loss · clips, correct clips, clips seen, ...), data / compute time, and the
    loader batches drawn so far (skipped ones too: where a resumed epoch restarts its loader)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.data_s = self.compute_s = 0.0
        self.batches = 0
        self.epoch_batches = 0  # drawn + left when the loader last started

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "data_s": self.data_s, "compute_s": self.compute_s, "batches": self.batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums = defaultdict(float, state["sums"])
        self.data_s, self.compute_s, self.batches = state["data_s"], state["compute_s"], state["batches"]

    def add(self, **values: float) -> None:
        for name, value in values.items():
            self.sums[name] += float(value)

    def reduced(self, device: torch.device) -> dict[str, float]:
        """The sums over every rank (each rank must call this at the same point), and this rank's times."""
        names = sorted(self.sums)
        totals = dict(zip(names, distributed.all_reduce_sum([self.sums[n] for n in names], device)))
        return totals | {"time/data_s": self.data_s, "time/compute_s": self.compute_s}


class TrainingRun:
    """One process's part of a search or a retraining (see the module docstring)."""

    def __init__(self, out: str, seed: int, device: str, checkpoint_every: int = 0) -> None:
        torch.manual_seed(seed)  # the same on every rank: the models start identical
        self.out, self.checkpoint_every = out, checkpoint_every
        self.rank, self.world_size, self.device = distributed.setup(device)
        self.is_writer = self.rank == 0
        self.directory: RunDirectory | None = None
        self.bad_videos = BadVideoLog(1, 1.0)

    def say(self, *args: Any) -> None:
        """Print on rank 0 only."""
        if self.is_writer:
            print(*args, flush=True)

    def open(self, config: Any, num_videos: int, max_bad_videos: float) -> RunDirectory:
        """Create (or check and reopen) the run directory for ``config`` (a search's or a retraining's
        options dataclass), once every option has been checked; its class's defaults (or its
        ``OLD_RUN_OPTIONS``, where a default changed) stand in for options that runs started before them lack."""
        lacking = dataclasses.asdict(type(config)()) | config.OLD_RUN_OPTIONS
        self.directory = RunDirectory(self.out, dataclasses.asdict(config), rank=self.rank, defaults=lacking)
        self.bad_videos = BadVideoLog(num_videos, max_bad_videos)
        return self.directory

    def resume(self, components: dict[str, Stateful]) -> dict[str, Any] | None:
        """Load every component from the latest checkpoint, restore this rank's generators and say
        where the run continues; returns the checkpoint (its counters), or None for a fresh run."""
        state = self.directory.resume_state()
        if state is None:
            return None
        check_checkpoint_format(state, self.directory.latest_checkpoint)
        for name, component in components.items():
            if name in state:
                component.load_state_dict(state[name])
            elif name not in ADDED_IN_FORMAT_2:
                raise CheckpointError(f"{self.directory.latest_checkpoint} holds no {name!r}; it was not written by this run's code")
        generators = state["rng"]
        if len(generators) != self.world_size:
            raise CheckpointError(f"{self.directory.latest_checkpoint} was written by {len(generators)} processes; "
                                  f"resume it with as many (this run has {self.world_size})")
        restore_rng_state(generators[self.rank])
        epoch, step, under_way = resume_point(state)
        self.say(f"resuming {self.directory.path} at step {step} (epoch {epoch + 1}" + (", under way)" if under_way else ")"))
        return state

    def checkpoint(self, components: dict[str, Stateful], is_best: bool = False, **counters: Any) -> None:
        """Save every component, the counters (epoch, step, ...) and every rank's generators."""
        generators = distributed.gather_objects(rng_state())
        state = {"format": CHECKPOINT_FORMAT, **{name: c.state_dict() for name, c in components.items()}, **counters, "rng": generators}
        self.directory.save_checkpoint(state, is_best=is_best)

    def checkpoint_inside_epoch(self, components: dict[str, Stateful], meter: EpochMeter, step: int, **counters: Any) -> None:
        """After a step: every ``checkpoint_every`` steps, a checkpoint of the epoch under way
        (``components`` must hold its meters). None after the epoch's last batch: the epoch's own
        checkpoint follows. Every rank takes the same steps, so all write (gather) or none."""
        if self.checkpoint_every and step % self.checkpoint_every == 0 and meter.batches < meter.epoch_batches:
            self.checkpoint(components, step=step, inside_epoch=True, **counters)

    def batches(self, loader: Iterable[dict], transform: ClipTransform, meter: EpochMeter, desc: str,
                progress: bool = True) -> Iterator[tuple[Tensor, Tensor]]:
        """The loader's batches as normalised (clips (B, 3, T, H, W), labels (B,)) on the device.

        Bad videos are recorded on every rank alike (see :meth:`record_failures`); a batch in
        which every video failed is skipped by all ranks together. ``meter`` counts the batches
        drawn; time spent waiting for a batch counts as data time, time until the next one is
        asked for as compute time.
        """
        meter.epoch_batches = meter.batches + len(loader)
        tick = time.perf_counter()
        for batch in show_progress(loader, desc, enabled=self.is_writer and progress):
            meter.batches += 1
            if not self.record_failures(batch):
                continue
            # pinned on a GPU (shard_loader): the copies overlap with the work already queued
            clips = transform.normalize(batch["video"].to(self.device, non_blocking=True))
            labels = batch["label"].to(self.device, non_blocking=True)
            started = time.perf_counter()
            meter.data_s += started - tick
            yield clips, labels
            tick = time.perf_counter()
            meter.compute_s += tick - started

    def record_failures(self, batch: dict) -> bool:
        """Record ``batch``'s failed videos on every rank (the failures of all ranks are shared,
        so all ranks apply the limit to the same global count and stop together), and say whether
        every rank has clips to use: False when any rank's batch is empty, so all skip it."""
        failures, empty = batch["failures"], batch["video"] is None
        if distributed.is_distributed():
            new, any_empty = distributed.all_reduce_sum([float(len(failures)), float(empty)], self.device)
            if new:
                failures = [f for rank_failures in distributed.gather_objects(list(failures)) for f in rank_failures]
            empty = any_empty > 0
        self.bad_videos.record(failures)
        return not empty

    def log(self, record: dict[str, Any]) -> None:
        self.directory.log_metrics(record)

    def close(self) -> None:
        self.directory.close()
        distributed.barrier()
