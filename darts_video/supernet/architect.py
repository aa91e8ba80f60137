"""The bilevel step: α and β learn on the search-val split while the weights learn on search-train.

First order (DARTS-1st) takes ∇_α L_val(w, α). Second order (DARTS-2nd) differentiates through
one virtual step of the weights, the step their optimiser would take, w' = w − ξ·u(g), with
g = ∇_w L_train(w, α) and ξ the weights' learning rate:

- SGD (momentum μ, decay λ per parameter group): u = μ·m + g + λ·w, as in DARTS;
- AdamW (β₁, β₂, ε, decoupled decay λ): u = λ·w + (β₁·m + (1 − β₁)·g) / (1 − β₁^{t+1}) / (√v̂ + ε),
  with the second-moment estimate v̂ (bias-corrected) held fixed, the usual linearisation: the
  new gradient enters through the first moment only (with both moments fixed, w' would not
  depend on α at all). A weight AdamW has not updated yet (a GDAS candidate never sampled) is
  unrolled as Adam's first step, v̂ = g² of the current gradient.

So ∂w'/∂g = −ξ·c with c = 1 (SGD) or c = (1 − β₁) / ((1 − β₁^{t+1}) (√v̂ + ε)) (AdamW), and

    ∇_α L_val(w', α) − ξ · ∇²_{α,w} L_train(w, α) · (c ⊙ ∇_{w'} L_val(w', α))

with the Hessian-vector product taken by central finite differences,
(∇_α L_train(w + ε z, α) − ∇_α L_train(w − ε z, α)) / 2ε, z = c ⊙ ∇_{w'} L_val, ε = r / ‖z‖
(DARTS' r = 0.01; no double backward is needed, which fused attention kernels lack).

Every forward of one step sees the same random draws (dropout masks, the GDAS sample): the
generators are reset to their state at the start of the step before each, so the finite
difference compares the same network. The virtual forwards run through
``torch.func.functional_call`` on copies of the weights and buffers, in fp32 whatever the
mixed-precision setting; the first-order step runs under autocast when ``amp_dtype`` is given.
Under DDP the gradients behind the virtual step and its direction are averaged over ranks, so
every rank unrolls the same w'.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from darts_video.errors import ConfigError
from darts_video.supernet.supernet import Supernet

Batch = tuple[Tensor, Tensor]  # (clips (N, C, T, H, W), labels (N,))
SECOND_ORDER_OPTIMIZERS = (torch.optim.SGD, torch.optim.AdamW)


def beta_decay(alphas: Tensor) -> Tensor:
    """β-DARTS' regulariser: the mean log-sum-exp of each decision's logits. Penalising it keeps
    the logits from growing apart, which delays collapse onto parameter-free operations."""
    return torch.logsumexp(alphas, dim=-1).mean()


class _SameDraws:
    """Remembers every generator a forward draws from (CPU, CUDA, the supernet's GDAS generator)
    and puts them back, so that several forwards see the same dropout masks and samples."""

    def __init__(self, model: Supernet, device: torch.device) -> None:
        self.model, self.cuda = model, device.type == "cuda"
        self.states = (torch.get_rng_state(), torch.cuda.get_rng_state(device) if self.cuda else None, model.generator.get_state())
        self.device = device

    def reset(self) -> None:
        cpu, cuda, gdas = self.states
        torch.set_rng_state(cpu)
        if self.cuda:
            torch.cuda.set_rng_state(cuda, self.device)
        self.model.generator.set_state(gdas)


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
        amp_dtype: torch.dtype | None = None,
    ) -> None:
        if order not in (1, 2):
            raise ConfigError(f"order must be 1 or 2, got {order}")
        if order == 2 and not isinstance(weight_optimizer, SECOND_ORDER_OPTIMIZERS):
            raise ConfigError(f"second order unrolls the weights' own step, known for SGD and AdamW only, not {type(weight_optimizer).__name__}")
        self.model, self.weight_optimizer, self.order = model, weight_optimizer, order
        self.beta_decay_weight, self.loss_fn, self.amp_dtype = beta_decay_weight, loss_fn, amp_dtype
        self.radius = finite_difference_radius
        self.optimizer = torch.optim.Adam(model.arch_parameters(), lr=lr, betas=betas, weight_decay=weight_decay)

    def step(self, train_batch: Batch, val_batch: Batch, weight_lr: float) -> tuple[float, Tensor]:
        """One update of α and β; returns the architecture loss on ``val_batch`` and α's gradient
        (K, num_ops), averaged over ranks."""
        arch = self.model.arch_parameters()
        if self.order == 1:
            device = val_batch[0].device
            with torch.autocast(device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
                loss = self._arch_loss(self.loss_fn(self.model(val_batch[0]).float(), val_batch[1]))
            grads = list(torch.autograd.grad(loss, arch))
        else:
            loss, grads = self.second_order_gradients(train_batch, val_batch, weight_lr)
        grads = _average_across_ranks(grads)
        for parameter, grad in zip(arch, grads):
            parameter.grad = grad
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item(), grads[0].detach()

    def _arch_loss(self, loss: Tensor) -> Tensor:
        if self.beta_decay_weight:
            return loss + self.beta_decay_weight * beta_decay(self.model.arch.alphas)
        return loss

    def second_order_gradients(self, train_batch: Batch, val_batch: Batch, xi: float) -> tuple[Tensor, list[Tensor]]:
        """The unrolled gradient of the module docstring, for α and β (this rank's; not averaged)."""
        weights = {name: p for name, p in self.model.named_parameters() if not name.startswith("arch.")}
        names = list(weights)
        arch = self.model.arch_parameters()
        buffers = {name: b.clone() for name, b in self.model.named_buffers()}
        draws = _SameDraws(self.model, train_batch[0].device)

        def loss_at(new_weights: dict[str, Tensor], batch: Batch) -> Tensor:
            draws.reset()
            logits = functional_call(self.model, {**new_weights, **buffers}, (batch[0],), strict=False)
            return self.loss_fn(logits, batch[1])

        train_grads = torch.autograd.grad(loss_at(weights, train_batch), list(weights.values()), allow_unused=True)
        train_grads = _average_across_ranks([g if g is not None else torch.zeros_like(w) for g, w in zip(train_grads, weights.values())])
        unrolled, scale = self._virtual_step(weights, train_grads, xi)
        val_loss = self._arch_loss(loss_at(unrolled, val_batch))
        grads = torch.autograd.grad(val_loss, [unrolled[n] for n in names] + arch, allow_unused=True)
        grads = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, [unrolled[n] for n in names] + arch)]
        direction = _average_across_ranks([c * g for c, g in zip(scale, grads[: len(names)])])
        arch_grads = grads[len(names):]
        epsilon = self.radius / torch.cat([d.flatten() for d in direction]).norm().clamp_min(1e-12)
        shifted = []
        for sign in (1, -1):
            moved = {n: (weights[n] + sign * epsilon * d).detach() for n, d in zip(names, direction)}
            at = torch.autograd.grad(loss_at(moved, train_batch), arch, allow_unused=True)
            shifted.append([g if g is not None else torch.zeros_like(p) for g, p in zip(at, arch)])
        hessian_vector = [(plus - minus) / (2 * epsilon) for plus, minus in zip(*shifted)]
        return val_loss.detach(), [g - xi * h for g, h in zip(arch_grads, hessian_vector)]

    def _virtual_step(self, weights: dict[str, Tensor], grads: list[Tensor], xi: float) -> tuple[dict[str, Tensor], list[Tensor]]:
        """w' (detached from w, as DARTS does) and c = −∂w'/∂g / ξ per weight (module docstring)."""
        group_of = {id(p): group for group in self.weight_optimizer.param_groups for p in group["params"]}
        unrolled, scale = {}, []
        for (name, w), g in zip(weights.items(), grads):
            group, state = group_of[id(w)], self.weight_optimizer.state.get(w, {})
            decay = group.get("weight_decay", 0.0)
            if isinstance(self.weight_optimizer, torch.optim.AdamW):
                beta1, beta2 = group["betas"]
                t = float(state["step"]) if "step" in state else 0.0
                m = state.get("exp_avg", torch.zeros_like(w))
                v_hat = state["exp_avg_sq"] / (1 - beta2**t) if t > 0 else g.detach() ** 2
                c = (1 - beta1) / (1 - beta1 ** (t + 1)) / (v_hat.sqrt() + group["eps"])
                update = decay * w + (beta1 * m / (1 - beta1 ** (t + 1))) / (v_hat.sqrt() + group["eps"]) + c * g
            else:
                c = torch.ones_like(w)
                update = g + decay * w
                buffer = state.get("momentum_buffer")
                if buffer is not None:
                    update = update + group.get("momentum", 0.0) * buffer
            unrolled[name] = (w - xi * update).detach().requires_grad_()
            scale.append(c)
        return unrolled, scale


def _average_across_ranks(grads: list[Tensor]) -> list[Tensor]:
    """Under DDP every rank must take the same architecture step: average the gradients."""
    if dist.is_available() and dist.is_initialized():
        for grad in grads:
            dist.all_reduce(grad, op=dist.ReduceOp.SUM)
            grad /= dist.get_world_size()
    return grads
