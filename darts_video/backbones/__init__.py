"""Video backbones with named insertion points for attention cells, by name."""

from darts_video.backbones import i3d, i3d_r50, s3d, tiny  # noqa: F401  (importing registers)
from darts_video.backbones.base import VideoBackbone
from darts_video.backbones.registry import create_backbone, list_backbones, register_backbone
from darts_video.backbones.tiny import TinyVideoNet

__all__ = ["TinyVideoNet", "VideoBackbone", "create_backbone", "list_backbones", "register_backbone"]
