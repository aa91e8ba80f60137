"""The three arms of the paper's comparison, built by one function: a backbone bare, with
non-local blocks, or with the discrete cell of a genotype at each insertion point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from darts_video.backbones import VideoBackbone, create_backbone
from darts_video.backbones.pretrained import Pretrained
from darts_video.cell import Cell
from darts_video.errors import ConfigError
from darts_video.genotype import Genotype, get_genotype
from darts_video.ops import NonLocalBlock

BASELINES = ("none", "nonlocal")


def create_model(
    backbone: str,
    num_classes: int,
    genotype: Genotype | str | Path | None = None,
    baseline: str = "none",
    points: Sequence[str] | None = None,
    pretrained: Pretrained = False,
    pretrained_config: str | None = None,
) -> VideoBackbone:
    """``backbone`` with a cell of ``genotype`` (a Genotype, a JSON path or a registered name) at
    each of ``points`` (default: the backbone's), each cell with its own weights; or with
    non-local blocks there (``baseline="nonlocal"``); or bare. Every inserted block starts as the
    identity, so pretrained weights keep their meaning. ``pretrained_config``: the configuration of
    a PySlowFast / MMAction2 checkpoint that does not embed it (i3d_r50)."""
    if baseline not in BASELINES:
        raise ConfigError(f"unknown baseline {baseline!r}; expected one of {BASELINES}")
    if genotype is not None and baseline != "none":
        raise ConfigError("give a genotype or a non-local baseline, not both")
    if genotype is not None and not isinstance(genotype, Genotype):
        genotype = get_genotype(genotype)
    model = create_backbone(backbone, num_classes=num_classes, pretrained=pretrained, pretrained_config=pretrained_config)
    available = model.insertion_points()
    points = tuple(points) if points is not None else model.default_insertion_points()
    unknown = [p for p in points if p not in available]
    if unknown:
        raise ConfigError(f"{backbone} has no insertion point {', '.join(unknown)}; available: {', '.join(available)}")
    if genotype is None and baseline == "none":
        return model
    for point in points:
        model.insert(point, _attention_block(genotype, available[point], f"{backbone} at {point}"))
    return model


def _attention_block(genotype: Genotype | None, channels: int, where: str) -> nn.Module:
    if genotype is None:
        return NonLocalBlock(channels)
    try:
        return Cell(genotype, channels)
    except ConfigError as error:  # the cell's own check (heads, reduction); other errors are bugs
        raise ConfigError(f"the cell does not fit {where} ({channels} channels): {error}") from error
