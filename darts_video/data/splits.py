"""The search's split of a training set into the halves the weights and the architecture learn on.

The bilevel search trains weights on one half and architecture weights on the other, and never
looks at the evaluation set. The split is stratified by class, a pure function of the seed, and
saved to the run directory so a resumed or audited run uses exactly the same halves.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from darts_video.errors import ConfigError
from darts_video.utils.files import atomic_write_text


def stratified_split(labels: Sequence[int], val_fraction: float = 0.5, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices of the train and val halves: ``val_fraction`` of each class (rounded) goes to val."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(by_class):
        members = by_class[label]
        rng.shuffle(members)
        cut = round(len(members) * val_fraction)
        val += members[:cut]
        train += members[cut:]
    if not train or not val:
        raise ConfigError(f"a split of {len(labels)} samples at val_fraction {val_fraction} leaves one half empty")
    return sorted(train), sorted(val)


def save_split(path: str | Path, train: Sequence[int], val: Sequence[int], seed: int, names: Sequence[str] | None = None) -> Path:
    """JSON with the indices (and, given ``names``, what each index is, e.g. the video path)."""
    document = {"seed": seed, "train": list(train), "val": list(val)}
    if names is not None:
        document["train_names"] = [names[i] for i in train]
        document["val_names"] = [names[i] for i in val]
    return atomic_write_text(Path(path), json.dumps(document, indent=1) + "\n")


def load_split(path: str | Path) -> tuple[list[int], list[int]]:
    document = json.loads(Path(path).read_text())
    return document["train"], document["val"]
