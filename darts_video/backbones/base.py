"""What every backbone offers the model builder and the supernet: named insertion points.

An insertion point is the dotted path of a block whose output an attention block may follow,
with the number of channels there. Inserting wraps that block as ``Sequential(block, attention)``,
so the backbone's forward is untouched; load pretrained weights before inserting.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from darts_video.backbones.statistics import PYSLOWFAST, InputStatistics
from darts_video.errors import UnknownNameError


class VideoBackbone(nn.Module):
    """A video classifier, input (N, 3, T, H, W), output logits (N, num_classes).

    ``input_statistics``: the mean / std its weights expect; factories that load pretrained
    weights set those of the weights, a network trained from scratch keeps PySlowFast's.
    """

    input_statistics: InputStatistics = PYSLOWFAST

    def insertion_points(self) -> dict[str, int]:
        """Every place an attention block may go: block path -> channels of its output."""
        raise NotImplementedError

    def default_insertion_points(self) -> tuple[str, ...]:
        raise NotImplementedError

    def insert(self, point: str, block: nn.Module) -> None:
        """Follow the block at ``point`` with ``block`` (an attention cell, a non-local block)."""
        points = self.insertion_points()
        if point not in points:
            raise UnknownNameError(f"{type(self).__name__} has no insertion point {point!r}; available: {', '.join(points)}")
        original = self.get_submodule(point)
        self.set_submodule(point, nn.Sequential(OrderedDict(block=original, attention=block)))


def branch_channels(block: nn.Module) -> int:
    """Output channels of an Inception-style block: its branches' last convolutions, concatenated."""
    return sum([m for m in branch.modules() if isinstance(m, nn.Conv3d)][-1].out_channels for branch in block.children())
