"""Kinetics-trained I3D-R50 checkpoints of PySlowFast and MMAction2, loaded into ``i3d_r50``.

A key mapping alone is not enough: the same weights in a network with other temporal strides
compute something else. What a file's tensors reveal is checked against ``i3d_r50``: depth,
the stem's kernel, which blocks are inflated and how (3×1×1 first convolution, or 3×3×3
second), non-local blocks. What they do not reveal (strides, pools, where the stride sits, the
input statistics) must be declared by the framework's own configuration: the one the checkpoint
embeds (PySlowFast's ``cfg``, MMAction2's ``meta``), else the file given as ``pretrained_config``.
Anything that differs from ``i3d_r50`` is refused, naming it. Both frameworks pad time with
zeros, so the loaded network does too (``i3d_r50`` replicates edge frames for inflation).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml
from torch import nn

from darts_video.backbones.inflate import set_temporal_padding
from darts_video.backbones.pretrained import PretrainedWeightsError, load_fitting
from darts_video.backbones.statistics import PYSLOWFAST, InputStatistics

BLOCKS_PER_STAGE = (3, 4, 6, 3)  # ResNet-50
_BRANCH2 = {"a": 1, "b": 2, "c": 3}
_PYSLOWFAST_KEYS = [
    (r"s1\.pathway0_stem\.conv\.(.+)", r"stem.0.\1"),
    (r"s1\.pathway0_stem\.bn\.(.+)", r"stem.1.\1"),
    (r"s(\d)\.pathway0_res(\d+)\.branch1\.(.+)", r"res\1.\2.downsample.0.\3"),
    (r"s(\d)\.pathway0_res(\d+)\.branch1_bn\.(.+)", r"res\1.\2.downsample.1.\3"),
    (r"s(\d)\.pathway0_res(\d+)\.branch2\.([abc])\.(.+)", lambda m: f"res{m[1]}.{m[2]}.conv{_BRANCH2[m[3]]}.{m[4]}"),
    (r"s(\d)\.pathway0_res(\d+)\.branch2\.([abc])_bn\.(.+)", lambda m: f"res{m[1]}.{m[2]}.bn{_BRANCH2[m[3]]}.{m[4]}"),
    (r"head\.projection\.(.+)", r"fc.\1"),
]
_MMACTION2_KEYS = [
    (r"backbone\.conv1\.conv\.(.+)", r"stem.0.\1"),
    (r"backbone\.conv1\.bn\.(.+)", r"stem.1.\1"),
    (r"backbone\.layer(\d)\.(\d+)\.conv(\d)\.conv\.(.+)", lambda m: f"res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.{m[4]}"),
    (r"backbone\.layer(\d)\.(\d+)\.conv(\d)\.bn\.(.+)", lambda m: f"res{int(m[1]) + 1}.{m[2]}.bn{m[3]}.{m[4]}"),
    (r"backbone\.layer(\d)\.(\d+)\.downsample\.conv\.(.+)", lambda m: f"res{int(m[1]) + 1}.{m[2]}.downsample.0.{m[3]}"),
    (r"backbone\.layer(\d)\.(\d+)\.downsample\.bn\.(.+)", lambda m: f"res{int(m[1]) + 1}.{m[2]}.downsample.1.{m[3]}"),
    (r"cls_head\.fc_cls\.(.+)", r"fc.\1"),
]
# Options the tensors do not show, as i3d_r50 has them; None: no default to rely on, must be set.
_PYSLOWFAST_OPTIONS = {
    "MODEL.ARCH": "i3d", "RESNET.TRANS_FUNC": "bottleneck_transform", "RESNET.STRIDE_1X1": False,
    "RESNET.NUM_GROUPS": 1, "RESNET.WIDTH_PER_GROUP": 64, "RESNET.SPATIAL_STRIDES": [[1], [2], [2], [2]],
    "RESNET.SPATIAL_DILATIONS": [[1], [1], [1], [1]],
}
_MMACTION2_OPTIONS = {  # key -> (value i3d_r50 has, default when the config does not set it)
    "conv1_stride_t": (1, None),  # ResNet3d's default is 2 in MMAction2 0.x and 1 in 1.x: it must be set
    "pool1_stride_t": (1, None),
    "conv1_stride_s": (2, 2), "pool1_stride_s": (2, 2), "with_pool1": (True, True), "with_pool2": (True, True),
    "style": ("pytorch", "pytorch"), "spatial_strides": ((1, 2, 2, 2), (1, 2, 2, 2)),
    "temporal_strides": ((1, 1, 1, 1), (1, 1, 1, 1)), "dilations": ((1, 1, 1, 1), (1, 1, 1, 1)),
}


def checkpoint_layout(checkpoint: dict) -> str:
    """``pyslowfast`` ({"model_state": ...}), ``mmaction2`` (backbone.* / cls_head.* keys) or ``torchvision``."""
    if isinstance(checkpoint.get("model_state"), dict) and any(k.startswith("s1.pathway0_stem.") for k in checkpoint["model_state"]):
        return "pyslowfast"
    state = checkpoint.get("state_dict", checkpoint)
    if isinstance(state, dict) and any(str(k).startswith("backbone.conv1.conv.") for k in state):
        return "mmaction2"
    return "torchvision"


def load_kinetics_checkpoint(model: nn.Module, checkpoint: dict, layout: str, source: str,
                             config_file: str | None = None) -> InputStatistics:
    """Load a PySlowFast / MMAction2 I3D-R50 ``checkpoint`` into ``model`` (an ``I3DResNet50``),
    or refuse naming every difference; returns the input statistics its configuration declares."""
    state = checkpoint["model_state"] if layout == "pyslowfast" else checkpoint.get("state_dict", checkpoint)
    config_text, config_source = _declared_config(checkpoint, layout, source, config_file)
    if layout == "pyslowfast":
        statistics = _check_pyslowfast_config(config_text, config_source)
        mapped, non_local = _rename(state, _PYSLOWFAST_KEYS, r"s\d\.pathway0_nonlocal\d+\.")
    else:
        statistics = _check_mmaction2_config(config_text, config_source, state)
        state = {k: v for k, v in state.items() if not k.startswith("data_preprocessor.")}
        mapped, non_local = _rename(state, _MMACTION2_KEYS, r"backbone\.layer\d\.\d+\.non_local_block\.")
    if non_local:
        raise PretrainedWeightsError(f"{source} has non-local blocks ({non_local[0]} ...): an I3D-NL checkpoint, whose "
                                     "blocks i3d_r50 does not load; use an I3D-R50 checkpoint without them")
    _check_tensors(model, mapped, source, layout)
    load_fitting(model, mapped, f"{source} ({layout} layout)", head="fc")
    set_temporal_padding(model, "zeros")
    return statistics


def _rename(state: dict, rules: list, non_local_pattern: str) -> tuple[dict, list[str]]:
    mapped, non_local = {}, []
    for key, value in state.items():
        if re.match(non_local_pattern, key):
            non_local.append(key)
            continue
        for pattern, replacement in rules:
            if re.fullmatch(pattern, key):
                key = re.sub(pattern, replacement, key)
                break
        mapped[key] = value  # a key no rule maps stays as it is, and is reported as unexpected
    return mapped, non_local


def _check_tensors(model: nn.Module, mapped: dict, source: str, layout: str) -> None:
    """Depth and temporal kernels, which the tensors reveal, against the model's."""
    blocks = tuple(len({int(m[1]) for k in mapped if (m := re.match(rf"res{stage}\.(\d+)\.", k))}) for stage in range(2, 6))
    if blocks != BLOCKS_PER_STAGE:
        raise PretrainedWeightsError(f"{source} ({layout}) has {blocks} blocks per stage; i3d_r50 is a ResNet-50 {BLOCKS_PER_STAGE}")
    own = model.state_dict()
    kernels = [f"{key.removesuffix('.weight')} is {'×'.join(map(str, mapped[key].shape[2:]))} in the file, "
               f"{'×'.join(map(str, own[key].shape[2:]))} in i3d_r50"
               for key in mapped if key in own and own[key].dim() == 5 and mapped[key].dim() == 5
               and mapped[key].shape[:2] == own[key].shape[:2] and mapped[key].shape[2:] != own[key].shape[2:]]
    if kernels:
        raise PretrainedWeightsError(
            f"{source} ({layout}) was trained with other temporal kernels: {'; '.join(kernels[:4])}"
            f"{f' (and {len(kernels) - 4} more)' if len(kernels) > 4 else ''}. i3d_r50 has a 5×7×7 stem and a 3×1×1 first "
            "convolution in every res2 block and alternate res3-res5 blocks (inflate (1,1,1), (1,0,1,0), (1,0,1,0,1,0), (0,1,0))")


def _declared_config(checkpoint: dict, layout: str, source: str, config_file: str | None) -> tuple[object, str]:
    if config_file is not None:
        if not Path(config_file).is_file():
            raise PretrainedWeightsError(f"--pretrained-config {config_file} does not exist")
        return Path(config_file).read_text(), config_file
    embedded = checkpoint.get("cfg") if layout == "pyslowfast" else next(
        (meta[key] for meta in [checkpoint.get("meta") or {}] for key in ("cfg", "config") if isinstance(meta.get(key), str)), None)
    if embedded is None:
        what = "its YAML config (PySlowFast saves it as 'cfg')" if layout == "pyslowfast" else "its config .py (mmengine saves it in 'meta')"
        raise PretrainedWeightsError(
            f"{source} ({layout}) does not embed its configuration, and its tensors do not show the temporal strides and "
            f"input statistics it was trained with: give {what} with --pretrained-config")
    return embedded, f"{source} (embedded config)"


def _check_pyslowfast_config(text: object, where: str) -> InputStatistics:
    config = yaml.safe_load(text) if isinstance(text, str) else text
    if not isinstance(config, dict):
        raise PretrainedWeightsError(f"{where} is not a PySlowFast YAML configuration")

    def get(dotted: str, default: object = None) -> object:
        node = config
        for part in dotted.split("."):
            node = node.get(part, default) if isinstance(node, dict) else default
        return node

    differing = [f"{key} is {get(key)!r}, i3d_r50 has {value!r}" for key, value in _PYSLOWFAST_OPTIONS.items() if get(key) != value]
    locations = get("NONLOCAL.LOCATION", [])
    if any(any(stage) for stage in (locations or [])):
        differing.append(f"NONLOCAL.LOCATION is {locations!r} (non-local blocks)")
    if differing:
        raise PretrainedWeightsError(f"{where} describes another network than i3d_r50: {'; '.join(differing)}"
                                     + (" (i3d_nopool has no temporal pool after res2)" if get("MODEL.ARCH") == "i3d_nopool" else ""))
    mean, std = get("DATA.MEAN", list(PYSLOWFAST.mean)), get("DATA.STD", list(PYSLOWFAST.std))
    return InputStatistics(tuple(map(float, mean)), tuple(map(float, std)), f"the PySlowFast config of {where}")


def _check_mmaction2_config(text: object, where: str, state: dict) -> InputStatistics:
    if not isinstance(text, str):
        raise PretrainedWeightsError(f"{where} is not an MMAction2 configuration text")
    differing = []
    for key, (ours, default) in _MMACTION2_OPTIONS.items():
        value = _config_value(text, key, where)
        if value is None and default is None:
            base = " (the file inherits _base_ configs: give the resolved one, mmengine's Config.fromfile(path).pretty_text)" \
                if "_base_" in text else ""
            raise PretrainedWeightsError(f"{where} does not set the backbone's {key}, which the weights do not show and whose "
                                         f"default differs between MMAction2 versions; i3d_r50 needs {key}={ours!r}{base}")
        value = default if value is None else value
        if (tuple(value) if isinstance(value, list) else value) != ours:
            differing.append(f"{key}={value!r} (i3d_r50: {ours!r})")
    if differing:
        hint = "; MMAction2's i3d_r50 configs downsample time 8x, i3d_r50 2x" if any("stride_t" in d for d in differing) else ""
        raise PretrainedWeightsError(f"{where} describes another network than i3d_r50: {', '.join(differing)}{hint}")
    if "data_preprocessor.mean" in state:  # MMAction2 1.x can keep its statistics with the weights (0-255 scale)
        mean, std = state["data_preprocessor.mean"].flatten().tolist(), state["data_preprocessor.std"].flatten().tolist()
    else:
        mean, std = _config_value(text, "mean", where), _config_value(text, "std", where)
        if mean is None or std is None:
            raise PretrainedWeightsError(f"{where} sets no mean / std (data_preprocessor or img_norm_cfg): the input "
                                         "statistics of the weights are unknown")
    return InputStatistics(tuple(float(m) / 255 for m in mean), tuple(float(s) / 255 for s in std), f"the MMAction2 config of {where}")


def _config_value(text: str, key: str, where: str) -> object:
    """The value of ``key=...`` / ``'key': ...`` in a Python config; None when absent. Set to two
    different values (two pathways, two pipelines) it is ambiguous and refused."""
    pattern = rf"(?<![\w.])['\"]?{key}['\"]?\s*[=:]\s*(\([^)]*\)|\[[^\]]*\]|[^,)\n]+)"
    values = []
    for match in re.finditer(pattern, text):
        try:
            values.append(ast.literal_eval(match[1].strip()))
        except (ValueError, SyntaxError):
            raise PretrainedWeightsError(f"{where}: cannot read {key} = {match[1].strip()!r}") from None
    if len({repr(v) for v in values}) > 1:
        raise PretrainedWeightsError(f"{where} sets {key} to several values ({values}); give the config of one I3D-R50")
    return values[0] if values else None
