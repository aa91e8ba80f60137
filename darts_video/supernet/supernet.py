"""A backbone with a mixed cell at each insertion point, all sharing one set of α and β."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from darts_video.backbones.base import VideoBackbone
from darts_video.errors import ConfigError
from darts_video.space import SearchSpace
from darts_video.supernet.arch import MODES, ArchitectureParameters, ArchWeights, CandidateMask
from darts_video.supernet.mixed import MixedCell


class Supernet(nn.Module):
    """``backbone`` with :class:`MixedCell` s at ``points`` (default: the backbone's defaults).

    Each forward draws the mixing weights once (a GDAS sample is the same cell at every position)
    and binds them to every cell for that forward; ``net(x, weights)`` uses given weights instead
    (the architecture step reuses one draw for all its forwards). ``temperature`` is GDAS's
    Gumbel-softmax temperature (the search loop anneals it); GDAS draws from ``generator``, which
    is seeded alike on every rank, so that all ranks sample the same cells whatever their data
    augmentation draws. ``mask`` switches candidates off (the selectors' perturbations and
    decisions). ``normalize_candidates`` and ``recompute``: see :class:`MixedOp` / :class:`MixedNodes`;
    ``sink_scale``: the scale the cells' sinks start at (:class:`MixedCell`; 0, the default here: the bare backbone).
    """

    def __init__(
        self,
        backbone: VideoBackbone,
        space: SearchSpace,
        points: Sequence[str] | None = None,
        mode: str = "darts",
        partial_channels: int = 4,
        normalize_candidates: bool = False,
        recompute: bool = False,
        sink_scale: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"unknown search mode {mode!r}; expected one of {MODES}")
        available = backbone.insertion_points()
        points = tuple(points) if points is not None else backbone.default_insertion_points()
        unknown = [p for p in points if p not in available]
        if not points or unknown:
            raise ConfigError(f"insertion points {unknown or list(points)} not usable; {type(backbone).__name__} has: {', '.join(available)}")
        self.space, self.mode, self.points, self.temperature = space, mode, points, 1.0
        self.arch = ArchitectureParameters(space)
        self.mask = CandidateMask.full(space)
        self.generator = torch.Generator().manual_seed(seed)
        split = partial_channels if mode == "pc" else 1
        self.cells: list[MixedCell] = []
        for point in points:
            cell = MixedCell(space, available[point], split, normalize_candidates, recompute, sink_scale)
            backbone.insert(point, cell)
            self.cells.append(cell)
        self.backbone = backbone

    def mixing_weights(self) -> ArchWeights:
        """A draw of the mixing weights under the current mode, temperature and mask."""
        return self.arch.mixing_weights(self.mode, self.temperature, self.mask, self.generator)

    def forward(self, x: Tensor, weights: ArchWeights | None = None) -> Tensor:  # (N, 3, T, H, W) -> (N, num_classes)
        weights = weights if weights is not None else self.mixing_weights()
        for cell in self.cells:
            cell.bind(weights)
        try:
            return self.backbone(x)
        finally:
            for cell in self.cells:
                cell.bind(None)

    @contextlib.contextmanager
    def cells_bypassed(self) -> Iterator[None]:
        """Inside: the backbone with each cell replaced by the identity (what the network computes
        without its cells' residual branches; the same weights otherwise)."""
        holders = [self.backbone.get_submodule(point) for point in self.points]
        for holder in holders:
            holder.attention = nn.Identity()
        try:
            yield
        finally:
            for holder, cell in zip(holders, self.cells):
                holder.attention = cell

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.arch.parameters())

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters())
