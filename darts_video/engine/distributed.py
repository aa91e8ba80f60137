"""DDP set-up for scripts launched with ``torchrun`` (gloo on CPU, NCCL on GPUs); a no-op alone."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from darts_video.data import EpochSampler, collate_clips


def setup(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, this process's device). Under torchrun, joins the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, torch.device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    on_gpu = torch.device(device).type == "cuda"
    if on_gpu:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if on_gpu else "gloo")
    return dist.get_rank(), world_size, torch.device(f"cuda:{local_rank}") if on_gpu else torch.device(device)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum numbers over ranks (identity when alone): epoch totals, a loss every rank must agree on."""
    if not is_distributed():
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank (``[value]`` when alone)."""
    if not is_distributed():
        return [value]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def teardown() -> None:
    if is_distributed():
        dist.destroy_process_group()


def shard_loader(dataset: Dataset, batch_size: int, workers: int, seed: int, shuffle: bool, device: torch.device | str,
                 indices: Sequence[int] | None = None) -> DataLoader:
    """Batches of this process's shard of ``indices`` (default: all of ``dataset``), built once per run.

    Its :class:`EpochSampler` yields ``(epoch, index)`` keys: call ``loader.sampler.set_epoch(epoch)``
    before each epoch. Shuffled loaders (training) drop the last partial batch; unshuffled ones
    (evaluation) shard without padding, so every sample is scored by exactly one rank.
    ``batch_size`` counts clips: an item holding several views (the crops of a test clip) counts
    as its views. Workers persist across epochs; batches are pinned for a GPU.
    """
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if is_distributed() else (0, 1)
    sampler = EpochSampler(range(len(dataset)) if indices is None else indices, shuffle, seed, rank, world_size)
    items = max(1, batch_size // getattr(dataset, "views_per_item", 1))  # datasets of one view per item need not say
    return DataLoader(dataset, batch_size=items, sampler=sampler, drop_last=shuffle, num_workers=workers, collate_fn=collate_clips,
                      persistent_workers=workers > 0, pin_memory=torch.device(device).type == "cuda",
                      generator=torch.Generator().manual_seed(seed))  # worker seeds: not from the global generator
