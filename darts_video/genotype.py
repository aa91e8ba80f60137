"""The Genotype: a discrete cell as data, with a versioned JSON form that is validated on load.

A cell has K nodes. Node i (1-based) applies one operation to one earlier state: 0 is the cell
input, j < i is node j. The sink concatenates the listed nodes, projects back to C channels and
adds the cell input. Every field is checked before anything is built, and an error names the
file, the field and the offending value.

Version 2 adds ``evidence``: for every decision of a searched cell, what the selector measured
(each candidate's score, the margin of the choice over the runner-up with its standard error)
and whether the choice is supported beyond noise. Version 1 files (no evidence) still load.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darts_video.errors import DartsVideoError
from darts_video.ops import OpConfig, OpSpec, list_ops
from darts_video.registry import Registry
from darts_video.utils.files import atomic_write_text

if TYPE_CHECKING:
    from darts_video.space import SearchSpace

FORMAT = "darts_video.genotype"
VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_NODES = 16
_TOP_LEVEL_KEYS = {"format", "version", "nodes", "sink", "op_config", "evidence", "provenance"}
DECISION_KINDS = ("op", "input")


class GenotypeError(DartsVideoError, ValueError):
    """A genotype that cannot be built; says where (file or object), which field and what value."""

    def __init__(self, source: str, field_path: str, value: Any, problem: str) -> None:
        super().__init__(f"{source}: field '{field_path}' = {value!r}: {problem}")
        self.source, self.field, self.value = source, field_path, value


@dataclass(frozen=True)
class Node:
    input: int  # 0 = the cell input, j >= 1 = the output of node j
    op: OpSpec


@dataclass(frozen=True)
class Decision:
    """The evidence behind one choice of a searched cell: node ``node``'s operation or input.

    ``scores`` maps every candidate (an operation name, or an input state as a string) to what the
    selector measured for it: ``alpha`` (its architecture probability) and, for the perturbation
    selector, ``effect`` (search-val accuracy lost when it is removed, in points) with its
    ``effect_stderr``. ``margin`` is the chosen candidate's lead over the runner-up in the
    selector's own score, ``margin_stderr`` its standard error (None where the selector has no
    noise estimate), and ``supported`` whether the lead is beyond noise.
    """

    node: int
    kind: str  # "op" or "input"
    chosen: str
    runner_up: str | None
    margin: float
    margin_stderr: float | None
    supported: bool
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "kind": self.kind, "chosen": self.chosen, "runner_up": self.runner_up, "margin": self.margin,
                "margin_stderr": self.margin_stderr, "supported": self.supported,
                "scores": {name: dict(score) for name, score in self.scores.items()}}


@dataclass(frozen=True)
class Genotype:
    nodes: tuple[Node, ...]
    sink: tuple[int, ...]  # the nodes (1-based) whose outputs the sink concatenates
    op_config: OpConfig = OpConfig()
    provenance: Mapping[str, Any] = field(default_factory=dict, hash=False)
    selector: str | None = None  # what chose the nodes (None: written by hand)
    evidence: tuple[Decision, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "sink", tuple(self.sink))
        object.__setattr__(self, "evidence", tuple(self.evidence))
        _check_structure(self.nodes, self.sink, source="Genotype")
        _check_evidence(self.nodes, self.selector, self.evidence, source="Genotype")

    def unsupported(self) -> list[Decision]:
        """The decisions whose evidence does not lift them beyond noise."""
        return [decision for decision in self.evidence if not decision.supported]

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "nodes": [
                {
                    "input": node.input,
                    "op": {"name": node.op.name, "type": node.op.type, "dim": node.op.dim, "activation": node.op.activation},
                }
                for node in self.nodes
            ],
            "sink": {"inputs": list(self.sink)},
            "op_config": {"reduction": self.op_config.reduction, "heads": self.op_config.heads},
            "evidence": {"selector": self.selector, "decisions": [d.to_dict() for d in self.evidence]} if self.selector else None,
            "provenance": dict(self.provenance),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write the JSON form atomically (a crash never leaves half a file)."""
        return atomic_write_text(Path(path), self.to_json())

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Genotype:
        """Validate ``data`` field by field and build the genotype; raises :class:`GenotypeError`."""
        if not isinstance(data, dict):
            raise GenotypeError(source, "<document>", type(data).__name__, "expected a JSON object")
        unknown = sorted(set(data) - _TOP_LEVEL_KEYS)
        if unknown:
            raise GenotypeError(source, unknown[0], data[unknown[0]], f"unknown field; expected {sorted(_TOP_LEVEL_KEYS)}")
        if data.get("format") != FORMAT:
            raise GenotypeError(source, "format", data.get("format"), f"expected {FORMAT!r}")
        version = data.get("version")
        if not _is_int(version) or version not in READABLE_VERSIONS:
            raise GenotypeError(source, "version", version, f"unsupported version; this package reads {', '.join(map(str, READABLE_VERSIONS))}")
        if version == 1 and "evidence" in data:
            raise GenotypeError(source, "evidence", data["evidence"], "version 1 genotypes have no evidence; write version 2")
        nodes = _parse_nodes(data.get("nodes"), source)
        sink = _parse_sink(data.get("sink"), source)
        op_config = _parse_op_config(data.get("op_config", {}), source)
        provenance = data.get("provenance", {})
        if not isinstance(provenance, dict):
            raise GenotypeError(source, "provenance", provenance, "expected a JSON object")
        _check_structure(nodes, sink, source)
        selector, evidence = _parse_evidence(data.get("evidence"), source)
        _check_evidence(nodes, selector, evidence, source)
        return cls(nodes, sink, op_config, provenance, selector, evidence)

    @classmethod
    def load(cls, path: str | Path, space: SearchSpace | None = None) -> Genotype:
        """Read and validate a genotype file; with ``space``, also check it is a cell of that space."""
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise GenotypeError(source, "<file>", source, f"cannot read: {error.strerror}") from error
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise GenotypeError(source, "<document>", text[:40], f"malformed JSON at line {error.lineno} column {error.colno}: {error.msg}") from error
        genotype = cls.from_dict(data, source)
        if space is not None:
            space.check(genotype, source)
        return genotype


GENOTYPES: Registry[Callable[[SearchSpace | None], Genotype]] = Registry("genotype")
"""Named genotypes: each entry loads its genotype (checked against a space when one is given).
The package registers its files in ``darts_video/named_genotypes/``; ``register_genotype(name)``
adds a loader of one's own."""
register_genotype = GENOTYPES.register


def _load_shipped(entry: Traversable, space: SearchSpace | None = None) -> Genotype:
    with resources.as_file(entry) as path:
        return Genotype.load(path, space)


def _register_shipped_genotypes() -> None:
    for entry in (resources.files("darts_video") / "named_genotypes").iterdir():
        if entry.name.endswith(".json"):
            register_genotype(entry.name.removesuffix(".json"))(functools.partial(_load_shipped, entry))


def named_genotypes() -> tuple[str, ...]:
    return GENOTYPES.names()


def get_genotype(name_or_path: str | Path, space: SearchSpace | None = None) -> Genotype:
    """A genotype by registered name (see :data:`GENOTYPES`) or by path to a JSON file."""
    name = str(name_or_path)
    if name in GENOTYPES:
        return GENOTYPES.get(name)(space)
    if Path(name).exists():
        return Genotype.load(name, space)
    raise GenotypeError(name, "<name or path>", name, f"neither a file nor a registered genotype; registered: {', '.join(named_genotypes())}")


def _parse_nodes(raw: Any, source: str) -> tuple[Node, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_NODES:
        count = len(raw) if isinstance(raw, list) else type(raw).__name__
        raise GenotypeError(source, "nodes", count, f"expected a list of 1 to {MAX_NODES} nodes")
    nodes = []
    for index, entry in enumerate(raw):
        where = f"nodes[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"input", "op"}:
            raise GenotypeError(source, where, entry, "expected an object with exactly the fields 'input' and 'op'")
        if not _is_int(entry["input"]):
            raise GenotypeError(source, f"{where}.input", entry["input"], "expected an integer")
        nodes.append(Node(entry["input"], _parse_op(entry["op"], source, f"{where}.op")))
    return tuple(nodes)


def _parse_op(raw: Any, source: str, where: str) -> OpSpec:
    if not isinstance(raw, dict) or "name" not in raw:
        raise GenotypeError(source, where, raw, "expected an object with a 'name'")
    try:
        spec = OpSpec.parse(raw["name"])
    except KeyError:
        raise GenotypeError(source, f"{where}.name", raw["name"], f"unknown operation; registered: {', '.join(s.name for s in list_ops())}") from None
    for key, value in raw.items():
        if key == "name":
            continue
        if key not in ("type", "dim", "activation"):
            raise GenotypeError(source, f"{where}.{key}", value, "unknown field; expected name, type, dim, activation")
        if value != getattr(spec, key):
            raise GenotypeError(source, f"{where}.{key}", value, f"does not match operation {spec.name!r} (expected {getattr(spec, key)!r})")
    return spec


def _parse_sink(raw: Any, source: str) -> tuple[int, ...]:
    if not isinstance(raw, dict) or set(raw) != {"inputs"}:
        raise GenotypeError(source, "sink", raw, "expected an object with the field 'inputs'")
    inputs = raw["inputs"]
    if not isinstance(inputs, list) or not all(_is_int(i) for i in inputs):
        raise GenotypeError(source, "sink.inputs", inputs, "expected a list of node numbers")
    return tuple(inputs)


def _parse_op_config(raw: Any, source: str) -> OpConfig:
    if not isinstance(raw, dict):
        raise GenotypeError(source, "op_config", raw, "expected a JSON object")
    for key, value in raw.items():
        if key not in ("reduction", "heads"):
            raise GenotypeError(source, f"op_config.{key}", value, "unknown field; expected reduction, heads")
        if not _is_int(value) or value < 1:
            raise GenotypeError(source, f"op_config.{key}", value, "expected a positive integer")
    return OpConfig(**raw)


def _check_structure(nodes: Sequence[Node], sink: Sequence[int], source: str) -> None:
    """Inputs point backwards, the sink names existing nodes once, and every node is used."""
    if not 1 <= len(nodes) <= MAX_NODES:
        raise GenotypeError(source, "nodes", len(nodes), f"expected 1 to {MAX_NODES} nodes")
    used = set(sink)
    for number, node in enumerate(nodes, start=1):
        if not _is_int(node.input) or not 0 <= node.input < number:
            raise GenotypeError(source, f"nodes[{number - 1}].input", node.input, f"node {number} may only take input 0 (the cell input) to {number - 1}")
        used.add(node.input)
    if not sink:
        raise GenotypeError(source, "sink.inputs", list(sink), "the sink needs at least one node")
    for position, number in enumerate(sink):
        if not _is_int(number) or not 1 <= number <= len(nodes):
            raise GenotypeError(source, f"sink.inputs[{position}]", number, f"expected a node number from 1 to {len(nodes)}")
    if len(set(sink)) != len(sink):
        raise GenotypeError(source, "sink.inputs", list(sink), "a node appears twice")
    for number in range(1, len(nodes) + 1):
        if number not in used:
            raise GenotypeError(source, "sink.inputs", list(sink), f"node {number} is used by neither the sink nor a later node")


def _parse_evidence(raw: Any, source: str) -> tuple[str | None, tuple[Decision, ...]]:
    if raw is None:
        return None, ()
    if not isinstance(raw, dict) or set(raw) != {"selector", "decisions"}:
        raise GenotypeError(source, "evidence", raw, "expected an object with exactly the fields 'selector' and 'decisions'")
    if not isinstance(raw["selector"], str) or not raw["selector"]:
        raise GenotypeError(source, "evidence.selector", raw["selector"], "expected the name of a selector")
    if not isinstance(raw["decisions"], list):
        raise GenotypeError(source, "evidence.decisions", raw["decisions"], "expected a list of decisions")
    return raw["selector"], tuple(_parse_decision(entry, source, f"evidence.decisions[{i}]") for i, entry in enumerate(raw["decisions"]))


_DECISION_FIELDS = {"node", "kind", "chosen", "runner_up", "margin", "margin_stderr", "supported", "scores"}


def _parse_decision(raw: Any, source: str, where: str) -> Decision:
    if not isinstance(raw, dict) or set(raw) != _DECISION_FIELDS:
        raise GenotypeError(source, where, raw, f"expected an object with exactly the fields {sorted(_DECISION_FIELDS)}")
    checks = {
        "node": (_is_int(raw["node"]), "expected a node number"),
        "kind": (raw["kind"] in DECISION_KINDS, f"expected one of {DECISION_KINDS}"),
        "chosen": (isinstance(raw["chosen"], str), "expected a candidate name"),
        "runner_up": (raw["runner_up"] is None or isinstance(raw["runner_up"], str), "expected a candidate name or null"),
        "margin": (_is_number(raw["margin"]), "expected a number"),
        "margin_stderr": (raw["margin_stderr"] is None or (_is_number(raw["margin_stderr"]) and raw["margin_stderr"] >= 0),
                          "expected a non-negative number or null"),
        "supported": (isinstance(raw["supported"], bool), "expected true or false"),
        "scores": (isinstance(raw["scores"], dict), "expected an object: candidate -> its measured scores"),
    }
    for name, (ok, problem) in checks.items():
        if not ok:
            raise GenotypeError(source, f"{where}.{name}", raw[name], problem)
    for candidate, score in raw["scores"].items():
        if not isinstance(score, dict) or not all(isinstance(k, str) and _is_number(v) for k, v in score.items()):
            raise GenotypeError(source, f"{where}.scores.{candidate}", score, "expected an object of named numbers")
    return Decision(**raw)


def _check_evidence(nodes: Sequence[Node], selector: str | None, evidence: Sequence[Decision], source: str) -> None:
    """Every decision names an existing node, its chosen candidate is the node's, its scores cover
    the chosen and the runner-up, and no decision is recorded twice."""
    if evidence and selector is None:
        raise GenotypeError(source, "evidence.selector", selector, "evidence needs the selector that measured it")
    seen = set()
    for index, decision in enumerate(evidence):
        where = f"evidence.decisions[{index}]"
        if not 1 <= decision.node <= len(nodes):
            raise GenotypeError(source, f"{where}.node", decision.node, f"expected a node number from 1 to {len(nodes)}")
        node = nodes[decision.node - 1]
        actual = node.op.name if decision.kind == "op" else str(node.input)
        if decision.chosen != actual:
            raise GenotypeError(source, f"{where}.chosen", decision.chosen, f"node {decision.node}'s {decision.kind} is {actual!r}")
        for name in (decision.chosen, decision.runner_up):
            if name is not None and name not in decision.scores:
                raise GenotypeError(source, f"{where}.scores", sorted(decision.scores), f"no score for candidate {name!r}")
        if (decision.node, decision.kind) in seen:
            raise GenotypeError(source, where, f"node {decision.node} {decision.kind}", "this decision is recorded twice")
        seen.add((decision.node, decision.kind))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_register_shipped_genotypes()
