"""The Genotype: a discrete cell as data, with a versioned JSON form that is validated on load.

A cell has K nodes. Node i (1-based) applies one operation to one earlier state: 0 is the cell
input, j < i is node j. The sink concatenates the listed nodes, projects back to C channels and
adds the cell input. Every field is checked before anything is built, and an error names the
file, the field and the offending value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darts_video.ops import OpConfig, OpSpec, list_ops
from darts_video.utils.files import atomic_write_text

if TYPE_CHECKING:
    from darts_video.space import SearchSpace

FORMAT = "darts_video.genotype"
VERSION = 1
MAX_NODES = 16
_TOP_LEVEL_KEYS = {"format", "version", "nodes", "sink", "op_config", "provenance"}


class GenotypeError(ValueError):
    """A genotype that cannot be built; says where (file or object), which field and what value."""

    def __init__(self, source: str, field_path: str, value: Any, problem: str) -> None:
        super().__init__(f"{source}: field '{field_path}' = {value!r}: {problem}")
        self.source, self.field, self.value = source, field_path, value


@dataclass(frozen=True)
class Node:
    input: int  # 0 = the cell input, j >= 1 = the output of node j
    op: OpSpec


@dataclass(frozen=True)
class Genotype:
    nodes: tuple[Node, ...]
    sink: tuple[int, ...]  # the nodes (1-based) whose outputs the sink concatenates
    op_config: OpConfig = OpConfig()
    provenance: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "sink", tuple(self.sink))
        _check_structure(self.nodes, self.sink, source="Genotype")

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
        if data.get("version") != VERSION:
            raise GenotypeError(source, "version", data.get("version"), f"unsupported version; this package reads {VERSION}")
        nodes = _parse_nodes(data.get("nodes"), source)
        sink = _parse_sink(data.get("sink"), source)
        op_config = _parse_op_config(data.get("op_config", {}), source)
        provenance = data.get("provenance", {})
        if not isinstance(provenance, dict):
            raise GenotypeError(source, "provenance", provenance, "expected a JSON object")
        _check_structure(nodes, sink, source)
        return cls(nodes, sink, op_config, provenance)

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


def named_genotypes() -> tuple[str, ...]:
    """Names of the genotypes shipped with the package (``darts_video/named_genotypes/*.json``)."""
    folder = resources.files("darts_video") / "named_genotypes"
    return tuple(sorted(entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json")))


def get_genotype(name_or_path: str | Path, space: SearchSpace | None = None) -> Genotype:
    """A genotype by registered name (see :func:`named_genotypes`) or by path to a JSON file."""
    name = str(name_or_path)
    if name in named_genotypes():
        with resources.as_file(resources.files("darts_video") / "named_genotypes" / f"{name}.json") as path:
            return Genotype.load(path, space)
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
