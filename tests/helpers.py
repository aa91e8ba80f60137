"""Small helpers shared by the tests."""

from pathlib import Path

import torch

VIDEOS = Path(__file__).resolve().parent / "data" / "videos"  # real files, see its README


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-12)).item()
