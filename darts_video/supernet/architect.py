"""The bilevel step: α and β learn on the search-val split while the weights learn on search-train.

First order (DARTS-1st) takes ∇_α L_val(w, α). Second order (DARTS-2nd) differentiates through
one virtual SGD step of the weights, w' = w − ξ·(μ·m + ∇_w L_train(w, α) + λ·w):

    ∇_α L_val(w', α) − ξ · ∇²_{α,w} L_train(w, α) · ∇_{w'} L_val(w', α)

with the Hessian-vector product taken by central finite differences,
(∇_α L_train(w + ε v, α) − ∇_α L_train(w − ε v, α)) / 2ε, v = ∇_{w'} L_val, ε = r / ‖v‖
(DARTS' r = 0.01; no double backward is needed, which fused attention kernels lack).
The virtual forwards run through ``torch.func.functional_call`` on copies of the weights and
buffers, so the model itself is never modified. The virtual step is an SGD step of size ξ (the
weights' learning rate) whatever the weights' optimiser: with SGD it is DARTS' step (momentum
and decay included); with AdamW it is the plain gradient step, μ = 0, λ its decoupled decay.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from darts_video.supernet.supernet import Supernet

Batch = tuple[Tensor, Tensor]  # (clips (N, C, T, H, W), labels (N,))


def beta_decay(alphas: Tensor) -> Tensor:
    """β-DARTS' regulariser: the mean log-sum-exp of each decision's logits. Penalising it keeps
    the logits from growing apart, which delays collapse onto parameter-free operations."""
    return torch.logsumexp(alphas, dim=-1).mean()


class Architect:
    def __init__(
        self,
        model: Supernet,
        weight_optimizer: torch.optim.Optimizer,
        lr: float = 3e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        weight_decay: float = 1e-3,
        order: int = 1,
        beta_decay_weight: float = 0.0,
        finite_difference_radius: float = 0.01,
        loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    ) -> None:
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        self.model, self.weight_optimizer, self.order = model, weight_optimizer, order
        self.beta_decay_weight, self.loss_fn = beta_decay_weight, loss_fn
        self.radius = finite_difference_radius
        self.optimizer = torch.optim.Adam(model.arch_parameters(), lr=lr, betas=betas, weight_decay=weight_decay)

    def step(self, train_batch: Batch, val_batch: Batch, weight_lr: float) -> tuple[float, Tensor]:
        """One update of α and β; returns the architecture loss on ``val_batch`` and α's gradient
        (K, num_ops), averaged over ranks."""
        arch = self.model.arch_parameters()
        if self.order == 1:
            loss = self._arch_loss(self._loss(self.model(val_batch[0]), val_batch[1]))
            grads = torch.autograd.grad(loss, arch)
        else:
            loss, grads = self._second_order_gradients(train_batch, val_batch, weight_lr)
        grads = _average_across_ranks(list(grads))
        for parameter, grad in zip(arch, grads):
            parameter.grad = grad
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item(), grads[0].detach()

    def _loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return self.loss_fn(logits, labels)

    def _arch_loss(self, loss: Tensor) -> Tensor:
        if self.beta_decay_weight:
            return loss + self.beta_decay_weight * beta_decay(self.model.arch.alphas)
        return loss

    def _second_order_gradients(self, train_batch: Batch, val_batch: Batch, xi: float) -> tuple[Tensor, list[Tensor]]:
        weights = {name: p for name, p in self.model.named_parameters() if not name.startswith("arch.")}
        names = list(weights)
        arch = self.model.arch_parameters()
        buffers = {name: b.clone() for name, b in self.model.named_buffers()}

        def loss_at(new_weights: dict[str, Tensor], batch: Batch) -> Tensor:
            logits = functional_call(self.model, {**new_weights, **buffers}, (batch[0],), strict=False)
            return self._loss(logits, batch[1])

        unrolled = self._virtual_step(weights, loss_at(weights, train_batch), xi)
        val_loss = self._arch_loss(loss_at(unrolled, val_batch))
        grads = torch.autograd.grad(val_loss, [unrolled[n] for n in names] + arch)
        direction, arch_grads = grads[: len(names)], grads[len(names) :]
        epsilon = self.radius / torch.cat([d.flatten() for d in direction]).norm().clamp_min(1e-12)
        shifted = []
        for sign in (1, -1):
            moved = {n: (weights[n] + sign * epsilon * d).detach() for n, d in zip(names, direction)}
            shifted.append(torch.autograd.grad(loss_at(moved, train_batch), arch))
        hessian_vector = [(plus - minus) / (2 * epsilon) for plus, minus in zip(*shifted)]
        return val_loss.detach(), [g - xi * h for g, h in zip(arch_grads, hessian_vector)]

    def _virtual_step(self, weights: dict[str, Tensor], train_loss: Tensor, xi: float) -> dict[str, Tensor]:
        """w' = w − ξ·(μ·momentum buffer + ∇_w L_train + λ·w), detached from w, as DARTS does."""
        group = self.weight_optimizer.param_groups[0]
        momentum, decay = group.get("momentum", 0.0), group.get("weight_decay", 0.0)
        grads = torch.autograd.grad(train_loss, list(weights.values()), allow_unused=True)
        unrolled = {}
        for (name, w), g in zip(weights.items(), grads):
            buffer = self.weight_optimizer.state.get(w, {}).get("momentum_buffer")
            step = (g if g is not None else torch.zeros_like(w)) + decay * w
            if buffer is not None:
                step = step + momentum * buffer
            unrolled[name] = (w - xi * step).detach().requires_grad_()
        return unrolled


def _average_across_ranks(grads: list[Tensor]) -> list[Tensor]:
    """Under DDP every rank must take the same architecture step: average α/β gradients."""
    if dist.is_available() and dist.is_initialized():
        for grad in grads:
            dist.all_reduce(grad, op=dist.ReduceOp.SUM)
            grad /= dist.get_world_size()
    return grads
