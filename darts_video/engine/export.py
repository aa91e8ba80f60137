"""A trained model as a standalone ``torch.export`` program (``.pt2``): it loads with
``torch.export.load(path).module()`` alone, without this package, and takes any batch size."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from darts_video.utils.files import atomic_write_bytes


def export_model(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Export ``model`` in eval mode for clips shaped like ``example`` (N, C, T, H, W), batch dynamic."""
    was_training = model.training
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    model.train(was_training)
    archive = io.BytesIO()
    torch.export.save(program, archive)
    return atomic_write_bytes(path, archive.getvalue())


def load_exported(path: str | Path) -> nn.Module:
    return torch.export.load(str(path)).module()
