"""The non-local block (Wang et al., 2018) as PySlowFast implements it: the paper's baseline."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from darts_video.errors import ConfigError
from darts_video.ops.activations import dot_product_attention
from darts_video.ops.tokens import from_tokens, to_tokens

_ACTIVATION_OF = {"softmax": "softmax", "dot_product": "linear"}


class NonLocalBlock(nn.Module):
    """Residual pairwise attention over all T·H·W positions, equal to PySlowFast's ``Nonlocal``.

    ``instantiation="softmax"`` is the embedded Gaussian, softmax(θᵀφ / √C')·g;
    ``"dot_product"`` is θᵀφ / L'·g (L' key positions). Keys and values may be max-pooled by
    ``pool_size`` (e.g. (1, 2, 2)). The final BatchNorm's scale starts at zero, so a fresh block is
    the identity and can be inserted into a pretrained network. Parameter names follow PySlowFast,
    so its checkpoints load into this module.
    """

    def __init__(
        self,
        dim: int,
        dim_inner: int | None = None,
        pool_size: Sequence[int] | None = None,
        instantiation: str = "softmax",
        zero_init_final_norm: bool = True,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if instantiation not in _ACTIVATION_OF:
            raise ConfigError(f"unknown non-local instantiation {instantiation!r}; expected one of {tuple(_ACTIVATION_OF)}")
        dim_inner = dim_inner or max(1, dim // 2)
        self.instantiation = instantiation
        self.conv_theta = nn.Conv3d(dim, dim_inner, kernel_size=1)
        self.conv_phi = nn.Conv3d(dim, dim_inner, kernel_size=1)
        self.conv_g = nn.Conv3d(dim, dim_inner, kernel_size=1)
        self.conv_out = nn.Conv3d(dim_inner, dim, kernel_size=1)
        self.bn = nn.BatchNorm3d(dim, eps=norm_eps, momentum=norm_momentum)
        if zero_init_final_norm:
            nn.init.zeros_(self.bn.weight)
        use_pool = pool_size is not None and any(size > 1 for size in pool_size)
        self.pool = nn.MaxPool3d(kernel_size=tuple(pool_size), stride=tuple(pool_size)) if use_pool else None

    def forward(self, x: Tensor) -> Tensor:  # (N, C, T, H, W)
        keys_from = self.pool(x) if self.pool is not None else x
        theta = to_tokens(self.conv_theta(x), "spatiotemporal")  # (N, 1, L, C')
        phi = to_tokens(self.conv_phi(keys_from), "spatiotemporal")  # (N, 1, L', C')
        g = to_tokens(self.conv_g(keys_from), "spatiotemporal")  # (N, 1, L', C')
        attended = dot_product_attention(theta, phi, g, _ACTIVATION_OF[self.instantiation])  # (N, 1, L, C')
        return x + self.bn(self.conv_out(from_tokens(attended, "spatiotemporal", x.shape)))

    def extra_repr(self) -> str:
        return f"instantiation={self.instantiation}"
