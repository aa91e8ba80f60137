"""Run infrastructure shared by the search and the retraining: run directories and checkpoints."""

from darts_video.engine.checkpoint import CheckpointError, load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from darts_video.engine.rundir import RunConfigMismatch, RunDirectory

__all__ = [
    "CheckpointError",
    "RunConfigMismatch",
    "RunDirectory",
    "load_checkpoint",
    "restore_rng_state",
    "rng_state",
    "save_checkpoint",
]
