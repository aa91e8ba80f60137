"""One folder holds everything a run produces, and re-running the same command resumes it.

    RUN/config.json        the resolved configuration (a different one on an existing run is refused)
    RUN/metrics.jsonl      one JSON object per logged step or epoch
    RUN/tensorboard/       TensorBoard events
    RUN/checkpoints/       latest.pt and best.pt, written atomically
    RUN/summary.json       written when the run finishes

Only rank 0 writes; other ranks read the same checkpoint to resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from darts_video.engine.checkpoint import load_checkpoint, save_checkpoint
from darts_video.errors import DartsVideoError
from darts_video.utils.files import atomic_write_text


def read_metrics(run: Path) -> list[dict[str, Any]]:
    """The records of ``run/metrics.jsonl``, one per epoch (none before the first)."""
    metrics = run / "metrics.jsonl"
    return [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []


RUN_FORMAT = 2  # 1: darts_video 0.1 (config.json without a format)
LOCATION_OPTIONS = {"out"}  # where the run lives: a folder moved or copied elsewhere resumes there


def read_run_config(run: Path) -> dict[str, Any]:
    """The options ``run/config.json`` holds (without its format field), to rebuild what it ran."""
    options = json.loads((Path(run) / "config.json").read_text())
    options.pop("run_format", None)
    return options


class RunConfigMismatch(DartsVideoError, ValueError):
    pass


class RunDirectory:
    def __init__(self, path: str | Path, config: dict[str, Any], rank: int = 0, defaults: dict[str, Any] | None = None) -> None:
        """``defaults``: the options' defaults. An option a run's config.json lacks was added after
        that run started, and counts as its default: such a run resumes while the option keeps it."""
        self.path, self.is_writer = Path(path), rank == 0
        self.config = config = {"run_format": RUN_FORMAT, **config}
        config_file = self.path / "config.json"
        if config_file.exists():
            previous = json.loads(config_file.read_text())
            previous = {**{key: value for key, value in (defaults or {}).items() if key not in previous}, **previous}
            found = previous.get("run_format", 1)
            if found != RUN_FORMAT:
                raise RunConfigMismatch(
                    f"{self.path} holds a run of format {found} (darts_video 0.1); this darts_video continues format {RUN_FORMAT} "
                    "runs only: use a new output directory (its genotypes and checkpoints still load for deriving and testing)"
                )
            differing = sorted(key for key in (set(previous) | set(config)) - LOCATION_OPTIONS if previous.get(key) != config.get(key))
            if differing:
                details = ", ".join(f"{key}: {previous.get(key)!r} -> {config.get(key)!r}" for key in differing)
                raise RunConfigMismatch(
                    f"{self.path} holds a run with another configuration ({details}); "
                    "use a new output directory, or the same options to resume it"
                )
        elif self.is_writer:
            self.write_json("config.json", config)
        self._writer: SummaryWriter | None = None
        self._purge_step: int | None = None

    @property
    def latest_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "latest.pt"

    def resume_state(self) -> dict[str, Any] | None:
        """The latest checkpoint, or None for a fresh run. Metrics and TensorBoard events logged
        after it (by a run killed before its next checkpoint) are dropped: the resumed run logs
        those steps again."""
        if not self.latest_checkpoint.exists():
            return None
        state = load_checkpoint(self.latest_checkpoint)
        if self.is_writer:
            kept = [record for record in self.read_metrics() if record["step"] <= state["step"]]
            atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(record) + "\n" for record in kept))
            self._purge_step = state["step"] + 1
        return state

    def save_checkpoint(self, state: dict[str, Any], is_best: bool = False) -> None:
        if not self.is_writer:
            return
        save_checkpoint(state, self.latest_checkpoint)
        if is_best:
            save_checkpoint(state, self.path / "checkpoints" / "best.pt")

    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line (``record`` must carry ``step``) and its numbers to TensorBoard."""
        if not self.is_writer:
            return
        with open(self.path / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.tensorboard.add_scalar(key, value, record["step"])

    def read_metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)

    @property
    def tensorboard(self) -> SummaryWriter:
        if self._writer is None:
            self._writer = SummaryWriter(str(self.path / "tensorboard"), purge_step=self._purge_step)
        return self._writer

    def write_json(self, name: str, data: Any) -> Path:
        return atomic_write_text(self.path / name, json.dumps(data, indent=2) + "\n")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
