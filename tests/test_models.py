"""create_model: every registered backbone bare, with non-local blocks, and with searched cells."""

from __future__ import annotations

import itertools

import pytest
import torch

from darts_video import create_model
from darts_video.backbones import create_backbone, list_backbones
from darts_video.backbones.pretrained import PretrainedWeightsError
from darts_video.cell import Cell
from darts_video.genotype import Genotype, Node, get_genotype
from darts_video.ops import NonLocalBlock, OpConfig, OpSpec

CLIP = {"tiny": (2, 3, 8, 32, 32), "i3d": (2, 3, 8, 32, 32), "s3d": (2, 3, 8, 32, 32), "i3d_r50": (2, 3, 4, 32, 32)}
ARMS = {"bare": {}, "nonlocal": {"baseline": "nonlocal"}, "cell": {"genotype": "divided_space_time"}}


def test_every_registered_backbone_has_a_test_clip_size() -> None:
    assert set(list_backbones()) == set(CLIP)


@pytest.mark.parametrize("backbone, arm", list(itertools.product(sorted(CLIP), ARMS)))
def test_forward_backward_and_identity_at_init(backbone: str, arm: str) -> None:
    torch.manual_seed(0)
    bare = create_model(backbone, num_classes=5).eval()
    torch.manual_seed(0)  # the backbone is built first, so it gets the same weights
    model = create_model(backbone, num_classes=5, **ARMS[arm]).eval()
    clip = torch.randn(CLIP[backbone])
    with torch.no_grad():
        assert torch.equal(model(clip), bare(clip))  # inserted blocks start as the identity
    model.train()
    logits = model(clip)
    assert logits.shape == (CLIP[backbone][0], 5)
    logits.logsumexp(dim=1).sum().backward()
    inserted = [m for m in model.modules() if isinstance(m, (Cell, NonLocalBlock))]
    assert len(inserted) == (0 if arm == "bare" else len(model.default_insertion_points()))
    for block in inserted:  # the zero-scale sink passes gradient to its own scale
        assert block.sink.norm.weight.grad.abs().sum() > 0 if isinstance(block, Cell) else block.bn.weight.grad.abs().sum() > 0


def test_cells_at_each_point_have_their_own_weights() -> None:
    model = create_model("tiny", num_classes=8, genotype="non_local", points=["stage2", "stage3"])
    cells = [m for m in model.modules() if isinstance(m, Cell)]
    assert [c.sink.proj.in_channels for c in cells] == [32, 64]
    assert cells[0].sink.proj.weight.data_ptr() != cells[1].sink.proj.weight.data_ptr()


def test_genotype_from_a_file_equals_the_named_one(tmp_path) -> None:
    path = get_genotype("divided_space_time").save(tmp_path / "cell.json")
    torch.manual_seed(0)
    from_file = create_model("tiny", num_classes=8, genotype=path)
    torch.manual_seed(0)
    from_name = create_model("tiny", num_classes=8, genotype="divided_space_time")
    assert all(torch.equal(a, b) for a, b in zip(from_file.state_dict().values(), from_name.state_dict().values()))


def test_a_cell_that_does_not_fit_names_the_point_and_channels() -> None:
    heads = Genotype([Node(0, OpSpec("dot", "spatial", "softmax"))], sink=(1,), op_config=OpConfig(reduction=2, heads=3))
    with pytest.raises(ValueError, match="does not fit tiny at stage2 \\(32 channels\\).*multiple of heads = 3"):
        create_model("tiny", num_classes=8, genotype=heads)


@pytest.mark.parametrize("kwargs, message", [
    ({"points": ["res9.0"]}, "i3d_r50 has no insertion point res9.0; available: res2.0, "),
    ({"baseline": "gcnet"}, "unknown baseline 'gcnet'"),
    ({"baseline": "nonlocal", "genotype": "non_local"}, "not both"),
])
def test_bad_requests_are_refused_before_building(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_model("i3d_r50", num_classes=8, **kwargs)


@pytest.mark.parametrize("backbone", ["i3d", "i3d_r50", "s3d"])
def test_pretrained_weights_from_a_file_are_those_of_the_torchvision_model(backbone: str, tmp_path) -> None:
    """The offline path of --pretrained: a state dict of the torchvision network, saved to disk."""
    from darts_video.backbones.i3d import googlenet_2d
    from darts_video.backbones.i3d_r50 import resnet50_2d
    from torchvision.models.video import s3d

    torch.manual_seed(1)
    source = {"i3d": lambda: googlenet_2d(1000), "i3d_r50": lambda: resnet50_2d(1000), "s3d": lambda: s3d()}[backbone]()
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    torch.manual_seed(2)
    loaded = create_backbone(backbone, num_classes=7, pretrained=str(tmp_path / "weights.pt"))
    fresh = create_backbone(backbone, num_classes=7)
    first_conv = next(name for name, p in loaded.named_parameters() if p.dim() == 5)
    source_conv = next(p for p in source.parameters() if p.dim() >= 4)
    loaded_conv = dict(loaded.named_parameters())[first_conv]
    torch.testing.assert_close(loaded_conv.sum(dim=2) if source_conv.dim() == 4 else loaded_conv, source_conv)
    assert not torch.equal(loaded_conv, dict(fresh.named_parameters())[first_conv])
    assert dict(loaded.named_parameters())[next(reversed(dict(loaded.named_parameters())))].shape[0] == 7  # new head


def test_pretrained_weights_that_do_not_fit_name_the_keys(tmp_path) -> None:
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(PretrainedWeightsError, match="other.pt does not fit ResNet: missing \\['bn1.weight'"):
        create_backbone("i3d_r50", pretrained=str(tmp_path / "other.pt"))
    with pytest.raises(PretrainedWeightsError, match="missing.pt does not exist"):
        create_backbone("i3d_r50", pretrained=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="tiny backbone has no published pretrained weights"):
        create_backbone("tiny", pretrained=True)


def test_unreachable_torchvision_weights_say_how_to_load_them_offline(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: torchvision must download
    monkeypatch.setattr("torch.hub.download_url_to_file", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("network unreachable")))
    with pytest.raises(PretrainedWeightsError, match="could not get .*resnet50-0676ba61.pth.*network unreachable.*--pretrained PATH"):
        create_backbone("i3d_r50", pretrained=True)
