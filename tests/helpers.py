"""Small helpers shared by the tests."""

from pathlib import Path

import torch
from torch import nn

VIDEOS = Path(__file__).resolve().parent / "data" / "videos"  # real files, see its README


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-12)).item()


def calibrate_batch_norms(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """Running statistics of real activations (one batch, in eval mode after): with random ones the
    signal of a deep random network fades and every input gives the same logits, so comparing two
    networks' logits would compare two constants."""
    for layer in model.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.momentum = 1.0
    with torch.no_grad():
        model.train()(inputs)
    return model.eval()
