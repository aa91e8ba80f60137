"""The bilevel step: the second-order gradient against the exact one, what a step may touch, and a
short search that must find the one operation able to fit its task."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from helpers import FeatureBackbone, relative_error, temporal_mean_task
from darts_video.backbones import create_backbone
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


def test_second_order_gradient_matches_the_exact_unrolled_gradient():
    net = opened_supernet(torch.float64)
    weight_optimizer = torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    train, val = batch(1, torch.float64), batch(2, torch.float64)
    F.cross_entropy(net(train[0]), train[1]).backward()  # a momentum buffer, so the virtual step uses it
    weight_optimizer.step()
    weight_optimizer.zero_grad()
    xi = 0.05
    architect = Architect(net, weight_optimizer, order=2, finite_difference_radius=1e-6)

    names = [n for n, _ in net.named_parameters() if not n.startswith("arch.")]
    weights = dict(net.named_parameters())
    buffers = {n: b.clone() for n, b in net.named_buffers()}

    def loss(params, data):
        return F.cross_entropy(functional_call(net, {**params, **buffers}, (data[0],)), data[1])

    with sdpa_kernel(SDPBackend.MATH):  # the fused CPU kernel has no double backward
        grads = torch.autograd.grad(loss(weights, train), [weights[n] for n in names], create_graph=True)
        unrolled = dict(weights)
        for name, grad in zip(names, grads):
            w = weights[name]
            step = grad + 3e-4 * w + 0.9 * weight_optimizer.state[w]["momentum_buffer"]
            unrolled[name] = w - xi * step  # differentiable in alpha through the gradient
        exact = torch.autograd.grad(loss(unrolled, val), net.arch_parameters())

    _, approximate = architect._second_order_gradients(train, val, xi)
    for e, a in zip(exact, approximate):
        assert relative_error(a, e) < 1e-4


def test_second_order_differs_from_first_order():
    net = opened_supernet(torch.float64)
    architect = Architect(net, torch.optim.SGD(net.weight_parameters(), lr=0.1), order=2)
    _, second = architect._second_order_gradients(batch(1, torch.float64), batch(2, torch.float64), 0.5)
    first = torch.autograd.grad(F.cross_entropy(net(batch(2, torch.float64)[0]), batch(2, torch.float64)[1]), net.arch_parameters())
    assert relative_error(second[0], first[0]) > 1e-3


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
    for step in range(200):
        train, val = temporal_mean_task(generator), temporal_mean_task(generator)
        if step >= 50:  # warm-up: the weights first, so the cell is open
            arch_losses.append(architect.step(train, val, weight_lr=0.05)[0])
        loss = F.mse_loss(net(train[0]), train[1])
        weight_optimizer.zero_grad()
        loss.backward()
        weight_optimizer.step()
    assert sum(arch_losses[-10:]) < 0.8 * sum(arch_losses[:10])
    probabilities = net.arch.op_probabilities()[0]
    assert select_argmax(net.arch)[0][0].op.name == "dot_temporal_softmax"
    assert probabilities.max() > 0.5, probabilities
