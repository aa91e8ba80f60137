"""The shortlist's proposals: drawn from the whole space, or from what the selection's evidence does not rule out."""

import itertools
import random
from dataclasses import replace
from types import SimpleNamespace

import pytest

import darts_video.shortlist as shortlist
from darts_video.errors import ConfigError
from darts_video.genotype import Decision, Genotype, Node
from darts_video.ops import list_ops
from darts_video.search_config import SearchConfig
from darts_video.shortlist import evidence_choices, propose, ruled_out
from darts_video.space import SearchSpace

OPS = ["identity", "map_temporal_sigmoid", "dot_temporal_softmax", "dot_spatial_linear"]
SPEC = {spec.name: spec for spec in list_ops()}
CLIPS = 128  # Student t at 127 degrees of freedom: 1.979


def effects(**measured: tuple[float, float]) -> dict[str, dict[str, float]]:
    return {name: {"alpha": 0.25, "effect": effect, "effect_stderr": stderr} for name, (effect, stderr) in measured.items()}


def selected_cell(cells_effect_supported: bool = True, selector: str = "perturbation") -> Genotype:
    """A two-node cell as the perturbation selector writes it. Node 1's op: dot_temporal_softmax at
    20 ± 3 points; identity (0 ± 1) and map_temporal_sigmoid (5 ± 3) below it beyond noise,
    dot_spatial_linear (15 ± 3) within it. Node 2's op: nothing beyond noise. Node 2's input: node 1
    at 30 ± 4, the cell input at 0 ± 1."""
    node1 = Decision(1, "op", "dot_temporal_softmax", "dot_spatial_linear", 5.0, 3.0, False, effects(
        identity=(0.0, 1.0), map_temporal_sigmoid=(5.0, 3.0), dot_temporal_softmax=(20.0, 3.0), dot_spatial_linear=(15.0, 3.0)))
    node2 = Decision(2, "op", "identity", "map_temporal_sigmoid", 0.5, 1.0, False, effects(
        identity=(1.0, 1.0), map_temporal_sigmoid=(0.5, 1.0), dot_temporal_softmax=(0.0, 1.0), dot_spatial_linear=(0.0, 0.5)))
    input2 = Decision(2, "input", "1", "0", 30.0, 4.0, True, effects(**{"0": (0.0, 1.0), "1": (30.0, 4.0)}))
    nodes = (Node(0, SPEC["dot_temporal_softmax"]), Node(1, SPEC["identity"]))
    provenance = {"cells_effect": {"points": 25.0 if cells_effect_supported else 1.0, "stderr": 4.0, "clips": CLIPS}}
    return Genotype(nodes, (1, 2), SearchSpace.from_patterns(OPS, num_nodes=2).op_config, provenance, selector,
                    (node1, node2, input2) if selector == "perturbation" else ())


def test_a_candidate_is_ruled_out_only_when_its_effect_is_below_the_chosen_ones_beyond_noise():
    node1 = selected_cell().evidence[0]
    # 20 - 5 = 15 > 1.979 * hypot(3, 3) = 8.4: out; 20 - 15 = 5 < 8.4: in; 20 - 0 = 20 > 1.979 * hypot(3, 1) = 6.3: out
    assert ruled_out(node1, CLIPS) == {"identity", "map_temporal_sigmoid"}
    assert ruled_out(selected_cell().evidence[1], CLIPS) == set()  # all within noise
    unmeasured = Decision(1, "op", "dot_temporal_softmax", None, 0.0, None, False, effects(dot_temporal_softmax=(20.0, 3.0)))
    assert ruled_out(unmeasured, CLIPS) == set()  # a candidate it did not measure stays in


def test_the_evidence_keeps_per_node_what_it_does_not_rule_out():
    space = SearchSpace.from_patterns(OPS, num_nodes=2)
    node1, node2 = evidence_choices(selected_cell(), space)
    assert {op.name for op in node1.ops} == {"dot_temporal_softmax", "dot_spatial_linear"} and node1.inputs == (0,)
    assert node2.ops == space.ops and node2.inputs == (1,)  # every op within noise; the cell input ruled out


@pytest.mark.parametrize("supported,selector", [(False, "perturbation"), (True, "argmax")])
def test_unfounded_evidence_rules_nothing_out(supported, selector):
    """A supernet that does not use its cells measures no effect of any candidate; argmax measures none."""
    assert evidence_choices(selected_cell(supported, selector), SearchSpace.from_patterns(OPS, num_nodes=2)) is None


def scored_by_name(monkeypatch) -> None:
    """Path scores without a supernet: a cell's score is a fixed function of its nodes."""
    monkeypatch.setattr(shortlist, "path_accuracy", lambda net, batches, cell: float(sum(len(n.op.name) * (n.input + 1) for n in cell.nodes)))


@pytest.mark.parametrize("count,pool", list(itertools.product([2, 4], [3, 20])))
def test_proposals_from_the_evidence_stay_within_it_and_fall_back_to_the_space_without_it(monkeypatch, count, pool):
    scored_by_name(monkeypatch)
    space = SearchSpace.from_patterns(OPS, num_nodes=2)
    net = SimpleNamespace(space=space)
    allowed = evidence_choices(selected_cell(), space)
    proposals, record = propose(net, [], selected_cell(), count, pool, seed=0, draw_from="evidence")
    assert record["from"] == "evidence" and record["cells"] == 2 * 4 and record["drawn"] == min(pool, 8 - 1)
    assert proposals[0].genotype == selected_cell() and len(proposals) == min(count, 1 + record["drawn"])
    assert len({p.genotype.nodes for p in proposals}) == len(proposals)  # distinct
    for proposal in proposals:
        assert all(node.op in choice.ops and node.input in choice.inputs for node, choice in zip(proposal.genotype.nodes, allowed))
    scores = [p.path_score for p in proposals[1:]]
    assert scores == sorted(scores, reverse=True)
    unfounded = selected_cell(cells_effect_supported=False)
    proposals, record = propose(net, [], unfounded, count, pool, seed=0, draw_from="evidence")
    assert record["from"] == "space" and record["cells"] == space.num_cells and record["choices"] is None
    assert proposals == propose(net, [], unfounded, count, pool, seed=0, draw_from="space")[0]  # the whole space's own draws


def test_when_the_evidence_rules_out_every_other_cell_the_selectors_cell_is_the_only_proposal(monkeypatch):
    scored_by_name(monkeypatch)
    space = SearchSpace.from_patterns(OPS, num_nodes=2)
    cell = selected_cell()
    decisive = Decision(2, "op", "identity", "dot_spatial_linear", 20.0, 1.0, True,
                        effects(identity=(20.0, 1.0), map_temporal_sigmoid=(0.0, 1.0), dot_temporal_softmax=(0.0, 1.0), dot_spatial_linear=(0.0, 1.0)))
    node1 = replace(cell.evidence[0], scores=effects(identity=(0.0, 1.0), map_temporal_sigmoid=(0.0, 1.0), dot_temporal_softmax=(20.0, 1.0),
                                                       dot_spatial_linear=(0.0, 1.0)))
    cell = replace(cell, evidence=(node1, decisive, cell.evidence[2]))
    proposals, record = propose(SimpleNamespace(space=space), [], cell, 6, 64, seed=0, draw_from="evidence")
    assert record["cells"] == 1 and record["drawn"] == 0 and [p.genotype for p in proposals] == [cell]


def test_proposals_from_the_space_are_the_draws_of_before(monkeypatch):
    """The whole space's pool draws what ``space.sample`` drew before the evidence pool existed: old runs re-derive alike."""
    scored_by_name(monkeypatch)
    space = SearchSpace.from_patterns(OPS, num_nodes=2)
    proposals, record = propose(SimpleNamespace(space=space), [], selected_cell(), 3, 5, seed=4, draw_from="space")
    rng, expected = random.Random("shortlist-4"), []
    while len(expected) < 5:
        nodes = tuple(Node(rng.choice(space.candidate_inputs(i)), rng.choice(space.ops)) for i in (1, 2))
        if nodes != selected_cell().nodes and nodes not in expected:
            expected.append(nodes)
    best = sorted(range(5), key=lambda i: (-shortlist.path_accuracy(None, None, SimpleNamespace(nodes=expected[i])), i))[:2]
    assert [p.genotype.nodes for p in proposals[1:]] == [expected[i] for i in best] and record["from"] == "space"


def test_an_unknown_proposal_pool_is_refused():
    with pytest.raises(ConfigError, match="--shortlist-pool-from"):
        SearchConfig(shortlist_pool_from="alpha")
    with pytest.raises(ValueError, match="proposal pool"):
        propose(SimpleNamespace(space=SearchSpace.from_patterns(OPS, num_nodes=2)), [], selected_cell(), 2, 2, 0, draw_from="alpha")
