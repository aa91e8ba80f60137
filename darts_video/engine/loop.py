"""The skeleton the search and the retraining share, so that each loop reads as what it alone does.

:class:`TrainingRun` is one process's part of a run: seeding, the process group, the run
directory, resuming every component from the checkpoint (each rank its own random generators),
the batches of an epoch (on the device, normalised, bad videos recorded with every rank agreeing,
data and compute time measured), the epoch's totals summed over ranks, and checkpoints with a
format version.

    run = TrainingRun(config.out, seed=config.seed, device=config.resolved_device())
    ... build data and model (bad options raise here, before any folder exists) ...
    run.open(dataclasses.asdict(config), num_videos=len(dataset), max_bad_videos=config.max_bad_videos)
    state = run.resume({"model": model, "optimizer": optimizer, ...})
    for epoch in ...:
        meter = EpochMeter()
        for clips, labels in run.batches(loader, transform, meter, f"epoch {epoch + 1}/{epochs}"):
            ... the loop's own step; meter.add(loss=..., correct=..., seen=...)
        totals = meter.reduced(run.device)
        run.checkpoint({"model": model, ...}, epoch=epoch, step=step)
"""

from __future__ import annotations

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


class EpochMeter:
    """Per-epoch sums (loss · clips, correct clips, clips seen, ...) and data / compute time."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.data_s = self.compute_s = 0.0

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

    def __init__(self, out: str, seed: int, device: str) -> None:
        torch.manual_seed(seed)  # the same on every rank: the models start identical
        self.out = out
        self.rank, self.world_size, self.device = distributed.setup(device)
        self.is_writer = self.rank == 0
        self.directory: RunDirectory | None = None
        self.bad_videos = BadVideoLog(1, 1.0)

    def say(self, *args: Any) -> None:
        """Print on rank 0 only."""
        if self.is_writer:
            print(*args, flush=True)

    def open(self, config: dict[str, Any], num_videos: int, max_bad_videos: float) -> RunDirectory:
        """Create (or check and reopen) the run directory, once every option has been checked."""
        self.directory = RunDirectory(self.out, config, rank=self.rank)
        self.bad_videos = BadVideoLog(num_videos, max_bad_videos)
        return self.directory

    def resume(self, components: dict[str, Stateful]) -> dict[str, Any] | None:
        """Load every component from the latest checkpoint and restore this rank's generators;
        returns the checkpoint (its counters), or None for a fresh run."""
        state = self.directory.resume_state()
        if state is None:
            return None
        check_checkpoint_format(state, self.directory.latest_checkpoint)
        for name, component in components.items():
            component.load_state_dict(state[name])
        generators = state["rng"]
        if len(generators) != self.world_size:
            raise CheckpointError(f"{self.directory.latest_checkpoint} was written by {len(generators)} processes; "
                                  f"resume it with as many (this run has {self.world_size})")
        restore_rng_state(generators[self.rank])
        return state

    def checkpoint(self, components: dict[str, Stateful], is_best: bool = False, **counters: Any) -> None:
        """Save every component, the counters (epoch, step, ...) and every rank's generators."""
        generators = distributed.gather_objects(rng_state())
        state = {"format": CHECKPOINT_FORMAT, **{name: c.state_dict() for name, c in components.items()}, **counters, "rng": generators}
        self.directory.save_checkpoint(state, is_best=is_best)

    def batches(self, loader: Iterable[dict], transform: ClipTransform, meter: EpochMeter, desc: str,
                progress: bool = True) -> Iterator[tuple[Tensor, Tensor]]:
        """The loader's batches as normalised (clips (B, 3, T, H, W), labels (B,)) on the device.

        Bad videos are recorded on every rank alike (see :meth:`record_failures`); a batch in
        which every video failed is skipped by all ranks together. Time spent waiting for a
        batch counts as data time, time until the next one is asked for as compute time.
        """
        tick = time.perf_counter()
        for batch in show_progress(loader, desc, enabled=self.is_writer and progress):
            if not self.record_failures(batch):
                continue
            clips, labels = transform.normalize(batch["video"].to(self.device)), batch["label"].to(self.device)
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
