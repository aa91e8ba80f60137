"""Pretrained weights for the backbones: torchvision's published ones, or a local file of them.

``pretrained=True`` asks torchvision for its weights (its cache, else a download); a path loads a
state dict saved from the same torchvision model (``torch.save(model.state_dict(), path)``), the
way to use weights on a machine without network access. The classifier is dropped when its
class count differs from the model's, so ImageNet or Kinetics weights initialise any task.
Every loader returns the input statistics the loaded weights expect.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import WeightsEnum

from darts_video.backbones.statistics import InputStatistics, statistics_of
from darts_video.errors import DartsVideoError

Pretrained = bool | str | Path


class PretrainedWeightsError(DartsVideoError, RuntimeError):
    pass


def read_weights_file(path: str | Path) -> dict:
    """The file as saved (``weights_only=True``: loading never runs code)."""
    if not Path(path).is_file():
        raise PretrainedWeightsError(f"pretrained weights file {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickled objects, truncated files: torch raises several types
        raise PretrainedWeightsError(
            f"{path} is not a file of tensors that loads with torch.load(weights_only=True) ({type(error).__name__}: "
            f"{str(error).splitlines()[0]}); re-save its state dict: torch.save(torch.load(path)['state_dict'], out)"
        ) from error
    if not isinstance(checkpoint, dict):
        raise PretrainedWeightsError(f"{path} holds a {type(checkpoint).__name__}, not a state dict")
    return checkpoint


def load_pretrained(model: nn.Module, pretrained: Pretrained, weights: WeightsEnum, head: str,
                    checkpoint: dict | None = None) -> InputStatistics | None:
    """Load ``weights`` (or the file ``pretrained`` names) into the torchvision ``model``.

    ``head`` is the prefix of the classifier's parameters (``fc``), which are kept as initialised
    when their shapes do not match. Anything else that does not match is an error naming the keys.
    ``checkpoint``: the file's contents, when the caller has read them already. Returns the
    statistics the weights expect (a file of torchvision's model: torchvision's), or None when
    nothing was loaded.
    """
    if pretrained is False:
        return None
    if pretrained is True:
        try:
            state = weights.get_state_dict(progress=True, check_hash=True)
        except Exception as error:  # no network, proxy, corrupt cache: all mean "not reachable"
            raise PretrainedWeightsError(
                f"could not get {weights} from {weights.url} ({type(error).__name__}: {error}); download it where the "
                f"network allows and pass --pretrained PATH to the file"
            ) from error
        source = weights.url
    else:
        source = str(pretrained)
        checkpoint = read_weights_file(source) if checkpoint is None else checkpoint
        state = checkpoint.get("state_dict", checkpoint.get("model", checkpoint))
    load_fitting(model, state, source, head)
    return statistics_of(weights)


def load_fitting(model: nn.Module, state: dict, source: str, head: str) -> None:
    """``model.load_state_dict(state)`` that drops a head of another class count and names every
    missing, unexpected and wrongly shaped key otherwise."""
    own = model.state_dict()
    mismatched_head = [k for k in state if k.startswith(f"{head}.") and k in own and state[k].shape != own[k].shape]
    state = {k: v for k, v in state.items() if k not in mismatched_head}
    missing = [k for k in own if k not in state and k not in mismatched_head and not k.endswith("_extra_state")]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or wrong_shape:
        raise PretrainedWeightsError(
            f"{source} does not fit {type(model).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"wrong shape {wrong_shape[:5]} ({len(missing)}, {len(unexpected)}, {len(wrong_shape)} in all)"
        )
    model.load_state_dict(state, strict=False)


def refuse_pretrained_config(backbone: str, pretrained_config: str | None) -> None:
    """Only i3d_r50 loads foreign (PySlowFast / MMAction2) checkpoints, which may need their config."""
    if pretrained_config is not None:
        raise PretrainedWeightsError(f"--pretrained-config describes a PySlowFast or MMAction2 checkpoint of i3d_r50; "
                                     f"{backbone} loads torchvision's weights only")
