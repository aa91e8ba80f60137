"""Pretrained weights for the backbones: torchvision's published ones, or a local file of them.

``pretrained=True`` asks torchvision for its weights (its cache, else a download); a path loads a
state dict saved from the same torchvision model (``torch.save(model.state_dict(), path)``), the
way to use weights on a machine without network access. The classifier is dropped when its
class count differs from the model's, so ImageNet or Kinetics weights initialise any task.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import WeightsEnum

Pretrained = bool | str | Path


class PretrainedWeightsError(RuntimeError):
    pass


def load_pretrained(model: nn.Module, pretrained: Pretrained, weights: WeightsEnum, head: str) -> None:
    """Load ``weights`` (or the file ``pretrained`` names) into the torchvision ``model``.

    ``head`` is the prefix of the classifier's parameters (``fc``), which are kept as initialised
    when their shapes do not match. Anything else that does not match is an error naming the keys.
    """
    if pretrained is False:
        return
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
        if not Path(source).is_file():
            raise PretrainedWeightsError(f"pretrained weights file {source} does not exist")
        state = torch.load(source, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state.get("model", state))
    own = model.state_dict()
    mismatched_head = [k for k in state if k.startswith(f"{head}.") and k in own and state[k].shape != own[k].shape]
    state = {k: v for k, v in state.items() if k not in mismatched_head}
    missing = [k for k in own if k not in state and k not in mismatched_head]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or wrong_shape:
        raise PretrainedWeightsError(
            f"{source} does not fit {type(model).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"wrong shape {wrong_shape[:5]} ({len(missing)}, {len(unexpected)}, {len(wrong_shape)} in all)"
        )
    model.load_state_dict(state, strict=False)
