"""From architecture weights to a discrete cell: the argmax of every decision, with its evidence."""

from __future__ import annotations

from typing import Any

from darts_video.genotype import Genotype, Node
from darts_video.supernet.arch import ArchitectureParameters


def derive_genotype(arch: ArchitectureParameters, provenance: dict[str, Any] | None = None) -> Genotype:
    """Node i takes its most probable operation and input; the sink concatenates every node.

    The probabilities behind each choice go into the provenance (the space has no zero operation
    to ignore: the identity is a legitimate choice that makes the cell smaller).
    """
    space = arch.space
    op_probabilities = arch.op_probabilities().detach().cpu()
    input_probabilities = [p.detach().cpu() for p in arch.input_probabilities()]
    nodes, recorded = [], []
    for number in range(1, space.num_nodes + 1):
        ops, inputs = op_probabilities[number - 1], input_probabilities[number - 1]
        candidates = space.candidate_inputs(number)
        nodes.append(Node(candidates[int(inputs.argmax())], space.ops[int(ops.argmax())]))
        recorded.append({
            "op_probabilities": {spec.name: round(float(p), 6) for spec, p in zip(space.ops, ops)},
            "input_probabilities": {str(j): round(float(p), 6) for j, p in zip(candidates, inputs)},
        })
    provenance = {**(provenance or {}), "search_space": space.to_dict(), "decisions": recorded}
    return Genotype(nodes, sink=tuple(range(1, space.num_nodes + 1)), op_config=space.op_config, provenance=provenance)
