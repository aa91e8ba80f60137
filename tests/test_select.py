"""Selectors: perturbation picks the operation a task needs, with evidence; α's evidence from gradients;
masks switch candidates off exactly; scoring a cell's path."""

import random

import pytest
import torch
import torch.nn.functional as F

from helpers import FeatureBackbone, temporal_mean_task
from darts_video.backbones import create_backbone
from darts_video.ops import OpConfig
from darts_video.space import SearchSpace
from darts_video.supernet import CandidateMask, Supernet
from darts_video.supernet.select import (CellsEffect, GradientEvidence, beyond_noise, cells_effect, genotype_mask, path_accuracy,
                                         per_clip_scores, select_argmax, select_by_perturbation)

OPS = ["identity", "dot_spatial_softmax", "dot_temporal_softmax", "dot_spatiotemporal_softmax", "map_spatial_softmax",
       "map_temporal_sigmoid", "dot_spatial_linear"]


def negative_squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(outputs - targets).pow(2).mean(dim=(1, 2, 3, 4))


def trained_mixture(seed: int, steps: int = 150) -> Supernet:
    """A one-node supernet whose weights (not α: it stays uniform) learnt x -> x + mean_t(x)."""
    torch.manual_seed(seed)
    space = SearchSpace.from_patterns(OPS, num_nodes=1, op_config=OpConfig(reduction=1))
    net = Supernet(FeatureBackbone(8), space)
    optimizer = torch.optim.Adam(net.weight_parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, target = temporal_mean_task(generator)
        loss = F.mse_loss(net(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net


@pytest.mark.parametrize("seed", [0, 1])
def test_perturbation_picks_the_one_operation_the_task_needs_and_says_it_is_supported(seed):
    """Only dot_temporal_softmax can compute x + mean_t(x) here (its attention can be uniform over time; the
    linear temporal form could too, through its biases, so it is not a candidate).
    α stays uniform here, so argmax α would pick at random (1 in 7 per seed): a selector that did not
    measure the trained supernet fails this test."""
    net = trained_mixture(seed)
    generator = torch.Generator().manual_seed(100 + seed)
    batches = [temporal_mean_task(generator) for _ in range(4)]
    nodes, decisions = select_by_perturbation(net, batches, metric=negative_squared_error)
    assert nodes[0].op.name == "dot_temporal_softmax"
    (decision,) = decisions
    assert decision.chosen == "dot_temporal_softmax" and decision.supported and decision.margin > 2 * decision.margin_stderr
    effects = {name: score["effect"] for name, score in decision.scores.items()}
    assert max(effects, key=effects.get) == "dot_temporal_softmax"
    assert net.mask.ops == ((net.space.ops.index(nodes[0].op),),)  # the node is fixed to its choice


def test_bypassing_the_cells_leaves_the_backbone_alone_and_puts_them_back():
    net = trained_mixture(0, steps=20)
    x, _ = temporal_mean_task(torch.Generator().manual_seed(5))
    with torch.no_grad():
        before = net(x)
        with net.cells_bypassed():
            assert torch.equal(net(x), x)  # FeatureBackbone without its cell is the identity
            assert not any(isinstance(m, type(net.cells[0])) for m in net.backbone.modules())
        assert torch.equal(net(x), before) and net.backbone.body.attention is net.cells[0]


@pytest.mark.parametrize("trained", [True, False])
def test_the_cells_effect_is_supported_once_the_supernet_uses_its_cells_and_zero_while_they_are_the_identity(trained):
    """Fresh, the cells are exactly the identity (zero-initialised sink scale): bypassing them
    changes nothing. Trained on x -> x + mean_t(x), the cell carries the answer."""
    torch.manual_seed(0)
    net = trained_mixture(0) if trained else Supernet(FeatureBackbone(8), SearchSpace.from_patterns(OPS, num_nodes=1, op_config=OpConfig(reduction=1)))
    generator = torch.Generator().manual_seed(7)
    effect = cells_effect(net, [temporal_mean_task(generator) for _ in range(4)], metric=negative_squared_error)
    assert effect.clips == 64
    if trained:
        assert effect.supported and effect.points > 5 * effect.stderr > 0
    else:
        assert (effect.points, effect.stderr, effect.supported) == (0.0, 0.0, False)
    assert CellsEffect.from_dict(effect.to_dict()) == effect and ("NOT" in effect.describe()) != trained


def test_support_counts_the_clips_not_the_candidates(monkeypatch):
    """Removing the attention costs 20 points on 1 clip in 5 of 100: far beyond noise over 100 paired
    clips. A support test that took the number of candidates (2) as its sample size would need a
    margin of 12.7 standard errors and call it noise."""
    import darts_video.supernet.select as select

    space = SearchSpace.from_patterns(["identity", "dot_temporal_softmax"], num_nodes=1, op_config=OpConfig(reduction=1))
    net = Supernet(FeatureBackbone(8), space)
    attention = space.ops.index(next(op for op in space.ops if op.name == "dot_temporal_softmax"))
    lost = (torch.arange(100) % 5 == 0).double()

    def scores(net, batches, mask, metric):
        return 1 - lost if attention not in mask.ops[0] else torch.ones(100, dtype=torch.float64)

    monkeypatch.setattr(select, "per_clip_scores", scores)
    (node,), (decision,) = select_by_perturbation(net, [])
    assert node.op.name == "dot_temporal_softmax" and decision.margin == pytest.approx(20.0)
    assert decision.margin_stderr == pytest.approx(100 * lost.std().item() / 10) and decision.supported


def test_per_clip_scores_switch_candidates_off_exactly_and_keep_the_batch_norm_statistics():
    torch.manual_seed(0)
    space = SearchSpace.from_patterns(OPS, num_nodes=2)
    net = Supernet(create_backbone("tiny"), space)
    for cell in net.cells:
        torch.nn.init.normal_(cell.sink.norm.weight)
    clips, labels = torch.randn(6, 3, 4, 16, 16), torch.arange(6) % 8
    before = {name: b.clone() for name, b in net.named_buffers()}
    only_identity = CandidateMask.full(space).with_ops(1, [0]).with_ops(2, [0])
    scores = per_clip_scores(net, [(clips, labels)], only_identity, metric=lambda out, _: out[:, 0])
    # identity at both nodes: the same as a mixture whose α puts all weight on the identity
    with torch.no_grad():
        net.arch.alphas.fill_(-1e4)
        net.arch.alphas[:, 0] = 0
    expected = per_clip_scores(net, [(clips, labels)], CandidateMask.full(space), metric=lambda out, _: out[:, 0])
    assert torch.allclose(scores, expected, atol=1e-5)
    assert all(torch.equal(before[name], b) for name, b in net.named_buffers())
    assert net.training and net.mask == CandidateMask.full(space)


def test_a_cells_path_score_uses_only_its_operations():
    torch.manual_seed(0)
    space = SearchSpace.from_patterns(OPS, num_nodes=3)
    genotype = space.sample(random.Random(3))
    mask = genotype_mask(space, genotype)
    for number, node in enumerate(genotype.nodes, start=1):
        assert mask.ops[number - 1] == (space.ops.index(node.op),) and mask.inputs[number - 1] == (node.input,)
    net = Supernet(create_backbone("tiny"), space)
    accuracy = path_accuracy(net, [(torch.randn(4, 3, 4, 16, 16), torch.tensor([0, 1, 2, 3]))], genotype)
    assert accuracy in (0.0, 25.0, 50.0, 75.0, 100.0)


def test_gradient_evidence_is_the_paired_mean_and_standard_error_of_the_recorded_gradients():
    evidence = GradientEvidence(num_nodes=1, num_ops=3)
    rows = [[0.0, 1.0, 2.0], [1.0, 1.5, 1.0], [-1.0, 2.5, 0.0], [0.0, 3.0, 1.0]]
    for row in rows:
        evidence.add(torch.tensor([row]))
    mean, stderr = evidence.preference(1, chosen=0, other=1)
    differences = torch.tensor([r[1] - r[0] for r in rows], dtype=torch.float64)  # 1, 0.5, 3.5, 3
    assert mean == pytest.approx(differences.mean().item())
    assert stderr == pytest.approx((differences.std() / 2).item())
    restored = GradientEvidence(1, 3)
    restored.load_state_dict(evidence.state_dict())
    assert restored.preference(1, 0, 1) == (mean, stderr)


def test_argmax_evidence_is_supported_only_when_the_gradients_consistently_favour_the_choice():
    space = SearchSpace.from_patterns(OPS[:3], num_nodes=1)
    net = Supernet(create_backbone("tiny"), space)
    with torch.no_grad():
        net.arch.alphas[0] = torch.tensor([0.0, 0.3, 0.1])
    consistent, noisy = GradientEvidence(1, 3), GradientEvidence(1, 3)
    for step in range(20):
        consistent.add(torch.tensor([[0.1, -0.2 + 0.01 * (step % 3), 0.05]]))  # op 1 keeps being pushed up
        noisy.add(torch.tensor([[0.0, (-1.0) ** step, 0.0]]))
    nodes, (decision,) = select_argmax(net.arch, consistent)
    assert nodes[0].op.name == OPS[1] and decision.runner_up == OPS[2] and decision.supported
    assert decision.margin == pytest.approx((net.arch.op_probabilities()[0, 1] - net.arch.op_probabilities()[0, 2]).item())
    assert not select_argmax(net.arch, noisy)[1][0].supported
    assert not select_argmax(net.arch)[1][0].supported  # no gradients, no support


def test_beyond_noise_uses_the_student_t_bound():
    assert beyond_noise(2.0, 0.5, 100) and not beyond_noise(0.9, 0.5, 100)
    assert not beyond_noise(3.0, 1.0, 3)  # t(0.975, 2) = 4.30
    assert beyond_noise(1.0, 0.0, 10) and not beyond_noise(0.0, 0.0, 10) and not beyond_noise(5.0, 1.0, 1)
