"""I3D: Inception-v1 (torchvision's GoogLeNet) inflated to 3D, as Carreira & Zisserman (2017).

Every k×k convolution becomes k×k×k; the stem is 7×7×7 with temporal stride 2; the first two
max-pools stay 1×3×3 (no temporal pooling early), the third is 3×3×3 with stride 2, the fourth
2×2×2 with stride 2. An 8-frame clip ends with 1 frame, a 32-frame one with 4. Inserting after
an Inception block follows the paper's placement of attention (AttentionNAS, §4).
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import GoogLeNet, GoogLeNet_Weights

from darts_video.backbones.base import VideoBackbone, branch_channels
from darts_video.backbones.inflate import Temporal, inflate
from darts_video.backbones.pretrained import Pretrained, load_pretrained, refuse_pretrained_config
from darts_video.backbones.registry import register_backbone
from darts_video.backbones.statistics import MINUS_ONE_TO_ONE
from darts_video.errors import ConfigError

_BLOCKS = ("inception3a", "inception3b", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
           "inception5a", "inception5b")
_POOLS = {"maxpool1": Temporal(1, 1), "maxpool2": Temporal(1, 1), "maxpool3": Temporal(3, 2), "maxpool4": Temporal(2, 2, 0)}


def _i3d_temporal(name: str, layer: nn.Module) -> Temporal:
    if name in _POOLS:
        return _POOLS[name]
    if isinstance(layer, nn.MaxPool2d):  # the 3×3 stride-1 pool of each Inception block's 4th branch
        return Temporal(3, 1)
    return Temporal(layer.kernel_size[0], 2 if name == "conv1.conv" else 1)


class I3D(VideoBackbone):
    """Inflated Inception-v1; the layer names are GoogLeNet's, so its weights map one to one."""

    def __init__(self, googlenet: GoogLeNet, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        if googlenet.transform_input:
            raise ConfigError("I3D takes clips standardised with its input_statistics; build the GoogLeNet with "
                             "transform_input=False (for its ImageNet weights the statistics put RGB in [-1, 1])")
        inflated = inflate(googlenet, _i3d_temporal)
        for name in ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
                     "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
                     "inception5a", "inception5b"):
            setattr(self, name, getattr(inflated, name))
        self.dropout = nn.Dropout(dropout)
        self.fc = inflated.fc if inflated.fc.out_features == num_classes else nn.Linear(inflated.fc.in_features, num_classes)

        self.points = {name: branch_channels(getattr(self, name)) for name in _BLOCKS}

    def insertion_points(self) -> dict[str, int]:
        return dict(self.points)

    def default_insertion_points(self) -> tuple[str, ...]:
        return ("inception4b", "inception4c", "inception4d", "inception4e", "inception5a")

    def forward(self, x: Tensor) -> Tensor:  # (N, 3, T, H, W)
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))  # (N, 192, T/2, H/8, W/8)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # (N, 480, T/4, H/16, W/16)
        for block in (self.inception4a, self.inception4b, self.inception4c, self.inception4d, self.inception4e):
            x = block(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))  # (N, 1024, T/8, H/32, W/32)
        return self.fc(self.dropout(x.mean(dim=(2, 3, 4))))  # (N, num_classes)


def googlenet_2d(num_classes: int = 1000, pretrained: Pretrained = False) -> GoogLeNet:
    """torchvision's GoogLeNet without auxiliary heads, with its ImageNet weights if asked.

    Without ``transform_input``: torchvision's ImageNet weights take RGB in [-1, 1], and torchvision
    maps ImageNet-standardised inputs back to that range inside the model; here the clips are
    standardised to [-1, 1] directly (``MINUS_ONE_TO_ONE``), so the model holds no hidden statistics.
    """
    model = GoogLeNet(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=True)
    load_pretrained(model, pretrained, GoogLeNet_Weights.IMAGENET1K_V1, head="fc")
    return model


@register_backbone("i3d")
def i3d(num_classes: int = 400, pretrained: Pretrained = False, pretrained_config: str | None = None) -> I3D:
    refuse_pretrained_config("i3d", pretrained_config)
    model = I3D(googlenet_2d(num_classes, pretrained), num_classes)
    if pretrained is not False:
        model.input_statistics = MINUS_ONE_TO_ONE
    return model
