"""The search space: enumeration, restriction by name, validation, sampling and printing."""

import collections
import random

import pytest

from darts_video.ops import OpConfig, OpSpec, list_ops
from darts_video.space import SearchSpace


def test_default_space_holds_every_registered_operation_and_three_dense_nodes():
    space = SearchSpace()
    assert space.ops == list_ops() and space.num_nodes == 3
    assert [space.candidate_inputs(i) for i in (1, 2, 3)] == [(0,), (0, 1), (0, 1, 2)]
    assert space.num_cells == (19 * 1) * (19 * 2) * (19 * 3)


def test_connections_restrict_the_inputs():
    assert [SearchSpace(connections="chain").candidate_inputs(i) for i in (1, 2, 3)] == [(0,), (1,), (2,)]
    assert [SearchSpace(connections="parallel").candidate_inputs(i) for i in (1, 2, 3)] == [(0,), (0,), (0,)]


def test_restricting_by_patterns():
    space = SearchSpace.from_patterns(["dot_temporal_*", "identity"], num_nodes=2)
    assert [s.name for s in space.ops] == ["identity", "dot_temporal_softmax", "dot_temporal_sigmoid", "dot_temporal_linear"]
    assert space.num_nodes == 2


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"ops": ()}, "no candidate operation"),
        ({"ops": (OpSpec("dot", "spatial", "tanh"),)}, "unknown operation 'dot_spatial_tanh'"),
        ({"ops": (OpSpec("identity"), OpSpec("identity"))}, "duplicate candidate operations"),
        ({"num_nodes": 0}, "num_nodes must be an integer from 1 to 16, got 0"),
        ({"num_nodes": 2.5}, "got 2.5"),
        ({"connections": "random"}, "unknown connections 'random'"),
    ],
)
def test_invalid_spaces_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace(**kwargs)


def test_pattern_matching_nothing_is_rejected_naming_it():
    with pytest.raises(ValueError, match="operation pattern 'conv_\\*' matches no registered operation"):
        SearchSpace.from_patterns(["dot_*", "conv_*"])


def test_samples_are_valid_and_uniform_over_operations_and_inputs():
    space = SearchSpace.from_patterns(["identity", "dot_spatial_*"], num_nodes=3)
    rng = random.Random(0)
    draws = [space.sample(rng) for _ in range(4000)]
    for genotype in draws:
        space.check(genotype)
    op_counts = collections.Counter(g.nodes[2].op for g in draws)
    input_counts = collections.Counter(g.nodes[2].input for g in draws)
    assert set(op_counts) == set(space.ops) and set(input_counts) == {0, 1, 2}
    assert max(op_counts.values()) / min(op_counts.values()) < 1.15
    assert max(input_counts.values()) / min(input_counts.values()) < 1.15
    cell_counts = collections.Counter(draws)
    assert len(cell_counts) == space.num_cells == (4 * 1) * (4 * 2) * (4 * 3)
    expected = len(draws) / space.num_cells
    chi_square = sum((count - expected) ** 2 / expected for count in cell_counts.values())
    degrees = space.num_cells - 1
    assert chi_square < degrees + 5 * (2 * degrees) ** 0.5  # uniform over whole cells


def test_dictionary_form_round_trips():
    space = SearchSpace.from_patterns(["map_*"], num_nodes=4, connections="chain", op_config=OpConfig(4, 2))
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_printing_lists_nodes_and_every_candidate():
    text = str(SearchSpace.from_patterns(["identity", "map_temporal_*"], num_nodes=2))
    assert "2 nodes, dense connections, 4 candidate operations, 32 distinct cells" in text
    assert "node 2 reads one of {input, node 1}" in text
    assert all(name in text for name in ("identity", "map_temporal_softmax", "map_temporal_sigmoid", "map_temporal_linear"))
