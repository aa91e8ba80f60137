"""Side-by-side timing for benchmark scripts: candidates run round-robin, so noise hits them alike.

``torch.utils.benchmark.Timer`` times one statement at a time; alternating candidates is what
keeps their ratios meaningful on a shared machine, so the loop is ours, and its samples become
``torch.utils.benchmark.Measurement`` objects that ``Compare`` renders (units, significant
figures trimmed to the spread, noisy entries flagged). ``markdown_table`` is for what Compare
does not show: ratios, memory, FLOPs, accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch
from torch.utils.benchmark import Compare, Measurement, TaskSpec


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(candidates: dict[str, Callable[[], object]], device: torch.device, repeats: int = 5, warmup: int = 1,
                     label: str = "", description: str = "") -> dict[str, Measurement]:
    """Seconds per call of each candidate, measured in alternation within one run: a Measurement
    per candidate (row ``name``, column ``description`` of the ``label`` table; ``.median``)."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            samples[name].append(time.perf_counter() - start)
    return {name: Measurement(1, values, TaskSpec(stmt=name, setup="", label=label, sub_label=name, description=description,
                                                  num_threads=torch.get_num_threads()))
            for name, values in samples.items()}


def compare_table(measurements: Iterable[Measurement]) -> str:
    """torch.utils.benchmark.Compare's table of the measurements (median times)."""
    compare = Compare(list(measurements))
    compare.trim_significant_figures()
    compare.highlight_warnings()
    return str(compare).rstrip()


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
