"""One registry type for everything the package looks up by name: operation families, backbones
and named genotypes (timm's ``register_model`` / ``create_model``, as one small class).

    BACKBONES = Registry("backbone")

    @BACKBONES.register("tiny")
    def tiny(**kwargs) -> VideoBackbone: ...

    BACKBONES.names()        # ('i3d', 'i3d_r50', 's3d', 'tiny')
    BACKBONES.get("tiny")    # the factory; an unknown name raises UnknownNameError listing the known ones
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from darts_video.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one ``kind`` by name; a name registers once."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding its target under ``name``; registering a name twice is a bug (ValueError)."""

        def decorator(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return decorator

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries))

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries
