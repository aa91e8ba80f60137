"""The weights' optimiser and learning-rate schedule, from timm's factories.

Parameter groups follow timm and PySlowFast: biases and every 1-D weight (normalisation scales,
among them the zero-initialised scale of each inserted cell's sink and of each non-local block)
take no weight decay. Decaying that scale would pull an inserted cell back towards the identity
over a long SGD schedule (PySlowFast's: lr 0.1, decay 1e-4, 100+ epochs).
"""

from __future__ import annotations

import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from torch import nn

from darts_video.errors import ConfigError

# our name -> timm's ("momentum" is plain SGD with momentum; timm's "sgd" is Nesterov)
_TIMM_NAMES = {"sgd": "momentum", "adamw": "adamw"}
OPTIMIZERS = tuple(_TIMM_NAMES)


def create_weight_optimizer(module: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """``name`` (sgd: momentum 0.9; adamw) over ``module``'s parameters, no decay on biases and 1-D weights."""
    if name not in _TIMM_NAMES:
        raise ConfigError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")
    return create_optimizer_v2(module, opt=_TIMM_NAMES[name], lr=lr, weight_decay=weight_decay, momentum=0.9, filter_bias_and_bn=True)


def create_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0, lr_min: float = 0.0) -> CosineLRScheduler:
    """Per-step schedule: a linear warm-up over ``warmup_steps`` from a ``1 / warmup_steps``
    fraction of the learning rate, then a cosine from the learning rate to ``lr_min`` at
    ``total_steps``. The rate is a pure function of the step (``schedule.step_update(step)``
    before each step), so resuming needs only the step count."""
    base = optimizer.param_groups[0]["lr"]
    return CosineLRScheduler(
        optimizer, t_initial=max(1, total_steps - warmup_steps), lr_min=lr_min, warmup_t=warmup_steps,
        warmup_lr_init=base / max(1, warmup_steps), warmup_prefix=True, t_in_epochs=False,
    )


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return optimizer.param_groups[0]["lr"]
