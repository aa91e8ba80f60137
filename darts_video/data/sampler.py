"""Which samples a process reads, in which order, and the randomness each sample draws.

Loaders are built once and keep their worker processes across epochs, so nothing a worker holds
may change per epoch. The sampler runs in the main process instead and yields keys
``(epoch, index)``; datasets derive all of a sample's randomness (clip start, scale, crop, flip,
a procedural clip) from ``(seed, epoch, index)`` with :func:`sample_rng`. A sample is therefore
the same in any worker, with any number of workers and after a resume, new every epoch, and
different on every rank (ranks read different indices). Neither the order nor the samples touch
the global generators (dropout draws from them; GDAS samples cells from a generator of its own).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The generator of one sample: a pure function of (seed, epoch, index), same in every process."""
    return random.Random(f"darts_video:{seed}:{epoch}:{index}")  # str seeds are hashed with SHA-512, not hash()


def split_key(key: int | tuple[int, int]) -> tuple[int, int]:
    """``(epoch, index)`` from a sampler's key, or from a plain index (epoch 0)."""
    return (int(key[0]), int(key[1])) if isinstance(key, tuple) else (0, int(key))


class EpochSampler(Sampler[tuple[int, int]]):
    """This rank's share of ``indices`` as ``(epoch, index)`` keys; call :meth:`set_epoch` per epoch.

    Shuffled (training): a permutation seeded by (seed, epoch), cut to a multiple of the world
    size so every rank takes as many steps. Unshuffled (evaluation): ranks take every
    ``world_size``-th index, nothing padded or repeated, so every sample is scored exactly once.
    ``set_epoch(epoch, start)`` skips the epoch's first ``start`` keys of this rank: a run resumed
    from a checkpoint inside an epoch reads the rest of that epoch's order, as it would have.
    """

    def __init__(self, indices: Sequence[int], shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
        self.indices = np.asarray(indices, dtype=np.int64)
        self.shuffle, self.seed, self.rank, self.world_size = shuffle, seed, rank, world_size
        self.epoch = self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if start < 0:
            raise ValueError(f"start {start} of epoch {epoch} is negative")
        self.epoch, self.start = epoch, start

    def _mine(self) -> np.ndarray:
        if not self.shuffle:
            return self.indices[self.rank :: self.world_size]
        order = self.indices[np.random.default_rng([self.seed, self.epoch]).permutation(len(self.indices))]
        usable = len(order) // self.world_size * self.world_size
        return order[:usable][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, int(index)) for index in self._mine()[self.start :]])

    def __len__(self) -> int:
        """The keys left in this epoch after ``start``."""
        if self.shuffle:
            mine = len(self.indices) // self.world_size
        else:
            mine = len(range(self.rank, len(self.indices), self.world_size))
        return max(0, mine - self.start)
