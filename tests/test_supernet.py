"""Mixed ops and cells, the supernet's parameters, GDAS sampling, PC-DARTS, masks, α's argmax."""

import itertools
import math
import random

import pytest
import torch

from darts_video.backbones import create_backbone
from darts_video.cell import Cell, Sink
from darts_video.genotype import Genotype
from darts_video.ops import OpConfig
from darts_video.space import SearchSpace
from darts_video.supernet import ArchWeights, MixedOp, Supernet
from darts_video.supernet.select import select_argmax
from darts_video.supernet.diagnostics import collapse_diagnostics, parameter_free_ops
from darts_video.supernet.mixed import MixedCell, channel_shuffle, gated_sink

SMALL_SPACE = SearchSpace.from_patterns(["identity", "dot_*_softmax", "map_spatial_*"], num_nodes=3)


def test_mixed_op_is_the_hand_computed_weighted_sum():
    mixed = MixedOp(SMALL_SPACE.ops, 8, OpConfig())
    x = torch.randn(2, 8, 4, 6, 6)
    weights = torch.rand(len(SMALL_SPACE.ops)).softmax(0)
    expected = torch.zeros_like(x)
    for w, op in zip(weights, mixed.ops):
        expected += w * op(x)
    assert torch.allclose(mixed(x, weights), expected, atol=1e-6)


def test_gated_sink_keeps_the_value_and_gives_the_gate_the_gradient_batch_norm_takes_away():
    sink = Sink(1, 8)
    torch.nn.init.normal_(sink.norm.weight)
    output = torch.randn(4, 8, 2, 3, 3)
    gate = torch.ones((), requires_grad=True)

    plain = sink([gate * output])
    (plain_grad,) = torch.autograd.grad(plain.pow(3).sum(), gate)
    gated = gated_sink(sink, [output], [gate])
    (gated_grad,) = torch.autograd.grad(gated.pow(3).sum(), gate)
    assert torch.allclose(gated, plain, atol=1e-6)
    assert abs(plain_grad) < 1e-3 * abs(gated_grad)  # batch statistics rescale the gate away

    projected = sink.proj(output)  # the gate's gradient is its contribution at fixed statistics
    sigma = torch.sqrt(projected.var(dim=(0, 2, 3, 4), unbiased=False) + sink.norm.eps)
    contribution = (sink.norm.weight / sigma).view(1, -1, 1, 1, 1) * projected
    assert torch.allclose(gated_grad, (3 * plain.pow(2) * contribution).sum(), rtol=1e-4)

    sink.eval()  # with fixed statistics the plain sink's gradient is the same
    (plain_grad,) = torch.autograd.grad(sink([gate * output]).pow(3).sum(), gate)
    (gated_grad,) = torch.autograd.grad(gated_sink(sink, [output], [gate]).pow(3).sum(), gate)
    assert torch.allclose(gated_grad, plain_grad, rtol=1e-5)


def one_hot_weights(space: SearchSpace, genotype: Genotype, sampled: bool = False) -> ArchWeights:
    """The genotype's path as mixing weights; ``sampled``: as a GDAS draw, else as a masked mixture."""
    ops = torch.zeros(space.num_nodes, len(space.ops))
    inputs = [torch.zeros(len(space.candidate_inputs(i))) for i in range(1, space.num_nodes + 1)]
    active_ops, active_inputs = [], []
    for number, node in enumerate(genotype.nodes, start=1):
        active_ops.append((space.ops.index(node.op),))
        active_inputs.append((space.candidate_inputs(number).index(node.input),))
        ops[number - 1, active_ops[-1][0]] = 1
        inputs[number - 1][active_inputs[-1][0]] = 1
    return ArchWeights(ops, inputs, tuple(active_ops), tuple(active_inputs), sampled)


@pytest.mark.parametrize("seed,connections,sampled", list(itertools.product(range(4), ("dense", "chain"), (False, True))))
def test_one_hot_mixed_cell_equals_the_discrete_cell_of_its_genotype(seed, connections, sampled):
    space = SearchSpace(SMALL_SPACE.ops, num_nodes=3, connections=connections)
    genotype = space.sample(random.Random(seed))
    mixed = MixedCell(space, 8).eval()
    torch.nn.init.normal_(mixed.sink.norm.weight)
    discrete = Cell(genotype, 8).eval()
    for number, node in enumerate(genotype.nodes):
        discrete.ops[number].load_state_dict(mixed.nodes[number].ops[space.ops.index(node.op)].state_dict())
    discrete.sink.load_state_dict(mixed.sink.state_dict())
    x = torch.randn(2, 8, 4, 6, 6)
    assert torch.allclose(mixed(x, one_hot_weights(space, genotype, sampled)), discrete(x), atol=1e-5)


def test_supernet_parameters_split_into_disjoint_architecture_and_weight_lists():
    net = Supernet(create_backbone("tiny"), SMALL_SPACE, points=["stage2", "stage3"])
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert {id(p) for p in arch}.isdisjoint({id(p) for p in weights})
    assert len(arch) + len(weights) == len(list(net.parameters()))
    state = net.state_dict()
    assert state["arch.alphas"].shape == (3, len(SMALL_SPACE.ops)) and "arch.betas.2" in state
    cells = [m for m in net.modules() if isinstance(m, MixedCell)]
    assert len(cells) == 2 and cells == net.cells  # one searched cell (one α, β), weights per position


@pytest.mark.parametrize("mode", ["darts", "gdas", "pc"])
def test_fresh_supernet_is_the_bare_backbone_and_alpha_gets_the_true_gradient_once_the_cell_opens(mode):
    """DARTS / PC-DARTS: the α and β gradients are the loss's derivative (a central finite
    difference along a random direction, float64), and a small step against them lowers the loss.
    GDAS: the gradient is the straight-through one, the loss's gradient at the drawn one-hot
    weights carried back through that draw's soft sample, and the forward is the drawn cell's.
    Breaks if part of the mixing (a candidate, an input, PC's partial channels) is detached or
    weighed with other weights than the ones differentiated, if a gradient's sign or scale is wrong,
    or if GDAS runs another cell than the one it differentiates."""
    torch.manual_seed(0)
    backbone = create_backbone("tiny")
    bare = create_backbone("tiny")
    bare.load_state_dict(backbone.state_dict())
    net = Supernet(backbone, SMALL_SPACE, mode=mode).eval()
    x = torch.randn(2, 3, 4, 16, 16)
    assert torch.allclose(net(x), bare.eval()(x), atol=1e-6)
    for cell in (m for m in net.modules() if isinstance(m, MixedCell)):
        torch.nn.init.ones_(cell.sink.norm.weight)
    net, x = net.double(), x.double()
    with torch.no_grad():  # α and β away from the uniform start, where every candidate looks alike
        draws = torch.Generator().manual_seed(1)
        for parameter in net.arch_parameters():
            parameter.normal_(generator=draws)
    arch = net.arch_parameters()
    loss = lambda weights=None: net(x, weights).pow(2).mean()  # noqa: E731
    start = net.generator.get_state()
    value = loss()
    gradients = torch.autograd.grad(value, arch)
    assert all(g.abs().sum() > 0 for g in gradients[:1] + gradients[2:])  # β of node 1 has one candidate: no gradient
    if mode == "gdas":
        net.generator.set_state(start)
        weights = net.mixing_weights()  # the same draw
        chosen = ArchWeights(weights.ops.detach().requires_grad_(), [w.detach().requires_grad_() for w in weights.inputs],
                             weights.active_ops, weights.active_inputs, sampled=True)
        at_draw = loss(chosen)
        assert torch.equal(at_draw, value)  # the drawn cell ran
        upstream = torch.autograd.grad(at_draw, [chosen.ops, *chosen.inputs])
        expected = torch.autograd.grad([weights.ops, *weights.inputs], arch, upstream, allow_unused=True)
        for got, want in zip(gradients, expected):
            assert torch.allclose(got, torch.zeros_like(got) if want is None else want, rtol=1e-9, atol=1e-12)
        return
    draws = torch.Generator().manual_seed(2)
    direction = [torch.randn(p.shape, generator=draws, dtype=p.dtype) for p in arch]
    eps = 1e-5
    with torch.no_grad():
        shifted = []
        for sign in (1, -1):
            for p, d in zip(arch, direction):
                p.add_(sign * eps * d)
            shifted.append(loss())
            for p, d in zip(arch, direction):
                p.sub_(sign * eps * d)
        finite = (shifted[0] - shifted[1]) / (2 * eps)
        analytic = sum((g * d).sum() for g, d in zip(gradients, direction))
        assert finite.item() == pytest.approx(analytic.item(), rel=1e-5)
        for p, g in zip(arch, gradients):
            p.sub_(1e-3 * g / max(g.norm() for g in gradients))
        assert loss() < value


def test_gdas_samples_one_op_per_node_and_the_same_cell_at_every_position():
    net = Supernet(create_backbone("tiny"), SMALL_SPACE, points=["stage2", "stage3"], mode="gdas")
    seen = []
    net.backbone.stage2.attention.register_forward_pre_hook(lambda module, args: seen.append(module._bound))
    net.backbone.stage3.attention.register_forward_pre_hook(lambda module, args: seen.append(module._bound))
    net(torch.randn(1, 3, 4, 16, 16))
    assert seen[0] is seen[1] and seen[0].sampled
    assert all(cell._bound is None for cell in net.cells)  # bound for that forward only
    assert torch.equal(seen[0].ops.sum(-1), torch.ones(3)) and set(seen[0].ops.unique().tolist()) == {0.0, 1.0}


def test_partial_channels_mix_a_quarter_and_shuffle():
    net = Supernet(create_backbone("tiny"), SMALL_SPACE, mode="pc", partial_channels=4)
    cell = net.backbone.stage2.attention
    assert cell.nodes[0].ops[1].qkv.in_channels == 32 // 4
    assert channel_shuffle(torch.arange(8.0).view(1, 8, 1, 1, 1), 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    with pytest.raises(ValueError, match="partial_channels = 3 must divide the 32 channels"):
        Supernet(create_backbone("tiny"), SMALL_SPACE, mode="pc", partial_channels=3)


@pytest.mark.parametrize(
    "kwargs,message",
    [({"mode": "enas"}, "unknown search mode 'enas'"), ({"points": ["stage9"]}, r"insertion points \['stage9'\] not usable; TinyVideoNet has: stage2, stage3")],
)
def test_bad_supernet_options_are_rejected_before_anything_runs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Supernet(create_backbone("tiny"), SMALL_SPACE, **kwargs)


def test_argmax_takes_the_most_probable_operation_and_input_and_records_the_probabilities():
    net = Supernet(create_backbone("tiny"), SMALL_SPACE)
    with torch.no_grad():
        net.arch.alphas.zero_()
        net.arch.alphas[0, 3] = 5.0
        net.arch.betas[2][1] = 5.0
    nodes, decisions = select_argmax(net.arch)
    assert nodes[0].op == SMALL_SPACE.ops[3] and nodes[2].input == 1
    first = decisions[0]
    assert (first.node, first.kind, first.chosen) == (1, "op", SMALL_SPACE.ops[3].name)
    assert max(first.scores, key=lambda name: first.scores[name]["alpha"]) == SMALL_SPACE.ops[3].name
    node3_input = next(d for d in decisions if d.node == 3 and d.kind == "input")
    assert node3_input.chosen == "1" and node3_input.scores["1"]["beta"] > 0.9


def test_collapse_diagnostics_measure_entropy_and_the_share_of_parameter_free_operations():
    space = SearchSpace.from_patterns(["identity", "dot_temporal_softmax", "map_spatial_sigmoid"], num_nodes=2)
    assert parameter_free_ops(space) == [True, False, False]
    ops = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    scalars = collapse_diagnostics(ops, [torch.ones(1), torch.tensor([0.5, 0.5])], parameter_free_ops(space))
    assert scalars["collapse/op_entropy/node1"] == pytest.approx(math.log(3))
    assert scalars["collapse/op_entropy/node2"] == pytest.approx(0.0, abs=1e-9)
    assert scalars["collapse/op_entropy/mean_relative"] == pytest.approx(0.5)
    assert scalars["collapse/parameter_free/node1"] == pytest.approx(1 / 3) and scalars["collapse/parameter_free/node2"] == 1.0
    assert scalars["collapse/input_entropy/node2"] == pytest.approx(math.log(2)) and "collapse/input_entropy/node1" not in scalars
