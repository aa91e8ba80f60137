"""The bilevel step: the second-order gradient against the exact one, what a step may touch, and a
short search that must find the one operation able to fit its task."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from helpers import FeatureBackbone, relative_error, temporal_mean_task
from darts_video.backbones import create_backbone
from darts_video.backbones.tiny import TinyVideoNet
from darts_video.engine.optim import create_weight_optimizer
from darts_video.ops import OpConfig
from darts_video.space import SearchSpace
from darts_video.supernet import Supernet
from darts_video.supernet.select import select_argmax
from darts_video.supernet.architect import Architect, beta_decay
from darts_video.supernet.mixed import MixedCell

SPACE = SearchSpace.from_patterns(["identity", "map_temporal_sigmoid", "dot_temporal_softmax"], num_nodes=2)


def opened_supernet(dtype=torch.float32) -> Supernet:
    """A supernet whose sink scales have moved off zero, as after warm-up, so α matters."""
    torch.manual_seed(0)
    net = Supernet(create_backbone("tiny", num_classes=3), SPACE).to(dtype)
    for cell in (m for m in net.modules() if isinstance(m, MixedCell)):
        torch.nn.init.normal_(cell.sink.norm.weight)
    return net


def batch(seed: int, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(4, 3, 4, 16, 16, generator=generator, dtype=dtype), torch.randint(0, 3, (4,), generator=generator)


class DropoutTiny(TinyVideoNet):
    """The tiny backbone with dropout before its classifier, as I3D, I3D-R50 and S3D have."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stage3(self.stage2(self.stem(x))).mean(dim=(2, 3, 4))
        return self.head(F.dropout(features, p=0.5, training=self.training))


def opened(mode: str = "darts", dropout: bool = False, dtype=torch.float64) -> Supernet:
    torch.manual_seed(0)
    net = Supernet(DropoutTiny(num_classes=3) if dropout else create_backbone("tiny", num_classes=3), SPACE, mode=mode).to(dtype)
    for cell in net.cells:
        torch.nn.init.normal_(cell.sink.norm.weight)
    return net


def weight_optimizer_after_a_step(net: Supernet, name: str, train) -> torch.optim.Optimizer:
    """The weights' optimiser (timm's groups: no decay on 1-D weights) after one real step, so
    that its momentum buffers / moment estimates are what a virtual step must use."""
    optimizer = create_weight_optimizer(net.backbone, name, lr=0.1 if name == "sgd" else 3e-3, weight_decay=3e-4)
    F.cross_entropy(net(train[0]), train[1]).backward()
    optimizer.step()
    optimizer.zero_grad()
    net.arch.alphas.grad = None
    for beta in net.arch.betas:
        beta.grad = None
    return optimizer


def exact_unrolled_gradient(net: Supernet, optimizer: torch.optim.Optimizer, train, val, xi: float, plain_sgd: bool = False):
    """∇_α L_val(w'(α)) by double backward through the optimiser's own update (AdamW: second
    moment fixed), every forward starting from the same generator states. ``plain_sgd``: the
    old, wrong unroll, w' = w − ξ(g + λw), whatever the optimiser."""
    names = [n for n, _ in net.named_parameters() if not n.startswith("arch.")]
    weights = dict(net.named_parameters())
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    start = (torch.get_rng_state(), net.generator.get_state())
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}

    def loss(params, data):
        torch.set_rng_state(start[0])
        net.generator.set_state(start[1])
        return F.cross_entropy(functional_call(net, {**params, **buffers}, (data[0],)), data[1])

    with sdpa_kernel(SDPBackend.MATH):  # the fused CPU kernel has no double backward
        grads = torch.autograd.grad(loss(weights, train), [weights[n] for n in names], create_graph=True, allow_unused=True)
        unrolled = dict(weights)
        for name, grad in zip(names, grads):
            w = weights[name]
            grad = grad if grad is not None else torch.zeros_like(w)
            state, group = optimizer.state[w], next(g for g in optimizer.param_groups if any(p is w for p in g["params"]))
            if plain_sgd:
                step = grad + decay[id(w)] * w
            elif not state:  # a GDAS candidate the real step did not sample: SGD has no buffer, Adam takes its first step
                first = grad / (grad.detach().abs() + group["eps"]) if isinstance(optimizer, torch.optim.AdamW) else grad
                step = decay[id(w)] * w + first
            elif isinstance(optimizer, torch.optim.AdamW):
                (b1, b2), t = group["betas"], float(state["step"])
                denominator = (state["exp_avg_sq"] / (1 - b2**t)).sqrt() + group["eps"]
                step = decay[id(w)] * w + (b1 * state["exp_avg"] + (1 - b1) * grad) / (1 - b1 ** (t + 1)) / denominator
            else:
                step = grad + decay[id(w)] * w + 0.9 * state["momentum_buffer"]
            unrolled[name] = w - xi * step  # differentiable in alpha through the gradient
        exact = torch.autograd.grad(loss(unrolled, val), net.arch_parameters(), allow_unused=True)
    torch.set_rng_state(start[0])
    net.generator.set_state(start[1])
    return [e if e is not None else torch.zeros_like(p) for e, p in zip(exact, net.arch_parameters())]


@pytest.mark.parametrize("optimizer,mode,dropout", [("sgd", "darts", False), ("adamw", "darts", False), ("adamw", "darts", True),
                                                    ("sgd", "gdas", True), ("adamw", "pc", False)])
def test_second_order_gradient_matches_the_exact_unrolled_gradient(optimizer, mode, dropout):
    """Catches: a virtual step that is not the optimiser's own (AdamW unrolled as plain SGD),
    forwards that draw different dropout masks or GDAS samples, and gdas + second order failing
    on the weights of unsampled candidates."""
    net = opened(mode, dropout)
    train, val = batch(1, torch.float64), batch(2, torch.float64)
    weight_optimizer = weight_optimizer_after_a_step(net, optimizer, train)
    xi = 0.05
    architect = Architect(net, weight_optimizer, order=2, finite_difference_radius=1e-6)
    exact = exact_unrolled_gradient(net, weight_optimizer, train, val, xi)
    _, approximate = architect.second_order_gradients(train, val, xi)
    # GDAS's straight-through gate is not the derivative of its forward (the sink's statistics are
    # held fixed for the gate), so its mixed second derivatives are not symmetric and the finite
    # difference (∇_w of ∇_α) and the double backward (∇_α of ∇_w) part by about 1 %; a different
    # sample in any forward would part them entirely.
    tolerance = 0.05 if mode == "gdas" else 1e-4
    for e, a in zip(exact, approximate):
        assert relative_error(a, e) < tolerance


def test_adamw_second_order_correction_is_adamws_step_not_a_plain_gradient_step():
    """The bug this catches: unrolling AdamW as w − ξ·g, a step orders of magnitude smaller than
    the one AdamW takes, which made second order equal first order at twice the cost."""
    net = opened()
    train, val = batch(1, torch.float64), batch(2, torch.float64)
    weight_optimizer = weight_optimizer_after_a_step(net, "adamw", train)
    xi = 3e-3
    first = torch.autograd.grad(F.cross_entropy(net(val[0]), val[1]), net.arch_parameters())
    adamw = exact_unrolled_gradient(net, weight_optimizer, train, val, xi)
    plain = exact_unrolled_gradient(net, weight_optimizer, train, val, xi, plain_sgd=True)
    _, second = Architect(net, weight_optimizer, order=2, finite_difference_radius=1e-6).second_order_gradients(train, val, xi)
    correction, adamw_correction, plain_correction = (torch.cat([(g - f).flatten() for g, f in zip(x, first)]) for x in (second, adamw, plain))
    assert relative_error(correction, adamw_correction) < 1e-3
    assert plain_correction.norm() < 0.1 * adamw_correction.norm()


def test_repeated_second_order_steps_on_the_same_batch_and_seed_agree_with_dropout():
    net = opened(dropout=True)
    train, val = batch(1, torch.float64), batch(2, torch.float64)
    architect = Architect(net, weight_optimizer_after_a_step(net, "adamw", train), order=2)
    results = []
    for _ in range(3):
        torch.manual_seed(7)
        results.append(architect.second_order_gradients(train, val, 3e-3)[1])
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


def test_second_order_is_refused_for_an_optimiser_it_cannot_unroll():
    net = opened()
    with pytest.raises(ValueError, match="known for SGD and AdamW only, not RMSprop"):
        Architect(net, torch.optim.RMSprop(net.weight_parameters()), order=2)


@pytest.mark.parametrize("order", [1, 2])
def test_an_architecture_step_moves_only_alpha_and_beta(order):
    net = opened_supernet()
    weight_optimizer = torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    Architect(net, weight_optimizer, lr=0.01, order=order).step(batch(1), batch(2), weight_lr=0.1)
    for name, parameter in net.named_parameters():
        assert torch.equal(parameter, before[name]) != name.startswith("arch."), name
    assert all(p.grad is None for p in net.weight_parameters())


def test_bad_order_is_rejected_and_beta_decay_pulls_logits_together():
    net = opened_supernet()
    with pytest.raises(ValueError, match="order must be 1 or 2, got 3"):
        Architect(net, torch.optim.SGD(net.weight_parameters(), lr=0.1), order=3)
    alphas = torch.tensor([[4.0, 0.0, 0.0]], requires_grad=True)
    beta_decay(alphas).backward()
    assert alphas.grad[0, 0] > alphas.grad[0, 1] > 0  # the gradient is softmax: descent lowers the leader most


@pytest.mark.parametrize("mode", ["darts", "gdas", "pc"])
def test_a_short_search_finds_the_one_operation_that_fits_the_task(mode):
    torch.manual_seed(0)
    ops = ["identity", "dot_spatial_softmax", "dot_temporal_softmax", "dot_spatiotemporal_softmax", "map_spatial_softmax"]
    space = SearchSpace.from_patterns(ops, num_nodes=1, op_config=OpConfig(reduction=1))
    net = Supernet(FeatureBackbone(8), space, mode=mode, partial_channels=2)
    weight_optimizer = torch.optim.SGD(net.weight_parameters(), lr=0.05, momentum=0.9)
    architect = Architect(net, weight_optimizer, lr=0.03, loss_fn=F.mse_loss)
    generator = torch.Generator().manual_seed(0)
    arch_losses = []
    # warm-up: the weights first, so the cell is open. GDAS trains one sampled candidate per step,
    # so it needs three times the steps for every candidate to be trained before α moves (with 50,
    # α collapsed onto the identity, which halves the loss untrained, for 2 of 4 sampling seeds).
    warmup = 150 if mode == "gdas" else 50
    for step in range(warmup + 150):
        train, val = temporal_mean_task(generator), temporal_mean_task(generator)
        if step >= warmup:
            arch_losses.append(architect.step(train, val, weight_lr=0.05)[0])
        loss = F.mse_loss(net(train[0]), train[1])
        weight_optimizer.zero_grad()
        loss.backward()
        weight_optimizer.step()
    assert sum(arch_losses[-10:]) < 0.8 * sum(arch_losses[:10])
    probabilities = net.arch.op_probabilities()[0]
    assert select_argmax(net.arch)[0][0].op.name == "dot_temporal_softmax"
    assert probabilities.max() > 0.5, probabilities
