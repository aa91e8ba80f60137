"""The non-local baseline equals PySlowFast's Nonlocal formula written with einsum."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from helpers import relative_error
from darts_video.ops import NonLocalBlock


def pyslowfast_nonlocal(block: NonLocalBlock, x: torch.Tensor, pool_size) -> torch.Tensor:
    """PySlowFast's ``Nonlocal.forward``, step by step, with an explicit (N, L, L') matrix."""
    n, _, t, h, w = x.shape
    theta = block.conv_theta(x)
    keys_from = F.max_pool3d(x, pool_size, pool_size) if pool_size else x
    phi, g = block.conv_phi(keys_from), block.conv_g(keys_from)
    dim_inner = theta.shape[1]
    theta, phi, g = (z.reshape(n, dim_inner, -1) for z in (theta, phi, g))
    theta_phi = torch.einsum("nct,ncp->ntp", theta, phi)
    if block.instantiation == "softmax":
        theta_phi = torch.softmax(theta_phi * dim_inner**-0.5, dim=2)
    else:
        theta_phi = theta_phi / theta_phi.shape[2]
    theta_phi_g = torch.einsum("ntg,ncg->nct", theta_phi, g).reshape(n, dim_inner, t, h, w)
    return x + block.bn(block.conv_out(theta_phi_g))


@pytest.mark.parametrize(
    "instantiation,pool_size,shape",
    list(itertools.product(("softmax", "dot_product"), (None, (1, 2, 2)), ((2, 8, 4, 6, 6), (1, 6, 1, 4, 8)))),
    ids=str,
)
def test_matches_the_pyslowfast_formula(instantiation, pool_size, shape):
    block = NonLocalBlock(shape[1], pool_size=pool_size, instantiation=instantiation)
    torch.nn.init.normal_(block.bn.weight)  # a trained-looking block, so the attention path shows
    block.eval()
    x = torch.randn(shape)
    assert relative_error(block(x) - x, pyslowfast_nonlocal(block, x, pool_size) - x) < 1e-5


def test_fresh_block_is_the_identity_and_still_learns():
    block = NonLocalBlock(8, dim_inner=4)
    x = torch.randn(2, 8, 4, 5, 5)
    assert torch.equal(block(x), x)
    block(x).pow(2).sum().backward()
    assert block.bn.weight.grad.abs().sum() > 0


def test_parameter_names_follow_pyslowfast():
    names = {name.split(".")[0] for name, _ in NonLocalBlock(8).named_parameters()}
    assert names == {"conv_theta", "conv_phi", "conv_g", "conv_out", "bn"}


def test_unknown_instantiation_is_rejected():
    with pytest.raises(ValueError, match="unknown non-local instantiation 'gaussian'"):
        NonLocalBlock(8, instantiation="gaussian")
