"""I3D-R50: ResNet-50 (torchvision) inflated to 3D with the non-local networks' temporal pattern.

As PySlowFast's ``I3D_8x8_R50`` / MMAction2's ``i3d_r50``: the stem is 5×7×7; the first 1×1
convolution of a bottleneck becomes 3×1×1 in every block of res2 and in alternate blocks of
res3-res5 (starting with the first, res5 with the second), all other kernels stay 1 frame wide;
a 2×1×1 max-pool after res2 halves time. Insertion points are blocks ``res{stage}.{index}``;
the defaults are where Wang et al. (2018) put their 5 non-local blocks (res3: 1, 3; res4: 1, 3, 5).

``pretrained``: torchvision's ImageNet ResNet-50 (inflated), a file of it, or a Kinetics
checkpoint of PySlowFast or MMAction2 (``kinetics_checkpoints.py``), which is loaded as trained:
with zero temporal padding, a choice the model's state dict carries (``_extra_state``).
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import ResNet50_Weights, resnet50

from darts_video.backbones.base import VideoBackbone
from darts_video.backbones.inflate import TEMPORAL_PADDING_MODES, Temporal, inflate, set_temporal_padding
from darts_video.backbones.kinetics_checkpoints import checkpoint_layout, load_kinetics_checkpoint
from darts_video.backbones.pretrained import Pretrained, PretrainedWeightsError, load_pretrained, read_weights_file
from darts_video.backbones.registry import register_backbone
from darts_video.backbones.statistics import statistics_of
from darts_video.errors import ConfigError

# 1: the block's first 1×1 conv becomes 3×1×1 (PySlowFast's "i3d" temporal kernel basis)
_INFLATED_BLOCKS = {"layer1": (1, 1, 1), "layer2": (1, 0, 1, 0), "layer3": (1, 0, 1, 0, 1, 0), "layer4": (0, 1, 0)}
_STAGES = {"res2": "layer1", "res3": "layer2", "res4": "layer3", "res5": "layer4"}


def _r50_temporal(name: str, layer: nn.Module) -> Temporal:
    if name == "conv1":
        return Temporal(5, 1)
    stage, block, conv = (name.split(".") + ["", "", ""])[:3]
    if conv == "conv1" and _INFLATED_BLOCKS.get(stage, ())[int(block)]:
        return Temporal(3, 1)
    return Temporal(1, 1)


class I3DResNet50(VideoBackbone):
    """stem -> res2 -> temporal pool -> res3 -> res4 -> res5 -> global pool -> dropout -> fc."""

    def __init__(self, resnet: nn.Module, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        inflated = inflate(resnet, _r50_temporal)
        self.stem = nn.Sequential(inflated.conv1, inflated.bn1, inflated.relu, inflated.maxpool)
        self.res2 = inflated.layer1
        self.pool2 = nn.MaxPool3d((2, 1, 1), (2, 1, 1))
        self.res3, self.res4, self.res5 = inflated.layer2, inflated.layer3, inflated.layer4
        self.dropout = nn.Dropout(dropout)
        self.fc = inflated.fc if inflated.fc.out_features == num_classes else nn.Linear(inflated.fc.in_features, num_classes)

        self.points = {f"{stage}.{i}": block.conv3.out_channels for stage in _STAGES for i, block in enumerate(getattr(self, stage))}

    def insertion_points(self) -> dict[str, int]:
        return dict(self.points)

    def get_extra_state(self) -> dict:
        """How time is padded (replicate for inflated ImageNet weights, zeros for Kinetics
        checkpoints): part of what the weights mean, so it travels with them."""
        return {"temporal_padding": self.stem[0].temporal_padding_mode}

    def set_extra_state(self, state: dict) -> None:
        mode = state.get("temporal_padding") if isinstance(state, dict) else None
        if mode not in TEMPORAL_PADDING_MODES:
            raise ConfigError(f"i3d_r50 state: unknown temporal padding {mode!r}; expected one of {TEMPORAL_PADDING_MODES}")
        set_temporal_padding(self, mode)

    def default_insertion_points(self) -> tuple[str, ...]:
        return ("res3.1", "res3.3", "res4.1", "res4.3", "res4.5")

    def forward(self, x: Tensor) -> Tensor:  # (N, 3, T, H, W)
        x = self.pool2(self.res2(self.stem(x)))  # (N, 256, T/2, H/4, W/4)
        x = self.res5(self.res4(self.res3(x)))  # (N, 2048, T/2, H/32, W/32)
        return self.fc(self.dropout(x.mean(dim=(2, 3, 4))))  # (N, num_classes)


def resnet50_2d(num_classes: int = 1000, pretrained: Pretrained = False, checkpoint: dict | None = None) -> nn.Module:
    """torchvision's ResNet-50, with its ImageNet weights if asked (``checkpoint``: the file, read)."""
    model = resnet50(num_classes=num_classes)
    load_pretrained(model, pretrained, ResNet50_Weights.IMAGENET1K_V1, head="fc", checkpoint=checkpoint)
    return model


@register_backbone("i3d_r50")
def i3d_r50(num_classes: int = 400, pretrained: Pretrained = False, pretrained_config: str | None = None) -> I3DResNet50:
    """``pretrained_config``: the PySlowFast / MMAction2 configuration of a Kinetics checkpoint that
    does not embed its own (what its tensors do not show: strides, statistics)."""
    checkpoint = None
    if pretrained is not True and pretrained is not False:
        checkpoint = read_weights_file(pretrained)
        layout = checkpoint_layout(checkpoint)
        if layout != "torchvision":
            model = I3DResNet50(resnet50(num_classes=num_classes), num_classes)
            model.input_statistics = load_kinetics_checkpoint(model, checkpoint, layout, str(pretrained), pretrained_config)
            return model
    if pretrained_config is not None:
        raise PretrainedWeightsError("--pretrained-config describes a PySlowFast or MMAction2 checkpoint, given as --pretrained PATH")
    model = I3DResNet50(resnet50_2d(num_classes, pretrained, checkpoint), num_classes)
    if pretrained is not False:
        model.input_statistics = statistics_of(ResNet50_Weights.IMAGENET1K_V1)
    return model
