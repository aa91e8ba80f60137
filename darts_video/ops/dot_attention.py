"""Dot-product attention: pairwise similarity between the tokens of one dimension (non-local-like)."""

from __future__ import annotations

from torch import Tensor, nn

from darts_video.errors import ConfigError
from darts_video.ops.activations import ACTIVATIONS, dot_product_attention
from darts_video.ops.registry import DIMENSIONS, OpConfig, OpSpec, register_family
from darts_video.ops.tokens import from_tokens, to_tokens


class DotProductAttention(nn.Module):
    """Multi-head attention among the tokens of ``dim``, with 1×1×1 projections.

    Queries, keys and values use ``channels // reduction`` channels split into ``heads``; an output
    projection maps back to ``channels``. Every projection has a bias, as the non-local block's
    θ, φ, g and output convolutions do: the query bias gives every position a content-independent
    preference among the keys (b_q · k_j), which a cell holding the block's operation needs to
    learn as fast as the block does (docs/retraining.md). No positional encoding: the operation
    relates positions by content only, so it is invariant to permuting the tokens of a set.
    """

    def __init__(self, channels: int, dim: str, activation: str, reduction: int = 2, heads: int = 1) -> None:
        super().__init__()
        inner = channels // reduction
        if inner < heads or inner % heads:
            raise ConfigError(
                f"dot_{dim}_{activation}: channels // reduction = {channels} // {reduction} = {inner} "
                f"must be a positive multiple of heads = {heads}"
            )
        self.dim, self.activation, self.heads = dim, activation, heads
        self.qkv = nn.Conv3d(channels, 3 * inner, kernel_size=1)
        self.proj = nn.Conv3d(inner, channels, kernel_size=1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Weights saved before the projections had biases (darts_video 0.1) load as the same
        function: a zero bias."""
        if prefix + "qkv.weight" in state_dict and prefix + "qkv.bias" not in state_dict:
            state_dict[prefix + "qkv.bias"] = state_dict[prefix + "qkv.weight"].new_zeros(self.qkv.out_channels)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:  # (N, C, T, H, W)
        q, k, v = self.qkv(x).chunk(3, dim=1)  # each (N, C', T, H, W)
        q, k, v = (to_tokens(z, self.dim, self.heads) for z in (q, k, v))  # (B, heads, L, C' / heads)
        attended = dot_product_attention(q, k, v, self.activation)
        return self.proj(from_tokens(attended, self.dim, x.shape))  # (N, C, T, H, W)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, activation={self.activation}, heads={self.heads}"


@register_family("dot", dims=DIMENSIONS, activations=ACTIVATIONS)
def build_dot_attention(spec: OpSpec, channels: int, config: OpConfig) -> nn.Module:
    return DotProductAttention(channels, spec.dim, spec.activation, config.reduction, config.heads)
