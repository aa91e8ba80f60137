"""Clips are standardised with the statistics the backbone's weights expect: declared per weights,
recorded by the run, used in training, at test time (also --eval-only) and inside the export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import GoogLeNet, resnet50

from darts_video.backbones import TinyVideoNet, create_backbone
from darts_video.backbones.statistics import IMAGENET, MINUS_ONE_TO_ONE, PYSLOWFAST, InputStatistics
from darts_video.data import ClipTransform
from darts_video.engine import load_checkpoint, read_run_config
from darts_video.engine.export import load_exported
from darts_video.search import run_search
from darts_video.search_config import SearchConfig
from darts_video.train import evaluate_checkpoint, run_training
from darts_video.train_config import TrainConfig
from tests.helpers import calibrate_batch_norms, relative_error
from tests.test_inflation import static_clip

ODD = InputStatistics((0.3, 0.5, 0.6), (0.2, 0.3, 0.25), "a test's")  # unlike every real set, so a mix-up shows


def uint8_image(seed: int, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (2, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def standardise(image: torch.Tensor, statistics: InputStatistics) -> torch.Tensor:  # (N, 3, H, W) uint8 -> float
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (statistics.mean, statistics.std))
    return (image.float() / 255 - mean) / std


def test_from_scratch_the_statistics_stay_pyslowfasts():
    assert PYSLOWFAST.mean == (0.45,) * 3 and PYSLOWFAST.std == (0.225,) * 3
    assert create_backbone("tiny").input_statistics == PYSLOWFAST
    config = TrainConfig()
    config.resolve_statistics(create_backbone("tiny").input_statistics)
    assert (config.mean, config.std) == ([0.45] * 3, [0.225] * 3)  # the built-in dataset's runs do not change


def test_pretrained_i3d_fed_by_the_pipeline_computes_what_torchvisions_recipe_does(tmp_path):
    """torchvision's GoogLeNet weights: ImageNet-standardised input, converted inside (transform_input).
    Our I3D declares the statistics that give the same logits on a static clip."""
    torch.manual_seed(0)
    googlenet = GoogLeNet(num_classes=10, aux_logits=False, transform_input=True, init_weights=False)
    calibrate_batch_norms(googlenet, standardise(uint8_image(5), IMAGENET))
    torch.save(googlenet.state_dict(), tmp_path / "googlenet.pt")
    video_net = create_backbone("i3d", num_classes=10, pretrained=str(tmp_path / "googlenet.pt")).eval()
    assert video_net.input_statistics == MINUS_ONE_TO_ONE
    image = uint8_image(0)
    clip = ClipTransform().with_statistics(video_net.input_statistics.mean, video_net.input_statistics.std).normalize(static_clip(image, 8))
    with torch.no_grad():
        expected, logits = googlenet(standardise(image, IMAGENET)), video_net(clip)
    assert relative_error(expected[0], expected[1]) > 1e-2  # the logits depend on the input
    assert relative_error(logits, expected) < 1e-3
    with torch.no_grad():  # the statistics used before: PySlowFast's, into the same weights
        wrong = video_net(ClipTransform().normalize(static_clip(image, 8)))
    assert relative_error(wrong, expected) > 1e-2


def test_pretrained_i3d_r50_expects_imagenet_statistics_and_s3d_its_kinetics_ones(tmp_path):
    torch.manual_seed(0)
    resnet = calibrate_batch_norms(resnet50(num_classes=10), standardise(uint8_image(5), IMAGENET))
    torch.save(resnet.state_dict(), tmp_path / "resnet50.pt")
    video_net = create_backbone("i3d_r50", num_classes=10, pretrained=str(tmp_path / "resnet50.pt")).eval()
    assert video_net.input_statistics.mean == IMAGENET.mean and video_net.input_statistics.std == IMAGENET.std
    image = uint8_image(1)
    clip = ClipTransform().with_statistics(video_net.input_statistics.mean, video_net.input_statistics.std).normalize(static_clip(image, 4))
    with torch.no_grad():
        expected = resnet(standardise(image, IMAGENET))
        assert relative_error(expected[0], expected[1]) > 1e-2
        assert relative_error(video_net(clip), expected) < 1e-3  # float sums in another order: not bit-equal
        assert relative_error(video_net(ClipTransform().normalize(static_clip(image, 4))), expected) > 1e-2  # PySlowFast's

    from torchvision.models.video import s3d

    torch.save(s3d().state_dict(), tmp_path / "s3d.pt")
    statistics = create_backbone("s3d", pretrained=str(tmp_path / "s3d.pt")).input_statistics
    assert statistics.mean == pytest.approx((0.43216, 0.394666, 0.37645)) and statistics.std == pytest.approx((0.22803, 0.22145, 0.216989))


def test_mean_and_std_options_override_the_weights_and_are_checked():
    config = TrainConfig(mean=[0.1, 0.2, 0.3], std=[0.4, 0.5, 0.6])
    config.resolve_statistics(IMAGENET)
    assert (config.mean, config.std) == ([0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    with pytest.raises(ValueError, match="--std takes 3 values \\(R G B\\), all positive, got \\[0.1, 0.0, 0.1\\]"):
        TrainConfig(std=[0.1, 0.0, 0.1])


class InputRecorder:
    """Every real (not traced) input of a TinyVideoNet, to check it was standardised with ``statistics``."""

    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []
        self.handle = nn.modules.module.register_module_forward_pre_hook(self.record)

    def record(self, module: nn.Module, args: tuple) -> None:
        if isinstance(module, TinyVideoNet) and not torch.compiler.is_exporting():
            self.inputs.append(args[0].detach()[:2].clone())

    def assert_standardised_with(self, statistics: InputStatistics) -> None:
        assert self.inputs
        mean, std = (torch.tensor(v).view(1, 3, 1, 1, 1) for v in (statistics.mean, statistics.std))
        for clips in self.inputs:  # (B, 3, T, H, W): back to uint8 values, which are whole numbers only with the right statistics
            pixels = (clips * std + mean) * 255
            assert (pixels - pixels.round()).abs().max() < 2e-3 and pixels.min() > -0.01 and pixels.max() < 255.01
        self.inputs.clear()

    def close(self) -> None:
        self.handle.remove()


@pytest.fixture
def recorder(monkeypatch):
    monkeypatch.setattr(TinyVideoNet, "input_statistics", ODD)  # as if the tiny net's weights declared ODD
    recorder = InputRecorder()
    yield recorder
    recorder.close()


def test_training_testing_eval_only_and_export_use_the_weights_statistics(tmp_path, recorder, monkeypatch):
    config = TrainConfig(out=str(tmp_path / "run"), num_clips=32, num_val_clips=16, epochs=1, warmup_epochs=0, batch_size=16,
                         genotype="non_local", device="cpu")
    summary = run_training(config)
    recorder.assert_standardised_with(ODD)  # training steps, validation, the test, the cost report
    run = Path(config.out)
    recorded = read_run_config(run)
    assert (recorded["mean"], recorded["std"]) == (list(ODD.mean), list(ODD.std))
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["input_statistics"] == ODD.as_dict()

    command_line = TrainConfig(**{**recorded, "mean": None, "std": None})  # the same command again: no --mean / --std
    monkeypatch.setattr(TinyVideoNet, "input_statistics", PYSLOWFAST)  # eval-only loads no pretrained weights: the checkpoint must say
    assert evaluate_checkpoint(command_line) == summary["test"]
    recorder.assert_standardised_with(ODD)

    exported = load_exported(summary["export"]["path"])
    clips = torch.randint(0, 256, (3, 3, 8, 32, 32), dtype=torch.uint8)  # what a user feeds it
    reference = ClipTransform().with_statistics(ODD.mean, ODD.std).normalize(clips)
    assert summary["export"]["mean"] == list(ODD.mean) and summary["export"]["std"] == list(ODD.std)
    trained = _trained_model(run)
    with torch.no_grad():
        assert torch.allclose(exported(clips), trained(reference), atol=1e-5)
        assert not torch.allclose(exported(clips), trained(ClipTransform().normalize(clips)), atol=1e-3)


def _trained_model(run: Path) -> nn.Module:
    from darts_video.train_config import build_model

    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    model = build_model(state["architecture"]).eval()
    model.load_state_dict(state["model"])
    return model


def test_a_search_starts_from_pretrained_weights_and_uses_their_statistics(tmp_path, recorder):
    torch.manual_seed(3)
    weights = create_backbone("tiny").state_dict()
    torch.save(weights, tmp_path / "tiny.pt")
    config = SearchConfig(out=str(tmp_path / "search"), num_clips=64, epochs=2, warmup_epochs=1, batch_size=16, device="cpu",
                          ops=["identity", "map_temporal_sigmoid"], nodes=1, pretrained=str(tmp_path / "tiny.pt"), lr=0.0, shortlist=0)  # weights frozen by a zero learning rate
    run_search(config)
    recorder.assert_standardised_with(ODD)  # weight and architecture steps
    state = load_checkpoint(Path(config.out) / "checkpoints" / "latest.pt")
    assert state["input_statistics"] == ODD.as_dict()
    assert json.loads((Path(config.out) / "config.json").read_text())["pretrained"] == str(tmp_path / "tiny.pt")
    for name, value in weights.items():
        if name.endswith(("weight", "bias")):  # a cell follows stage2: Sequential(block=stage2, attention=cell)
            key = f"backbone.{name}".replace("backbone.stage2.", "backbone.stage2.block.")
            assert torch.equal(state["model"][key], value), name  # the supernet's backbone is the file's
