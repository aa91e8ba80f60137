"""The input statistics a backbone's weights expect: per-channel mean and std of RGB in [0, 1].

Clips are standardised as ``(x / 255 - mean) / std``; weights trained under other statistics see
shifted, rescaled inputs (every BatchNorm after the stem then normalises the wrong thing). Each
backbone declares the statistics of the weights it loaded; the run records them (config.json,
checkpoints) and uses them for training, testing and inside the exported model.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchvision.models import WeightsEnum

from darts_video.data.transforms import KINETICS_MEAN, KINETICS_STD


@dataclass(frozen=True)
class InputStatistics:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str  # who declares them, for messages and the docs

    def as_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def recorded(cls, record: dict | None, where: str) -> InputStatistics:
        """The statistics a checkpoint records; checkpoints written before they were recorded
        were all trained with PySlowFast's."""
        if record is None:
            return PYSLOWFAST
        return cls(tuple(record["mean"]), tuple(record["std"]), where)


# Training from scratch and PySlowFast's Kinetics checkpoints (its DATA.MEAN / DATA.STD defaults).
PYSLOWFAST = InputStatistics(KINETICS_MEAN, KINETICS_STD, "PySlowFast's defaults")
# ImageNet's, as torchvision's ImageNet weights and MMAction2's configs (123.675, 116.28, 103.53 / 255 ...).
IMAGENET = InputStatistics((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "ImageNet's")
# torchvision's GoogLeNet weights were ported from TensorFlow and take RGB in [-1, 1]; torchvision
# converts ImageNet-standardised inputs back to that range inside the model (transform_input).
MINUS_ONE_TO_ONE = InputStatistics((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "torchvision's GoogLeNet ([-1, 1])")


def statistics_of(weights: WeightsEnum) -> InputStatistics:
    """What torchvision's ``weights`` were trained with, from their preprocessing transform
    (``weights.meta`` does not carry it)."""
    transform = weights.transforms()
    return InputStatistics(tuple(transform.mean), tuple(transform.std), f"torchvision's {weights}")
