"""The weights' optimiser and schedule (timm's factories): what decays, and the rate per step."""

import itertools

import pytest
import torch
from torch import nn

from darts_video.engine.optim import create_schedule, create_weight_optimizer
from darts_video.models import create_model


@pytest.mark.parametrize("name, baseline", list(itertools.product(["sgd", "adamw"], ["cell", "nonlocal"])))
def test_norm_weights_biases_and_the_sinks_zero_init_scale_are_not_decayed(name, baseline):
    """Decaying the sink's scale would pull every inserted cell back to the identity over a long
    SGD schedule (PySlowFast: lr 0.1, decay 1e-4); decaying norms and biases is what PySlowFast and
    timm avoid. A factory that put every parameter in one decayed group fails here."""
    model = create_model("tiny", 8, genotype="non_local") if baseline == "cell" else create_model("tiny", 8, baseline="nonlocal")
    optimizer = create_weight_optimizer(model, name, lr=0.1, weight_decay=1e-4)
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert len(decay) == sum(1 for _ in model.parameters())  # every parameter in exactly one group
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm3d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm))]
    assert norms and all(decay[id(p)] == 0 for m in norms for p in m.parameters())
    scales = [m.sink.norm.weight for m in model.modules() if hasattr(m, "sink")] if baseline == "cell" else []
    assert all(decay[id(p)] == 0 for p in scales) and (baseline != "cell" or scales)
    assert all(decay[id(p)] == 0 for n, p in model.named_parameters() if n.endswith(".bias"))
    convs = [m.weight for m in model.modules() if isinstance(m, (nn.Conv3d, nn.Linear))]
    assert convs and all(decay[id(p)] == 1e-4 for p in convs)


def test_the_schedule_warms_up_linearly_then_follows_a_cosine_to_its_floor():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = create_schedule(optimizer, total_steps=110, warmup_steps=10, lr_min=0.0)
    rates = []
    for step in range(111):
        schedule.step_update(step)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[0] == pytest.approx(0.1) and rates[5] == pytest.approx(0.1 + 0.9 * 5 / 10)
    assert rates[10] == pytest.approx(1.0) and rates[60] == pytest.approx(0.5) and rates[110] == pytest.approx(0.0, abs=1e-9)
