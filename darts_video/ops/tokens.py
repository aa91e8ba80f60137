"""Token sets of a video feature map, one per attention dimension.

An attention operation over ``dim`` attends among the positions of one token set:
- ``spatial``: the H·W positions of each frame (a batch of N·T sets);
- ``temporal``: the T frames at each location (a batch of N·H·W sets);
- ``spatiotemporal``: all T·H·W positions of a clip (a batch of N sets).
Channels are split into ``heads`` groups of equal size.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor

_TOKEN_LAYOUT = {
    "spatial": "(n t) heads (y x) d",
    "temporal": "(n y x) heads t d",
    "spatiotemporal": "n heads (t y x) d",
}
_FEATURE_LAYOUT = "n (heads d) t y x"


def to_tokens(features: Tensor, dim: str, heads: int = 1) -> Tensor:
    """(N, C, T, H, W) -> (B, heads, L, C // heads) with B sets of L tokens along ``dim``."""
    return rearrange(features, f"{_FEATURE_LAYOUT} -> {_TOKEN_LAYOUT[dim]}", heads=heads)


def from_tokens(tokens: Tensor, dim: str, shape: tuple[int, ...]) -> Tensor:
    """Inverse of :func:`to_tokens`; ``shape`` is (N, *, T, H, W) of the feature map."""
    n, _, t, y, x = shape
    return rearrange(tokens, f"{_TOKEN_LAYOUT[dim]} -> {_FEATURE_LAYOUT}", n=n, t=t, y=y, x=x)
