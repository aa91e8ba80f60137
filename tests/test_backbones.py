"""Backbones: registry, shapes, insertion points, identity at init, the tiny net's receptive field."""

import pytest
import torch

from darts_video.backbones import TinyVideoNet, create_backbone, list_backbones
from darts_video.cell import Cell
from darts_video.genotype import get_genotype
from darts_video.ops import NonLocalBlock


def test_registry_builds_by_name_and_lists_names_on_error():
    assert "tiny" in list_backbones()
    assert isinstance(create_backbone("tiny", num_classes=5), TinyVideoNet)
    with pytest.raises(KeyError, match="unknown backbone 'i3d_r101'; registered: .*tiny"):
        create_backbone("i3d_r101")


@pytest.mark.parametrize("shape", [(2, 3, 8, 32, 32), (1, 3, 1, 32, 32), (3, 3, 5, 17, 23)])
def test_tiny_net_classifies_clips_of_any_size(shape):
    model = create_backbone("tiny", num_classes=8)
    logits = model(torch.randn(shape))
    assert logits.shape == (shape[0], 8)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert 60_000 < sum(p.numel() for p in model.parameters()) < 80_000


@pytest.mark.parametrize("block", ["cell", "non_local"])
def test_inserted_blocks_are_the_identity_at_init_at_every_point(block):
    model = create_backbone("tiny").eval()
    x = torch.randn(2, 3, 8, 32, 32)
    bare = model(x)
    for point, channels in model.insertion_points().items():
        model.insert(point, Cell(get_genotype("divided_space_time"), channels) if block == "cell" else NonLocalBlock(channels))
    assert torch.equal(model(x), bare)
    assert {"stage2.attention", "stage3.attention"} <= {name for name, _ in model.named_modules()}


def test_unknown_insertion_point_names_the_available_ones():
    with pytest.raises(KeyError, match="TinyVideoNet has no insertion point 'stage4'; available: stage2, stage3"):
        create_backbone("tiny").insert("stage4", torch.nn.Identity())


def input_support(model: TinyVideoNet) -> torch.Tensor:
    """Which input (t, y, x) positions the stage3 feature at the centre depends on."""
    model.eval()
    x = torch.randn(1, 3, 8, 32, 32, requires_grad=True)
    features = model.stage3(model.stage2(model.stem(x)))  # (1, 64, 8, 8, 8)
    features[0, :, 4, 4, 4].sum().backward()
    return (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero()


def test_bare_receptive_field_is_15_px_and_5_frames_so_long_range_pairs_are_out_of_reach():
    support = input_support(create_backbone("tiny"))
    extent = support.max(0).values - support.min(0).values + 1
    assert extent.tolist() == [5, 15, 15]


def test_a_space_time_cell_lets_every_position_see_the_whole_clip():
    model = create_backbone("tiny")
    cell = Cell(get_genotype("non_local"), model.insertion_points()["stage2"])
    torch.nn.init.ones_(cell.sink.norm.weight)  # a trained cell: its output no longer zero
    model.insert("stage2", cell)
    assert len(input_support(model)) == 8 * 32 * 32
