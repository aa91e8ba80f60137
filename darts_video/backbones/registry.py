"""Backbones by name, as timm's ``register_model`` / ``create_model`` (a :class:`~darts_video.registry.Registry`)."""

from __future__ import annotations

from collections.abc import Callable

from darts_video.backbones.base import VideoBackbone
from darts_video.registry import Registry

BACKBONES: Registry[Callable[..., VideoBackbone]] = Registry("backbone")
register_backbone = BACKBONES.register


def list_backbones() -> tuple[str, ...]:
    return BACKBONES.names()


def create_backbone(name: str, **kwargs) -> VideoBackbone:
    return BACKBONES.get(name)(**kwargs)
