"""PySlowFast and MMAction2 I3D-R50 checkpoints load into i3d_r50 where they describe the same
network, and are refused naming the difference where they do not. The files are written here,
from an i3d_r50's own weights under the foreign key names, in each framework's layout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from darts_video.backbones import create_backbone
from darts_video.backbones.inflate import set_temporal_padding
from darts_video.backbones.pretrained import PretrainedWeightsError

PYSLOWFAST_CFG = """\
DATA:
  MEAN: [0.45, 0.45, 0.45]
  STD: [0.225, 0.225, 0.225]
MODEL:
  ARCH: {arch}
  NUM_CLASSES: 7
NONLOCAL:
  LOCATION: [[[]], [[]], [[]], [[]]]
RESNET:
  DEPTH: 50
  NUM_GROUPS: 1
  SPATIAL_DILATIONS: [[1], [1], [1], [1]]
  SPATIAL_STRIDES: [[1], [2], [2], [2]]
  STRIDE_1X1: false
  TRANS_FUNC: bottleneck_transform
  WIDTH_PER_GROUP: 64
"""
MMACTION2_CFG = """\
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='ResNet3d', pretrained2d=True, pretrained='torchvision://resnet50', depth=50, conv1_kernel=(5, 7, 7),
        conv1_stride_t={stride}, pool1_stride_t={stride}, conv_cfg=dict(type='Conv3d'), norm_eval=False,
        inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)), zero_init_residual=False),
    cls_head=dict(type='I3DHead', num_classes=7, in_channels=2048, spatial_type='avg', dropout_ratio=0.5, init_std=0.01),
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           format_shape='NCTHW'))
"""


def to_pyslowfast(key: str) -> str:
    key = re.sub(r"^stem\.0\.", "s1.pathway0_stem.conv.", key)
    key = re.sub(r"^stem\.1\.", "s1.pathway0_stem.bn.", key)
    key = re.sub(r"^res(\d)\.(\d+)\.downsample\.0\.", r"s\1.pathway0_res\2.branch1.", key)
    key = re.sub(r"^res(\d)\.(\d+)\.downsample\.1\.", r"s\1.pathway0_res\2.branch1_bn.", key)
    key = re.sub(r"^res(\d)\.(\d+)\.conv(\d)\.", lambda m: f"s{m[1]}.pathway0_res{m[2]}.branch2.{'abc'[int(m[3]) - 1]}.", key)
    key = re.sub(r"^res(\d)\.(\d+)\.bn(\d)\.", lambda m: f"s{m[1]}.pathway0_res{m[2]}.branch2.{'abc'[int(m[3]) - 1]}_bn.", key)
    return re.sub(r"^fc\.", "head.projection.", key)


def to_mmaction2(key: str) -> str:
    key = re.sub(r"^stem\.0\.", "backbone.conv1.conv.", key)
    key = re.sub(r"^stem\.1\.", "backbone.conv1.bn.", key)
    key = re.sub(r"^res(\d)\.(\d+)\.downsample\.0\.", lambda m: f"backbone.layer{int(m[1]) - 1}.{m[2]}.downsample.conv.", key)
    key = re.sub(r"^res(\d)\.(\d+)\.downsample\.1\.", lambda m: f"backbone.layer{int(m[1]) - 1}.{m[2]}.downsample.bn.", key)
    key = re.sub(r"^res(\d)\.(\d+)\.conv(\d)\.", lambda m: f"backbone.layer{int(m[1]) - 1}.{m[2]}.conv{m[3]}.conv.", key)
    key = re.sub(r"^res(\d)\.(\d+)\.bn(\d)\.", lambda m: f"backbone.layer{int(m[1]) - 1}.{m[2]}.conv{m[3]}.bn.", key)
    return re.sub(r"^fc\.", "cls_head.fc_cls.", key)


def foreign_state(model: nn.Module, rename) -> dict:
    return {rename(k): v for k, v in model.state_dict().items() if not k.endswith("_extra_state")}


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor]:
    """An i3d_r50 as a Kinetics-trained one is: zero temporal padding, real BatchNorm statistics."""
    torch.manual_seed(0)
    model = create_backbone("i3d_r50", num_classes=7)
    set_temporal_padding(model, "zeros")
    clip = torch.randn(2, 3, 4, 32, 32)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm3d):
            layer.momentum = 1.0
    with torch.no_grad():
        model.train()(torch.randn(4, 3, 4, 32, 32))
    return model.eval(), clip


def load(path: Path, **kwargs) -> nn.Module:
    return create_backbone("i3d_r50", num_classes=7, pretrained=str(path), **kwargs).eval()


def test_a_pyslowfast_checkpoint_loads_as_the_network_it_was(trained, tmp_path):
    model, clip = trained
    path = tmp_path / "I3D_8x8_R50.pyth"
    torch.save({"epoch": 196, "model_state": foreign_state(model, to_pyslowfast), "optimizer_state": {},
                "cfg": PYSLOWFAST_CFG.format(arch="i3d")}, path)
    loaded = load(path)
    with torch.no_grad():
        expected = model(clip)
        assert (expected[0] - expected[1]).abs().max() > 1e-3  # the logits depend on the clip
        assert torch.equal(loaded(clip), expected)
    assert loaded.input_statistics.mean == (0.45, 0.45, 0.45) and "PySlowFast config" in loaded.input_statistics.source
    stem = loaded.stem[0]  # time is padded with zeros, as PySlowFast's nn.Conv3d(padding=[2, 3, 3]) does
    torch.testing.assert_close(stem(clip), F.conv3d(clip, stem.weight, stride=(1, 2, 2), padding=(2, 3, 3)))
    again = create_backbone("i3d_r50", num_classes=7).eval()  # --eval-only / resume: our checkpoint carries the padding
    again.load_state_dict(loaded.state_dict())
    with torch.no_grad():
        assert torch.equal(again(clip), expected)


def test_an_mmaction2_checkpoint_with_i3d_r50s_strides_loads_with_its_statistics(trained, tmp_path):
    model, clip = trained
    path = tmp_path / "i3d_mmaction2.pth"
    torch.save({"meta": {"cfg": MMACTION2_CFG.format(stride=1)}, "state_dict": foreign_state(model, to_mmaction2)}, path)
    loaded = load(path)
    with torch.no_grad():
        assert torch.equal(loaded(clip), model(clip))
    assert loaded.input_statistics.mean == pytest.approx((0.485, 0.456, 0.406)) and loaded.input_statistics.std == pytest.approx((0.229, 0.224, 0.225))


def test_mmaction2s_i3d_r50_config_downsamples_time_8x_and_is_refused(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb.pth"
    torch.save({"meta": {"cfg": MMACTION2_CFG.format(stride=2)}, "state_dict": foreign_state(model, to_mmaction2)}, path)
    with pytest.raises(PretrainedWeightsError, match=r"another network than i3d_r50: conv1_stride_t=2 \(i3d_r50: 1\), "
                                                     r"pool1_stride_t=2 \(i3d_r50: 1\); MMAction2's i3d_r50 configs downsample time 8x"):
        load(path)


def test_a_checkpoint_that_does_not_say_its_strides_needs_its_config(trained, tmp_path):
    model, clip = trained
    path = tmp_path / "weights_only.pth"
    torch.save({"state_dict": foreign_state(model, to_mmaction2)}, path)
    with pytest.raises(PretrainedWeightsError, match="does not embed its configuration.*give its config .py .*--pretrained-config"):
        load(path)
    config = tmp_path / "i3d_config.py"
    config.write_text(MMACTION2_CFG.format(stride=1).replace("conv1_stride_t=1, ", ""))
    with pytest.raises(PretrainedWeightsError, match="does not set the backbone's conv1_stride_t.*default differs between MMAction2 versions"):
        load(path, pretrained_config=str(config))
    config.write_text(MMACTION2_CFG.format(stride=1))
    with torch.no_grad():
        assert torch.equal(load(path, pretrained_config=str(config))(clip), model(clip))


def test_other_temporal_kernels_non_local_blocks_and_other_pyslowfast_archs_are_refused(trained, tmp_path):
    model, _ = trained
    inflated_everywhere = foreign_state(model, to_mmaction2)  # MMAction2's default inflate=(1, 1, 1, 1)
    inflated_everywhere["backbone.layer2.1.conv1.conv.weight"] = inflated_everywhere["backbone.layer2.1.conv1.conv.weight"].repeat(1, 1, 3, 1, 1) / 3
    torch.save({"meta": {"cfg": MMACTION2_CFG.format(stride=1)}, "state_dict": inflated_everywhere}, tmp_path / "inflate.pth")
    with pytest.raises(PretrainedWeightsError, match="other temporal kernels: res3.1.conv1 is 3×1×1 in the file, 1×1×1 in i3d_r50"):
        load(tmp_path / "inflate.pth")

    with_non_local = foreign_state(model, to_pyslowfast)
    with_non_local["s3.pathway0_nonlocal1.conv_theta.weight"] = torch.zeros(256, 512, 1, 1, 1)
    torch.save({"model_state": with_non_local, "cfg": PYSLOWFAST_CFG.format(arch="i3d")}, tmp_path / "nl.pyth")
    with pytest.raises(PretrainedWeightsError, match="non-local blocks \\(s3.pathway0_nonlocal1.conv_theta.weight"):
        load(tmp_path / "nl.pyth")

    torch.save({"model_state": foreign_state(model, to_pyslowfast), "cfg": PYSLOWFAST_CFG.format(arch="i3d_nopool")}, tmp_path / "nopool.pyth")
    with pytest.raises(PretrainedWeightsError, match="MODEL.ARCH is 'i3d_nopool', i3d_r50 has 'i3d' \\(i3d_nopool has no temporal pool after res2\\)"):
        load(tmp_path / "nopool.pyth")

    torch.save(create_backbone("tiny").state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(PretrainedWeightsError, match="--pretrained-config describes a PySlowFast or MMAction2 checkpoint"):
        create_backbone("tiny", pretrained=str(tmp_path / "tiny.pt"), pretrained_config="config.py")
