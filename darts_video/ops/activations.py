"""How attention weights are normalised: the ``activation`` field of an operation.

Dot-product attention, with scores S = Q·Kᵀ over the L keys of a token set (d channels per head):

- ``softmax``: A = softmax(S / √d), the Transformer / embedded-Gaussian non-local form. Computed by
  ``F.scaled_dot_product_attention``, which never materialises the L×L matrix.
- ``sigmoid``: A = σ(S / √d − log L), sigmoid attention (Ramapuram et al., 2024); the −log L bias
  makes each row sum to about 1 at initialisation. Rows do not compete. Materialises L×L.
- ``linear``: A = S / L, the non-local "dot product" form (Wang et al., 2018); computed as
  Q·(Kᵀ·V) / L, linear in L, or as (Q·Kᵀ)·V / L when L×L is the smaller intermediate (short
  temporal sets: L = T frames, fewer than d channels).

Map-based attention, with one logit m per position:

- ``softmax``: w = L · softmax(m) over the token set (mean weight 1, positions compete);
- ``sigmoid``: w = σ(m), CBAM's gate;
- ``linear``: w = m, an unnormalised (bilinear) gate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from darts_video.errors import ConfigError
from darts_video.ops.tokens import from_tokens, to_tokens

ACTIVATIONS = ("softmax", "sigmoid", "linear")


def dot_product_attention(q: Tensor, k: Tensor, v: Tensor, activation: str) -> Tensor:
    """(B, heads, Lq, d), (B, heads, L, d), (B, heads, L, dv) -> (B, heads, Lq, dv)."""
    num_keys = k.shape[-2]
    if activation == "softmax":
        # The fused kernels need unit stride along channels; tokens of a conv output have stride L,
        # and with them SDPA silently falls back to materialising the L x L matrix.
        q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
        return F.scaled_dot_product_attention(q, k, v)
    if activation == "sigmoid":
        # One L x L matrix, written once: the scale and the -log L bias go into the matmul, and the
        # sigmoid runs in place (baddbmm's backward needs only q and k, the sigmoid's its output).
        batch = q.shape[:-2]
        bias = q.new_full((1, 1, 1), -math.log(num_keys))
        scores = torch.baddbmm(bias, q.flatten(0, -3), k.flatten(0, -3).transpose(-2, -1), alpha=q.shape[-1] ** -0.5)
        return (scores.sigmoid_() @ v.flatten(0, -3)).unflatten(0, batch)  # (B, heads, Lq, dv)
    if activation == "linear":
        if q.shape[-2] * num_keys <= k.shape[-1] * v.shape[-1]:  # Lq x L is smaller than d x dv
            return (q @ k.transpose(-2, -1)) @ v / num_keys
        return q @ (k.transpose(-2, -1) @ v) / num_keys
    raise ConfigError(f"unknown attention activation {activation!r}; expected one of {ACTIVATIONS}")


def map_weights(logits: Tensor, activation: str, dim: str) -> Tensor:
    """Per-position weights (N, 1, T, H, W) from logits of the same shape."""
    if activation == "softmax":
        tokens = to_tokens(logits, dim)  # (B, 1, L, 1)
        weights = tokens.softmax(dim=-2) * tokens.shape[-2]
        return from_tokens(weights, dim, logits.shape)
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    if activation == "linear":
        return logits
    raise ConfigError(f"unknown attention activation {activation!r}; expected one of {ACTIVATIONS}")
