"""The discrete cell: shape-preserving, exactly the identity at init, built as its genotype says."""

import itertools
import random
from dataclasses import replace

import pytest
import torch

from darts_video.cell import Cell, Sink
from darts_video.genotype import get_genotype, named_genotypes
from darts_video.ops import OpConfig
from darts_video.space import SearchSpace

SHAPES = [(2, 8, 4, 6, 6), (1, 6, 1, 5, 7), (3, 4, 3, 3, 1)]


@pytest.mark.parametrize("seed,shape", list(itertools.product(range(12), SHAPES)), ids=str)
def test_random_cells_preserve_shape_and_are_the_identity_at_init(seed, shape):
    space = SearchSpace(num_nodes=1 + seed % 4, connections=("dense", "chain", "parallel")[seed % 3])
    cell = Cell(space.sample(random.Random(seed)), shape[1])
    x = torch.randn(shape)
    for mode in (cell.train, cell.eval):
        mode()
        y = cell(x)
        assert y.shape == x.shape
        assert torch.equal(y, x)


@pytest.mark.parametrize("name", named_genotypes())
def test_named_cells_are_the_identity_at_init(name):
    x = torch.randn(2, 8, 4, 6, 6)
    assert torch.equal(Cell(get_genotype(name), 8)(x), x)


def test_gradients_reach_every_parameter_once_the_sink_scale_moves():
    space = SearchSpace.from_patterns(["dot_*", "map_*"], num_nodes=3)
    cell = Cell(space.sample(random.Random(3)), 8)
    x = torch.randn(2, 8, 4, 6, 6)
    cell(x).pow(2).sum().backward()
    assert cell.sink.norm.weight.grad.abs().sum() > 0  # at init, only the sink scale learns
    torch.nn.init.ones_(cell.sink.norm.weight)
    cell.zero_grad()
    (cell(x) * torch.randn_like(x)).sum().backward()
    for name, parameter in cell.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_cell_wires_nodes_as_the_genotype_says():
    """node 2 = op2(node 1), sink over node 2 only: compare against composing the ops by hand."""
    genotype = get_genotype("divided_space_time")
    cell = Cell(genotype, 8).eval()
    torch.nn.init.normal_(cell.sink.norm.weight)
    x = torch.randn(2, 8, 4, 6, 6)
    node1 = cell.ops[0](x)
    node2 = cell.ops[1](node1)
    assert torch.allclose(cell(x), x + cell.sink([node2]), atol=1e-6)
    assert [m.dim for m in cell.ops] == ["spatial", "temporal"]


def test_op_config_reaches_the_operations():
    genotype = replace(get_genotype("non_local"), op_config=OpConfig(reduction=4, heads=2))
    op = Cell(genotype, 16).ops[0]
    assert op.heads == 2 and op.qkv.out_channels == 3 * 16 // 4


def test_the_sink_starts_as_the_sum_of_its_nodes():
    """A random projection in series with each operation's own made a cell open its attention path
    later and less reliably than the non-local block; the sink's projection starts as the sum."""
    sink = Sink(3, 8)
    states = [torch.randn(2, 8, 2, 3, 3) for _ in range(3)]
    assert torch.allclose(sink.proj(torch.cat(states, dim=1)), sum(states), atol=1e-6)
