"""Genotype JSON: round trips, the named registry, and every kind of bad file named precisely."""

import copy
import json
import random
from dataclasses import replace

import pytest

from darts_video.genotype import FORMAT, Decision, Genotype, GenotypeError, Node, get_genotype, named_genotypes
from darts_video.ops import OpConfig, OpSpec
from darts_video.space import SearchSpace


def searched() -> Genotype:
    """divided_space_time as a selector would write it: with the evidence of each decision."""
    scores = {"dot_spatial_softmax": {"alpha": 0.3, "effect": 20.0, "effect_stderr": 2.0}, "identity": {"alpha": 0.2, "effect": 7.5, "effect_stderr": 1.5}}
    evidence = (Decision(1, "op", "dot_spatial_softmax", "identity", 12.5, 2.1, True, scores),
                Decision(2, "input", "1", "0", 3.0, 4.0, False, {"0": {"beta": 0.5, "effect": 1.0, "effect_stderr": 1.0},
                                                                   "1": {"beta": 0.5, "effect": 4.0, "effect_stderr": 2.0}}))
    return replace(get_genotype("divided_space_time"), selector="perturbation", evidence=evidence)


def valid_document() -> dict:
    return searched().to_dict()


def write(tmp_path, document, name="cell.json"):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


@pytest.mark.parametrize("seed", range(20))
def test_random_genotypes_round_trip_through_json(tmp_path, seed):
    space = SearchSpace(num_nodes=1 + seed % 5, op_config=OpConfig(reduction=1 + seed % 3, heads=1 + seed % 2))
    genotype = replace(space.sample(random.Random(seed)), provenance={"seed": seed, "probabilities": [[0.5, 0.5]]})
    assert Genotype.load(genotype.save(tmp_path / "g.json")) == genotype
    assert Genotype.from_dict(json.loads(genotype.to_json())).provenance == genotype.provenance


def test_evidence_round_trips_and_names_the_unsupported_decisions(tmp_path):
    genotype = searched()
    loaded = Genotype.load(genotype.save(tmp_path / "g.json"))
    assert loaded == genotype and loaded.to_dict()["version"] == 2
    assert [(d.node, d.kind) for d in loaded.unsupported()] == [(2, "input")]
    assert loaded.evidence[0].scores["identity"]["effect"] == 7.5


def test_version_1_files_still_load_without_evidence(tmp_path):
    document = get_genotype("non_local").to_dict()
    document["version"] = 1
    del document["evidence"]
    loaded = Genotype.load(write(tmp_path, document))
    assert loaded.evidence == () and loaded.selector is None and loaded.nodes == get_genotype("non_local").nodes


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path):
    get_genotype("non_local").save(tmp_path / "sub" / "cell.json")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cell.json"]


def test_named_genotypes_load_by_name_and_by_path(tmp_path):
    assert set(named_genotypes()) >= {"non_local", "divided_space_time"}
    for name in named_genotypes():
        genotype = get_genotype(name)
        assert get_genotype(genotype.save(tmp_path / f"{name}.json")) == genotype
    divided = get_genotype("divided_space_time")
    assert [(n.input, n.op.name) for n in divided.nodes] == [(0, "dot_spatial_softmax"), (1, "dot_temporal_softmax")]
    assert [n.op.name for n in get_genotype("non_local").nodes] == ["dot_spatiotemporal_softmax"]


def test_unknown_name_lists_the_registered_genotypes():
    with pytest.raises(GenotypeError, match="neither a file nor a registered genotype; registered: divided_space_time, non_local"):
        get_genotype("nonlocal")


def _mutated(path: str, value):
    """A valid document with the field at ``path`` (dotted, with list indices) set to ``value``."""
    document = valid_document()
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = document
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return document


BAD_DOCUMENTS = {
    # case: (document, field named in the error, value named in the error)
    "unknown format": (_mutated("format", "darts.genotype"), "format", "'darts.genotype'"),
    "missing format": (_mutated("format", KeyError), "format", "None"),
    "unknown version": (_mutated("version", 3), "version", "3"),
    "version 1 with evidence": (_mutated("version", 1), "evidence", "{'selector'"),
    "version as a string": (_mutated("version", "1"), "version", "'1'"),
    "unknown operation": (_mutated("nodes.0.op.name", "dot_spatial_tanh"), "nodes[0].op.name", "'dot_spatial_tanh'"),
    "field disagrees with name": (_mutated("nodes.1.op.dim", "spatial"), "nodes[1].op.dim", "'spatial'"),
    "unknown op field": (_mutated("nodes.0.op.kernel", 3), "nodes[0].op.kernel", "3"),
    "input points forward": (_mutated("nodes.0.input", 1), "nodes[0].input", "1"),
    "input points to itself": (_mutated("nodes.1.input", 2), "nodes[1].input", "2"),
    "input out of range": (_mutated("nodes.1.input", -1), "nodes[1].input", "-1"),
    "input not an integer": (_mutated("nodes.1.input", "0"), "nodes[1].input", "'0'"),
    "input is a boolean": (_mutated("nodes.1.input", True), "nodes[1].input", "True"),
    "no nodes": (_mutated("nodes", []), "nodes", "0"),
    "too many nodes": (_mutated("nodes", [{"input": 0, "op": {"name": "identity"}}] * 17), "nodes", "17"),
    "nodes not a list": (_mutated("nodes", {"input": 0}), "nodes", "'dict'"),
    "node missing its op": (_mutated("nodes.0", {"input": 0}), "nodes[0]", "{'input': 0}"),
    "sink names a missing node": (_mutated("sink.inputs", [3]), "sink.inputs[0]", "3"),
    "sink names the cell input": (_mutated("sink.inputs", [0, 2]), "sink.inputs[0]", "0"),
    "empty sink": (_mutated("sink.inputs", []), "sink.inputs", "[]"),
    "node listed twice": (_mutated("sink.inputs", [2, 2]), "sink.inputs", "[2, 2]"),
    "sink missing": (_mutated("sink", KeyError), "sink", "None"),
    "unused node": (_mutated("nodes.1.input", 0), "sink.inputs", "[2]"),
    "zero reduction": (_mutated("op_config.reduction", 0), "op_config.reduction", "0"),
    "unknown op_config field": (_mutated("op_config.groups", 2), "op_config.groups", "2"),
    "provenance not an object": (_mutated("provenance", "search"), "provenance", "'search'"),
    "unknown top-level field": (_mutated("cells", []), "cells", "[]"),
    "not an object": ([1, 2], "<document>", "'list'"),
    "evidence not an object": (_mutated("evidence", [1]), "evidence", "[1]"),
    "evidence without its selector": (_mutated("evidence.selector", ""), "evidence.selector", "''"),
    "decision missing a field": (_mutated("evidence.decisions.0.supported", KeyError), "evidence.decisions[0]", "{'node': 1"),
    "decision of a missing node": (_mutated("evidence.decisions.0.node", 3), "evidence.decisions[0].node", "3"),
    "decision of an unknown kind": (_mutated("evidence.decisions.0.kind", "sink"), "evidence.decisions[0].kind", "'sink'"),
    "decision disagrees with its node": (_mutated("evidence.decisions.0.chosen", "identity"), "evidence.decisions[0].chosen", "'identity'"),
    "input decision disagrees with its node": (_mutated("evidence.decisions.1.chosen", "0"), "evidence.decisions[1].chosen", "'0'"),
    "margin not a number": (_mutated("evidence.decisions.0.margin", "big"), "evidence.decisions[0].margin", "'big'"),
    "negative standard error": (_mutated("evidence.decisions.0.margin_stderr", -1.0), "evidence.decisions[0].margin_stderr", "-1.0"),
    "supported not a boolean": (_mutated("evidence.decisions.0.supported", 1), "evidence.decisions[0].supported", "1"),
    "score not numbers": (_mutated("evidence.decisions.0.scores.identity", {"alpha": "high"}), "evidence.decisions[0].scores.identity", "{'alpha': 'high'}"),
    "no score for the runner-up": (_mutated("evidence.decisions.0.runner_up", "dot_temporal_softmax"), "evidence.decisions[0].scores", "['dot_spatial_softmax', 'identity']"),
    "decision recorded twice": (_mutated("evidence.decisions.1", valid_document()["evidence"]["decisions"][0]), "evidence.decisions[1]", "'node 1 op'"),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_bad_genotype_file_is_rejected_naming_file_field_and_value(tmp_path, case):
    document, field, value = BAD_DOCUMENTS[case]
    path = write(tmp_path, document)
    with pytest.raises(GenotypeError) as error:
        Genotype.load(path)
    message = str(error.value)
    assert message.startswith(f"{path}: field '{field}' = {value}"), message
    assert error.value.field == field


def test_malformed_json_names_the_file_and_position(tmp_path):
    path = write(tmp_path, '{"format": "darts_video.genotype",\n "nodes": [,]}')
    with pytest.raises(GenotypeError, match=rf"{path}: .*malformed JSON at line 2 column 12"):
        Genotype.load(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(GenotypeError, match=r"missing\.json: field '<file>'.*cannot read"):
        Genotype.load(tmp_path / "missing.json")


def test_load_against_a_search_space_checks_node_count_ops_and_connections(tmp_path):
    path = get_genotype("divided_space_time").save(tmp_path / "divided.json")
    assert Genotype.load(path, SearchSpace(num_nodes=2)).num_nodes == 2
    with pytest.raises(GenotypeError, match=r"field 'nodes' = 2: this search space has 3 nodes"):
        Genotype.load(path, SearchSpace(num_nodes=3))
    with pytest.raises(GenotypeError, match=r"field 'nodes\[0\].op.name' = 'dot_spatial_softmax': not a candidate"):
        Genotype.load(path, SearchSpace.from_patterns(["map_*"], num_nodes=2))
    with pytest.raises(GenotypeError, match=r"field 'nodes\[1\].input' = 1: parallel connections allow \(0,\)"):
        Genotype.load(path, SearchSpace(num_nodes=2, connections="parallel"))


def test_genotypes_built_in_python_are_validated_too():
    with pytest.raises(GenotypeError, match=r"Genotype: field 'nodes\[0\].input' = 1"):
        Genotype([Node(1, OpSpec("identity"))], sink=(1,))


def test_documents_are_not_mutated_by_loading():
    document = valid_document()
    snapshot = copy.deepcopy(document)
    Genotype.from_dict(document)
    assert document == snapshot and document["format"] == FORMAT
