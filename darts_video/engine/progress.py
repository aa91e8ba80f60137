"""Progress over an epoch's batches: a tqdm bar on a terminal, plain lines anywhere else.

A bar redraws itself with carriage returns; written to a file or a pipe (a log, ``tee``, a
cluster's job output) every frame stays, and a search's log becomes mostly bar frames. Off a
terminal this prints one line every ``every`` steps instead (the loops print their own line per
epoch), so a short epoch adds nothing and a long one reports its pace now and then.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, enabled: bool = True, stream: TextIO | None = None, every: int = 100,
             unit: str = "batch", total: int | None = None) -> Iterator[T]:
    """Yield ``items``, showing progress on ``stream`` (default: stderr) when ``enabled``;
    ``total`` defaults to ``len(items)`` where there is one."""
    stream = sys.stderr if stream is None else stream
    if not enabled:
        yield from items
        return
    if stream.isatty():
        yield from tqdm(items, desc=desc, unit=unit, leave=False, file=stream, total=total)
        return
    total = len(items) if total is None and hasattr(items, "__len__") else total
    start = time.perf_counter()
    for step, item in enumerate(items, start=1):
        yield item
        if step % every == 0:
            rate = step / max(time.perf_counter() - start, 1e-9)
            of_total = f"/{total}" if total is not None else ""
            print(f"{desc}: {unit} {step}{of_total}, {rate:.2f} {unit}/s", file=stream, flush=True)  # epoch 2/8: batch 200/1250, ...
