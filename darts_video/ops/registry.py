"""The vocabulary of candidate operations and the registry that builds them.

An operation is named by its fields: ``{type}_{dim}_{activation}`` (e.g. ``dot_temporal_softmax``)
or ``identity``. Each attention family registers itself with the dimensions and activations it
supports, so the full candidate list is derived data, never a hand-kept table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from torch import nn

from darts_video.errors import ConfigError, UnknownNameError
from darts_video.registry import Registry

DIMENSIONS = ("spatial", "temporal", "spatiotemporal")
IDENTITY = "identity"


@dataclass(frozen=True)
class OpConfig:
    """Hyper-parameters shared by every operation of a cell."""

    reduction: int = 2  # dot-product attention projects C -> C // reduction channels
    heads: int = 1

    def __post_init__(self) -> None:
        for field_name in ("reduction", "heads"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"OpConfig.{field_name} must be a positive integer, got {value!r}")


@dataclass(frozen=True, order=True)
class OpSpec:
    """One candidate operation: attention type x dimension x activation, or the identity."""

    type: str
    dim: str | None = None
    activation: str | None = None

    @property
    def name(self) -> str:
        if self.type == IDENTITY:
            return IDENTITY
        return f"{self.type}_{self.dim}_{self.activation}"

    @property
    def has_parameters(self) -> bool:
        return self.type != IDENTITY

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, name: str) -> OpSpec:
        """The registered operation called ``name``; ``KeyError`` lists every valid name."""
        for spec in list_ops():
            if spec.name == name:
                return spec
        raise _unknown_op(name)


class OpBuilder(Protocol):
    def __call__(self, spec: OpSpec, channels: int, config: OpConfig) -> nn.Module: ...


@dataclass(frozen=True)
class _Family:
    builder: OpBuilder
    dims: tuple[str, ...]
    activations: tuple[str, ...]


OP_FAMILIES: Registry[_Family] = Registry("operation type")


def register_family(
    type_name: str, *, dims: tuple[str, ...] = (), activations: tuple[str, ...] = ()
) -> Callable[[OpBuilder], OpBuilder]:
    """Register an operation family; every ``dims x activations`` pair becomes a candidate."""

    unknown = set(dims) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"{type_name}: unknown dimensions {sorted(unknown)}")

    def decorator(builder: OpBuilder) -> OpBuilder:
        OP_FAMILIES.register(type_name)(_Family(builder, tuple(dims), tuple(activations)))
        return builder

    return decorator


def list_ops() -> tuple[OpSpec, ...]:
    """Every registered candidate: parameter-free ones first, then each family in name order."""
    specs: list[OpSpec] = []
    families = [(name, OP_FAMILIES.get(name)) for name in OP_FAMILIES.names()]
    for type_name, family in sorted(families, key=lambda item: (bool(item[1].dims), item[0])):
        if not family.dims:
            specs.append(OpSpec(type_name))
            continue
        specs.extend(OpSpec(type_name, d, a) for d in family.dims for a in family.activations)
    return tuple(specs)


def create_op(spec: OpSpec | str, channels: int, config: OpConfig | None = None) -> nn.Module:
    """Build the module for ``spec`` acting on ``channels`` channels; shape in == shape out."""
    if isinstance(spec, str):
        spec = OpSpec.parse(spec)
    elif spec not in list_ops():
        raise _unknown_op(spec.name)
    if channels < 1:
        raise ConfigError(f"{spec.name}: channels must be positive, got {channels}")
    return OP_FAMILIES.get(spec.type).builder(spec, channels, config or OpConfig())


def _unknown_op(name: str) -> UnknownNameError:
    return UnknownNameError(f"unknown operation {name!r}; registered: {', '.join(s.name for s in list_ops())}")
