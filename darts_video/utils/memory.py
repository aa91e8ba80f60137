"""Peak memory of a function call, on CUDA from the allocator, on Linux CPU from the resident set."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import torch


def peak_memory_bytes(fn: Callable[[], object], device: torch.device | str = "cpu") -> int | None:
    """Bytes by which memory peaked above its level before ``fn()``; ``None`` where unmeasurable.

    CUDA: the caching allocator's peak of allocated bytes. CPU: the rise of the process's peak
    resident set (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``), which counts real
    pages; large tensors are fresh ``mmap``s, so it tracks tensor allocations closely.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - baseline
    if device.type != "cpu" or not sys.platform.startswith("linux"):
        return None
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    baseline = _proc_status_bytes("VmRSS")
    fn()
    return _proc_status_bytes("VmHWM") - baseline


def _proc_status_bytes(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) * 1024
