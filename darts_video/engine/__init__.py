"""Run infrastructure shared by the search and the retraining: run directories, checkpoints, the weight step."""

from darts_video.engine.checkpoint import CheckpointError, load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from darts_video.engine.rundir import RunConfigMismatch, RunDirectory, read_metrics, read_run_config
from darts_video.engine.step import NonFiniteLoss, weight_step

__all__ = [
    "CheckpointError",
    "NonFiniteLoss",
    "RunConfigMismatch",
    "RunDirectory",
    "load_checkpoint",
    "read_metrics",
    "read_run_config",
    "restore_rng_state",
    "rng_state",
    "save_checkpoint",
    "weight_step",
]
