"""The weight step the search and the retraining share: forward under autocast, a loss every
rank agrees is finite (so all ranks stop together), backward through the fp16 gradient scaler."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darts_video.engine import distributed
from darts_video.errors import DartsVideoError


class NonFiniteLoss(DartsVideoError, RuntimeError):
    """The loss became NaN or Inf; the message names the step and the last good checkpoint."""


def weight_step(
    model: nn.Module,
    clips: Tensor,  # (N, 3, T, H, W)
    labels: Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    amp_dtype: torch.dtype | None,
    where: str,
    max_grad_norm: float | None = None,
) -> tuple[Tensor, float]:
    """One update of the optimiser's parameters on cross-entropy; returns (logits, loss value).

    ``where`` ("step 4 (epoch 2); the last good checkpoint is ...") completes the error raised
    when the loss, averaged over ranks, is not finite; nothing is updated then.
    """
    with torch.autocast(clips.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = model(clips)
        loss = F.cross_entropy(logits, labels)
    loss_value = loss.item()
    world_size = torch.distributed.get_world_size() if distributed.is_distributed() else 1
    agreed = distributed.all_reduce_sum([loss_value], clips.device)[0] / world_size
    if not math.isfinite(agreed):
        raise NonFiniteLoss(f"loss became {agreed} at {where}")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if max_grad_norm is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return logits, loss_value
