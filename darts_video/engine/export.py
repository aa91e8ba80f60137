"""A trained model as a standalone ``torch.export`` program (``.pt2``): it loads with
``torch.export.load(path).module()`` alone, without this package, and takes any batch size.

The program takes what a user feeds it: uint8 RGB clips ``(N, 3, T, H, W)``, resized and
cropped as for testing; it standardises them inside with the run's mean / std, so the
statistics the weights expect cannot be lost or mixed up on the way to deployment.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from darts_video.errors import ConfigError
from darts_video.utils.files import atomic_write_bytes


class StandardisedInput(nn.Module):
    """``model((clips / 255 - mean) / std)`` for uint8 clips (N, 3, T, H, W)."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:  # uint8 (N, 3, T, H, W)
        return self.model((clips.float() / 255 - self.mean) / self.std)


def export_model(model: nn.Module, example: torch.Tensor, path: str | Path, mean: Sequence[float], std: Sequence[float]) -> Path:
    """Export ``model`` in eval mode, behind :class:`StandardisedInput`, for uint8 clips shaped like
    ``example`` (N, 3, T, H, W); the batch size is dynamic."""
    if example.dtype != torch.uint8:
        raise ConfigError(f"export_model takes uint8 example clips (what the exported program will take), got {example.dtype}")
    was_training = model.training
    model.eval()
    wrapped = StandardisedInput(model, mean, std).to(example.device)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        program = torch.export.export(wrapped, (example,), dynamic_shapes=({0: batch},))
    model.train(was_training)
    archive = io.BytesIO()
    torch.export.save(program, archive)
    return atomic_write_bytes(path, archive.getvalue())


def load_exported(path: str | Path) -> nn.Module:
    return torch.export.load(str(path)).module()
