"""S3D (Xie et al., 2018): torchvision's separable 3D Inception, with named insertion points.

The layers are torchvision's own (so its Kinetics-400 weights load), renamed as in the paper
(``mixed4b`` ...). The head averages globally instead of torchvision's fixed 2×7×7 window, so any
clip size works; at 16×224² the two agree.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn
from torchvision.models.video import S3D_Weights, s3d

from darts_video.backbones.base import VideoBackbone, branch_channels
from darts_video.backbones.pretrained import Pretrained, load_pretrained, refuse_pretrained_config
from darts_video.backbones.registry import register_backbone

_LAYERS = ("conv1a", "pool2a", "conv2b", "conv2c", "pool3a", "mixed3b", "mixed3c", "pool4a", "mixed4b", "mixed4c",
           "mixed4d", "mixed4e", "mixed4f", "pool5a", "mixed5b", "mixed5c")


class S3D(VideoBackbone):
    def __init__(self, torchvision_s3d: nn.Module, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict(zip(_LAYERS, torchvision_s3d.features, strict=True)))
        self.dropout = nn.Dropout(dropout)
        head = torchvision_s3d.classifier[1]
        self.classifier = head if head.out_channels == num_classes else nn.Conv3d(head.in_channels, num_classes, 1)

        self.points = {f"features.{name}": branch_channels(getattr(self.features, name)) for name in _LAYERS if name.startswith("mixed")}

    def insertion_points(self) -> dict[str, int]:
        return dict(self.points)

    def default_insertion_points(self) -> tuple[str, ...]:
        return ("features.mixed4c", "features.mixed4d", "features.mixed4e", "features.mixed4f", "features.mixed5b")

    def forward(self, x: Tensor) -> Tensor:  # (N, 3, T, H, W)
        x = self.features(x).mean(dim=(2, 3, 4), keepdim=True)  # (N, 1024, 1, 1, 1)
        return self.classifier(self.dropout(x)).flatten(1)  # (N, num_classes)


@register_backbone("s3d")
def s3d_backbone(num_classes: int = 400, pretrained: Pretrained = False, pretrained_config: str | None = None) -> S3D:
    refuse_pretrained_config("s3d", pretrained_config)
    model = s3d(num_classes=num_classes)
    statistics = load_pretrained(model, pretrained, S3D_Weights.KINETICS400_V1, head="classifier")
    backbone = S3D(model, num_classes)
    if statistics is not None:
        backbone.input_statistics = statistics  # Kinetics-400's own, not ImageNet's
    return backbone
