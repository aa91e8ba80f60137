"""Every registered operation: shape, gradients, and dot-product ops against a naive reference."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from helpers import relative_error
from darts_video.ops import ACTIVATIONS, DIMENSIONS, OpConfig, OpSpec, create_op, list_ops
from darts_video.ops.activations import dot_product_attention, map_weights
from darts_video.utils.memory import peak_memory_bytes

ALL_OPS = list_ops()
DOT_OPS = [spec for spec in ALL_OPS if spec.type == "dot"]
# (N, C, T, H, W): T=1, odd channels, odd and non-square frames
SHAPES = [(2, 8, 4, 6, 6), (1, 6, 1, 5, 7), (3, 5, 3, 3, 1), (2, 16, 8, 7, 9)]
# every token set has at least 2 tokens, so no operation is degenerate (softmax over 1 token is constant)
GRADIENT_SHAPES = [(2, 8, 4, 6, 6), (1, 6, 3, 5, 7)]


def test_registry_lists_type_x_dimension_x_activation_plus_identity():
    names = [spec.name for spec in ALL_OPS]
    assert len(names) == len(set(names)) == 2 * len(DIMENSIONS) * len(ACTIVATIONS) + 1
    assert names[0] == "identity"
    for type_name, dim, activation in itertools.product(("map", "dot"), DIMENSIONS, ACTIVATIONS):
        assert f"{type_name}_{dim}_{activation}" in names
    assert all(OpSpec.parse(spec.name) == spec for spec in ALL_OPS)


def test_unknown_operation_is_rejected_with_the_list_of_names():
    with pytest.raises(KeyError, match="dot_spatial_tanh.*registered: identity"):
        create_op("dot_spatial_tanh", 8)
    with pytest.raises(KeyError, match="map_diagonal_sigmoid"):
        create_op(OpSpec("map", "diagonal", "sigmoid"), 8)


def test_dot_attention_rejects_channels_that_do_not_split_into_heads():
    with pytest.raises(ValueError, match="channels // reduction = 6 // 2 = 3 must be a positive multiple of heads = 2"):
        create_op("dot_temporal_softmax", 6, OpConfig(reduction=2, heads=2))


@pytest.mark.parametrize("spec,shape", list(itertools.product(ALL_OPS, SHAPES)), ids=str)
def test_shape_is_preserved(spec, shape):
    op = create_op(spec, shape[1])
    x = torch.randn(shape)
    assert op(x).shape == x.shape


@pytest.mark.parametrize("spec,shape", list(itertools.product(ALL_OPS, GRADIENT_SHAPES)), ids=str)
def test_gradients_reach_every_parameter_and_the_input(spec, shape):
    op = create_op(spec, shape[1])
    x = torch.randn(shape, requires_grad=True)
    (op(x) * torch.randn(shape)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, parameter in op.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"{spec.name}: no gradient for {name}"


def _naive_tokens(z: torch.Tensor, dim: str, heads: int) -> torch.Tensor:
    n, c, t, h, w = z.shape
    z = z.reshape(n, heads, c // heads, t, h, w)
    if dim == "spatial":
        return z.permute(0, 3, 1, 4, 5, 2).reshape(n * t, heads, h * w, c // heads)
    if dim == "temporal":
        return z.permute(0, 4, 5, 1, 3, 2).reshape(n * h * w, heads, t, c // heads)
    return z.permute(0, 1, 3, 4, 5, 2).reshape(n, heads, t * h * w, c // heads)


def _naive_untokens(z: torch.Tensor, dim: str, shape: tuple) -> torch.Tensor:
    n, _, t, h, w = shape
    heads, d = z.shape[1], z.shape[3]
    if dim == "spatial":
        return z.reshape(n, t, heads, h, w, d).permute(0, 2, 5, 1, 3, 4).reshape(n, heads * d, t, h, w)
    if dim == "temporal":
        return z.reshape(n, h, w, heads, t, d).permute(0, 3, 5, 4, 1, 2).reshape(n, heads * d, t, h, w)
    return z.reshape(n, heads, t, h, w, d).permute(0, 1, 5, 2, 3, 4).reshape(n, heads * d, t, h, w)


def naive_dot_attention(op, x: torch.Tensor) -> torch.Tensor:
    """The formula written out with an explicit L x L weight matrix."""
    q, k, v = F.conv3d(x, op.qkv.weight, op.qkv.bias).chunk(3, dim=1)
    q, k, v = (_naive_tokens(z, op.dim, op.heads) for z in (q, k, v))
    scores = torch.einsum("bhld,bhmd->bhlm", q, k)
    num_keys, d = k.shape[-2], k.shape[-1]
    weights = {
        "softmax": lambda s: torch.softmax(s / math.sqrt(d), dim=-1),
        "sigmoid": lambda s: torch.sigmoid(s / math.sqrt(d) - math.log(num_keys)),
        "linear": lambda s: s / num_keys,
    }[op.activation](scores)
    attended = torch.einsum("bhlm,bhmd->bhld", weights, v)
    return F.conv3d(_naive_untokens(attended, op.dim, x.shape), op.proj.weight, op.proj.bias)


@pytest.mark.parametrize("spec,shape,heads", list(itertools.product(DOT_OPS, SHAPES, (1, 2))), ids=str)
def test_dot_product_ops_equal_the_naive_materialised_reference(spec, shape, heads):
    shape = (shape[0], 8, *shape[2:])  # 8 channels split into 1 or 2 heads
    op = create_op(spec, 8, OpConfig(reduction=2, heads=heads))
    x = torch.randn(shape)
    assert relative_error(op(x), naive_dot_attention(op, x)) < 1e-5


@pytest.mark.parametrize("spec,heads", list(itertools.product(DOT_OPS, (1, 2))), ids=str)
def test_dot_product_ops_backpropagate_as_the_naive_reference(spec, heads):
    """The kernels' shortcuts (fused softmax, in-place sigmoid, reordered linear) keep the gradients."""
    op = create_op(spec, 8, OpConfig(reduction=2, heads=heads))
    x = torch.randn(2, 8, 3, 4, 5, requires_grad=True)
    upstream = torch.randn(2, 8, 3, 4, 5)
    ours = torch.autograd.grad((op(x) * upstream).sum(), [x, *op.parameters()])
    reference = torch.autograd.grad((naive_dot_attention(op, x) * upstream).sum(), [x, *op.parameters()])
    for got, expected in zip(ours, reference):
        assert relative_error(got, expected) < 1e-5


@pytest.mark.parametrize("spec", DOT_OPS, ids=str)
def test_dot_product_ops_are_permutation_equivariant_within_their_token_set(spec):
    """No positional encoding: attention relates positions by content only."""
    op = create_op(spec, 8)
    x = torch.randn(2, 8, 4, 5, 6)
    axes = {"spatial": (3, 4), "temporal": (2,), "spatiotemporal": (2, 3, 4)}[spec.dim]
    assert torch.allclose(op(x.flip(axes)), op(x).flip(axes), atol=1e-5)


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_map_softmax_weights_average_one_over_each_token_set(dim):
    logits = torch.randn(2, 1, 4, 5, 6)
    weights = map_weights(logits, "softmax", dim)
    set_axes = {"spatial": (3, 4), "temporal": (2,), "spatiotemporal": (2, 3, 4)}[dim]
    assert torch.allclose(weights.mean(dim=set_axes), torch.ones(()), atol=1e-6)
    assert (weights > 0).all()


def test_weights_saved_without_projection_biases_load_as_the_same_function():
    """darts_video 0.1 saved dot-product operations without q/k/v biases: they load with zero biases."""
    op = create_op("dot_temporal_softmax", 8)
    with torch.no_grad():
        op.qkv.bias.zero_()
    old = {name: value for name, value in op.state_dict().items() if name != "qkv.bias"}
    loaded = create_op("dot_temporal_softmax", 8)
    loaded.load_state_dict(old)
    x = torch.randn(2, 8, 4, 3, 3)
    assert torch.equal(loaded(x), op(x))


def test_unknown_activation_is_rejected():
    q = torch.randn(1, 1, 4, 2)
    with pytest.raises(ValueError, match="unknown attention activation 'tanh'"):
        dot_product_attention(q, q, q, "tanh")
    with pytest.raises(ValueError, match="unknown attention activation 'tanh'"):
        map_weights(torch.randn(1, 1, 2, 2, 2), "tanh", "spatial")


@pytest.mark.skipif(peak_memory_bytes(lambda: None) is None, reason="CPU peak memory is measured on Linux only")
def test_fused_softmax_op_never_materialises_the_attention_matrix():
    """Through the real operation: its tokens come from a conv, in the layout users get."""
    x = torch.randn(1, 64, 4, 32, 32, requires_grad=True)  # L = 4 * 32 * 32 = 4096 tokens
    matrix_bytes = 4096 * 4096 * 4
    fused, materialised = create_op("dot_spatiotemporal_softmax", 64), create_op("dot_spatiotemporal_sigmoid", 64)

    def step(op):
        return lambda: op(x).sum().backward()

    step(fused)()  # warm-up: one-off allocations of the kernel
    assert peak_memory_bytes(step(materialised)) > matrix_bytes  # the measurement does see an L x L matrix
    assert peak_memory_bytes(step(fused)) < matrix_bytes / 4
