"""The search space as data: which operations each node may choose, and from which inputs."""

from __future__ import annotations

import fnmatch
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from darts_video.errors import ConfigError
from darts_video.genotype import MAX_NODES, Genotype, GenotypeError, Node
from darts_video.ops import OpConfig, OpSpec, list_ops

# Which earlier states node i (1-based) may read: 0 is the cell input.
CONNECTIONS = {
    "dense": lambda i: tuple(range(i)),  # the cell input or any earlier node (DARTS)
    "chain": lambda i: (i - 1,),  # the previous node only: a sequence of operations
    "parallel": lambda i: (0,),  # the cell input only: parallel branches
}


@dataclass(frozen=True)
class Choices:
    """What one node may take: its candidate operations and the states it may read."""

    ops: tuple[OpSpec, ...]
    inputs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ops) * len(self.inputs)


@dataclass(frozen=True)
class SearchSpace:
    """Candidate operations x K nodes x allowed connections, plus the operations' hyper-parameters.

    ``SearchSpace()`` is every registered operation with 3 densely connected nodes;
    ``SearchSpace.from_patterns(["dot_*", "identity"])`` restricts the candidates by name.
    """

    ops: tuple[OpSpec, ...] = field(default_factory=list_ops)
    num_nodes: int = 3
    connections: str = "dense"
    op_config: OpConfig = OpConfig()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        if not self.ops:
            raise ConfigError("the search space has no candidate operation")
        registered = set(list_ops())
        for spec in self.ops:
            if spec not in registered:
                raise ConfigError(f"unknown operation {spec.name!r}; registered: {', '.join(s.name for s in list_ops())}")
        if len(set(self.ops)) != len(self.ops):
            raise ConfigError(f"duplicate candidate operations in {[s.name for s in self.ops]}")
        if isinstance(self.num_nodes, bool) or not isinstance(self.num_nodes, int) or not 1 <= self.num_nodes <= MAX_NODES:
            raise ConfigError(f"num_nodes must be an integer from 1 to {MAX_NODES}, got {self.num_nodes!r}")
        if self.connections not in CONNECTIONS:
            raise ConfigError(f"unknown connections {self.connections!r}; expected one of {tuple(CONNECTIONS)}")

    @classmethod
    def from_patterns(cls, patterns: Iterable[str], **kwargs) -> SearchSpace:
        """Select candidates whose names match any shell-style pattern (``dot_temporal_*``, ``identity``)."""
        patterns = list(patterns)
        names = [spec.name for spec in list_ops()]
        for pattern in patterns:
            if not fnmatch.filter(names, pattern):
                raise ConfigError(f"operation pattern {pattern!r} matches no registered operation; registered: {', '.join(names)}")
        ops = tuple(spec for spec in list_ops() if any(fnmatch.fnmatchcase(spec.name, p) for p in patterns))
        return cls(ops=ops, **kwargs)

    def candidate_inputs(self, node: int) -> tuple[int, ...]:
        """The states node ``node`` (1-based) may read: 0 is the cell input, j is node j."""
        return CONNECTIONS[self.connections](node)

    @property
    def num_cells(self) -> int:
        """How many distinct discrete cells (with the sink over all nodes) the space holds."""
        return math.prod(choice.count for choice in self.choices())

    def check(self, genotype: Genotype, source: str = "Genotype") -> None:
        """Raise :class:`GenotypeError` unless ``genotype`` is a cell of this space."""
        if genotype.num_nodes != self.num_nodes:
            raise GenotypeError(source, "nodes", genotype.num_nodes, f"this search space has {self.num_nodes} nodes")
        for number, node in enumerate(genotype.nodes, start=1):
            if node.op not in self.ops:
                raise GenotypeError(source, f"nodes[{number - 1}].op.name", node.op.name, f"not a candidate of this space: {', '.join(s.name for s in self.ops)}")
            if node.input not in self.candidate_inputs(number):
                raise GenotypeError(source, f"nodes[{number - 1}].input", node.input, f"{self.connections} connections allow {self.candidate_inputs(number)}")

    def choices(self) -> list[Choices]:
        """Per node, every operation and input it may take: the whole space."""
        return [Choices(tuple(self.ops), self.candidate_inputs(i)) for i in range(1, self.num_nodes + 1)]

    def sample(self, rng: random.Random, within: Sequence[Choices] | None = None) -> Genotype:
        """A cell drawn uniformly from the space (or from ``within``, per node a subset of its
        choices): each node's operation and input independently; the sink takes every node."""
        within = self.choices() if within is None else within
        nodes = [Node(rng.choice(choice.inputs), rng.choice(choice.ops)) for choice in within]
        return Genotype(nodes, sink=tuple(range(1, self.num_nodes + 1)), op_config=self.op_config)

    def to_dict(self) -> dict:
        return {
            "ops": [spec.name for spec in self.ops],
            "num_nodes": self.num_nodes,
            "connections": self.connections,
            "op_config": {"reduction": self.op_config.reduction, "heads": self.op_config.heads},
        }

    @classmethod
    def from_dict(cls, data: dict) -> SearchSpace:
        return cls(
            ops=tuple(OpSpec.parse(name) for name in data["ops"]),
            num_nodes=data["num_nodes"],
            connections=data["connections"],
            op_config=OpConfig(**data["op_config"]),
        )

    def __str__(self) -> str:
        lines = [
            f"SearchSpace: {self.num_nodes} nodes, {self.connections} connections, "
            f"{len(self.ops)} candidate operations, {self.num_cells:,} distinct cells",
            f"  op config: reduction {self.op_config.reduction}, heads {self.op_config.heads}",
        ]
        lines += [f"  node {i} reads one of {_describe_inputs(self.candidate_inputs(i))}" for i in range(1, self.num_nodes + 1)]
        lines.append(f"  {'operation':<28} {'type':<9} {'dim':<15} activation")
        lines += [f"  {s.name:<28} {s.type:<9} {s.dim or '-':<15} {s.activation or '-'}" for s in self.ops]
        return "\n".join(lines)


def _describe_inputs(inputs: Sequence[int]) -> str:
    return "{" + ", ".join("input" if i == 0 else f"node {i}" for i in inputs) + "}"
