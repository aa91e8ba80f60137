"""Memory that scales: recomputed cells give what stored ones give, for less saved memory; the
first-order architecture step runs under autocast, the second order in fp32."""

import pytest
import torch
import torch.nn.functional as F

from darts_video.backbones import create_backbone
from darts_video.space import SearchSpace
from darts_video.supernet import Supernet
from darts_video.supernet.architect import Architect

# every activation of the dot-product family and a map-based one, the identity
SPACE = SearchSpace.from_patterns(["identity", "dot_spatial_softmax", "dot_temporal_linear", "dot_spatiotemporal_sigmoid",
                                   "map_spatial_sigmoid"], num_nodes=3)


def saved_bytes(fn) -> tuple[object, int]:
    """``fn()`` and the bytes autograd saved for backward meanwhile (each storage once)."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = fn()
    return result, sum(storages.values())


def supernet(mode: str, recompute: bool, normalize: bool = False) -> Supernet:
    torch.manual_seed(0)  # the same weights for both; their generators draw the same GDAS cells
    net = Supernet(create_backbone("tiny"), SPACE, points=["stage2", "stage3"], mode=mode, partial_channels=2, recompute=recompute,
                   normalize_candidates=normalize, seed=0)
    for cell in net.cells:
        torch.nn.init.normal_(cell.sink.norm.weight)  # an open cell: α gets gradients through every candidate
    return net


# GDAS runs one candidate per node: recomputing it saves less of the step's total than a mixture
@pytest.mark.parametrize("mode,normalize,saved_ratio", [("darts", False, 0.7), ("darts", True, 0.7), ("pc", False, 0.7), ("gdas", False, 0.9)])
def test_recomputed_cells_give_the_same_loss_and_gradients_and_save_less(mode, normalize, saved_ratio):
    x, y = torch.randn(4, 3, 4, 16, 16), torch.randint(0, 8, (4,))
    results = {}
    for recompute in (False, True):
        net = supernet(mode, recompute, normalize)
        loss, saved = saved_bytes(lambda: F.cross_entropy(net(x), y))
        loss.backward()
        results[recompute] = loss.detach(), {name: p.grad for name, p in net.named_parameters()}, saved
    (stored_loss, stored_grads, stored_saved), (loss, grads, saved) = results[False], results[True]
    assert torch.allclose(loss, stored_loss, rtol=1e-6, atol=1e-7)
    assert stored_grads.keys() == grads.keys()
    for name, grad in stored_grads.items():
        if grad is None:  # a GDAS candidate not drawn: in neither
            assert grads[name] is None, name
            continue
        assert torch.allclose(grads[name], grad, rtol=1e-5, atol=1e-7), name
    assert stored_grads["arch.alphas"].abs().sum() > 0 and stored_grads["arch.betas.2"].abs().sum() > 0
    assert saved < saved_ratio * stored_saved, (saved, stored_saved)  # recomputation really happened


@pytest.mark.parametrize("mode", ["darts", "pc"])
def test_recomputation_gives_the_second_order_architect_the_same_loss_and_alpha_gradient(mode):
    """The second order's virtual weights (functional_call) must be the ones recomputation runs with."""
    batches = [(torch.randn(4, 3, 4, 16, 16), torch.randint(0, 8, (4,))) for _ in range(2)]
    results = []
    for recompute in (False, True):
        net = supernet(mode, recompute)
        architect = Architect(net, torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9), order=2)
        results.append(architect.step(batches[0], batches[1], weight_lr=0.1))
    (stored_loss, stored_gradient), (loss, gradient) = results
    assert loss == pytest.approx(stored_loss, rel=1e-6)
    assert stored_gradient.abs().sum() > 0 and torch.allclose(gradient, stored_gradient, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("order,amp_dtype,expected", [(1, torch.bfloat16, torch.bfloat16), (1, None, torch.float32),
                                                      (2, torch.bfloat16, torch.float32)])
def test_the_first_order_architecture_step_runs_under_autocast_and_the_second_order_in_fp32(order, amp_dtype, expected):
    net = supernet("darts", False)
    seen = []
    net.backbone.stage3.block[0].register_forward_hook(lambda module, args, output: seen.append(output.dtype))  # a backbone conv
    net.cells[0].nodes[0].ops[1].qkv.register_forward_hook(lambda module, args, output: seen.append(output.dtype))  # a candidate's
    architect = Architect(net, torch.optim.SGD(net.weight_parameters(), lr=0.1), order=order, amp_dtype=amp_dtype)
    batch = (torch.randn(2, 3, 4, 16, 16), torch.randint(0, 8, (2,)))
    _, alpha_grad = architect.step(batch, batch, weight_lr=0.1)
    assert seen and set(seen) == {expected}
    assert alpha_grad.dtype == torch.float32 and torch.isfinite(alpha_grad).all() and alpha_grad.abs().sum() > 0
