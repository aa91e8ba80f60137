"""A backbone with a mixed cell at each insertion point, all sharing one set of α and β."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from darts_video.backbones.base import VideoBackbone
from darts_video.space import SearchSpace
from darts_video.supernet.arch import MODES, ArchitectureParameters
from darts_video.supernet.mixed import MixedCell, WeightsSlot


class Supernet(nn.Module):
    """``backbone`` with :class:`MixedCell` s at ``points`` (default: the backbone's defaults).

    Each forward draws the mixing weights once (a GDAS sample is the same cell at every position)
    and the cells read them. ``temperature`` is GDAS's Gumbel-softmax temperature; the search
    loop anneals it.
    """

    def __init__(
        self,
        backbone: VideoBackbone,
        space: SearchSpace,
        points: Sequence[str] | None = None,
        mode: str = "darts",
        partial_channels: int = 4,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; expected one of {MODES}")
        available = backbone.insertion_points()
        points = tuple(points) if points is not None else backbone.default_insertion_points()
        unknown = [p for p in points if p not in available]
        if not points or unknown:
            raise ValueError(f"insertion points {unknown or list(points)} not usable; {type(backbone).__name__} has: {', '.join(available)}")
        self.space, self.mode, self.points, self.temperature = space, mode, points, 1.0
        self.arch = ArchitectureParameters(space)
        self.slot = WeightsSlot()
        split = partial_channels if mode == "pc" else 1
        for point in points:
            backbone.insert(point, MixedCell(space, available[point], self.slot, split))
        self.backbone = backbone

    def forward(self, x: Tensor) -> Tensor:  # (N, 3, T, H, W) -> (N, num_classes)
        self.slot.weights = self.arch.mixing_weights(self.mode, self.temperature)
        try:
            return self.backbone(x)
        finally:
            self.slot.weights = None

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.arch.parameters())

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch.parameters()}
        return [p for p in self.parameters() if id(p) not in arch]
