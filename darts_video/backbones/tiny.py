"""The tiny CPU backbone of the built-in procedural dataset (about 70 k parameters).

Its receptive field is 15 px and 5 frames: too small to relate the objects of the procedural
dataset's long-range classes, so only an inserted attention block can (docs/data.md). The stem's
temporal kernel is 1 on purpose: a temporal kernel of 3 there let the bare network solve the
temporal pair (shared/notes/procedural_dataset.md).
"""

from __future__ import annotations

from torch import Tensor, nn

from darts_video.backbones.base import VideoBackbone
from darts_video.backbones.pretrained import load_fitting, read_weights_file, refuse_pretrained_config
from darts_video.backbones.registry import register_backbone
from darts_video.errors import ConfigError


def conv_bn_relu(c_in: int, c_out: int, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(nn.Conv3d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True))


class TinyVideoNet(VideoBackbone):
    """stem (1,3,3)/2 -> conv 3^3 /2 -> [attention] -> conv 3^3 -> [attention] -> pool -> linear."""

    def __init__(self, num_classes: int = 8, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        self.widths = widths
        self.stem = conv_bn_relu(3, widths[0], (1, 3, 3), (1, 2, 2))  # (N, 16, T, H/2, W/2)
        self.stage2 = conv_bn_relu(widths[0], widths[1], (3, 3, 3), (1, 2, 2))  # (N, 32, T, H/4, W/4)
        self.stage3 = conv_bn_relu(widths[1], widths[2], (3, 3, 3), (1, 1, 1))  # (N, 64, T, H/4, W/4)
        self.head = nn.Linear(widths[2], num_classes)

    def insertion_points(self) -> dict[str, int]:
        return {"stage2": self.widths[1], "stage3": self.widths[2]}

    def default_insertion_points(self) -> tuple[str, ...]:
        return ("stage2",)

    def forward(self, x: Tensor) -> Tensor:  # (N, 3, T, H, W)
        features = self.stage3(self.stage2(self.stem(x)))
        return self.head(features.mean(dim=(2, 3, 4)))  # (N, num_classes)


@register_backbone("tiny")
def tiny(num_classes: int = 8, pretrained: bool | str = False, pretrained_config: str | None = None, **kwargs) -> TinyVideoNet:
    """``pretrained``: a file of a TinyVideoNet's state dict (e.g. one trained on the built-in
    dataset, to search inside it); there are no published weights to download."""
    refuse_pretrained_config("tiny", pretrained_config)
    if pretrained is True:
        raise ConfigError("the tiny backbone has no published pretrained weights (it trains from scratch in minutes); "
                         "--pretrained PATH takes a file of a TinyVideoNet's state dict")
    model = TinyVideoNet(num_classes, **kwargs)
    if pretrained is not False:
        checkpoint = read_weights_file(pretrained)
        load_fitting(model, checkpoint.get("state_dict", checkpoint.get("model", checkpoint)), str(pretrained), head="head")
    return model
