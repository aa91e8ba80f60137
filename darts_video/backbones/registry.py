"""Backbones by name, as timm's ``register_model`` / ``create_model``."""

from __future__ import annotations

from collections.abc import Callable

from darts_video.backbones.base import VideoBackbone
from darts_video.errors import UnknownNameError

_BACKBONES: dict[str, Callable[..., VideoBackbone]] = {}


def register_backbone(name: str) -> Callable[[Callable[..., VideoBackbone]], Callable[..., VideoBackbone]]:
    def decorator(factory: Callable[..., VideoBackbone]) -> Callable[..., VideoBackbone]:
        if name in _BACKBONES:
            raise ValueError(f"backbone {name!r} is registered twice")
        _BACKBONES[name] = factory
        return factory

    return decorator


def list_backbones() -> tuple[str, ...]:
    return tuple(sorted(_BACKBONES))


def create_backbone(name: str, **kwargs) -> VideoBackbone:
    if name not in _BACKBONES:
        raise UnknownNameError(f"unknown backbone {name!r}; registered: {', '.join(list_backbones())}")
    return _BACKBONES[name](**kwargs)
