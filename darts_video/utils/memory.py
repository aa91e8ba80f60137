"""Peak memory of a function call, on CUDA from the allocator, on Linux CPU from the resident set."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path

import torch


def peak_memory_bytes(fn: Callable[[], object], device: torch.device | str = "cpu") -> int | None:
    """Bytes by which memory peaked above its level before ``fn()``; ``None`` where unmeasurable.

    CUDA: the caching allocator's peak of allocated bytes. CPU: the rise of the process's peak
    resident set (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``), which counts real
    pages. Free heap memory is handed back to the system first (``malloc_trim``), so memory that
    ``fn`` reuses from earlier frees is faulted in afresh and counted too.
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
    _release_free_heap()
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


def _release_free_heap() -> None:
    """glibc keeps freed chunks resident; a later allocation reusing them would not raise the RSS."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None
