"""What a model costs: parameters, FLOPs (``torch.utils.flop_counter``) and inference clips/s.

``FlopCounterMode`` counts a multiply-add as 2 FLOPs; PySlowFast / fvcore tables count it as 1, so
their "GFLOPs" are half of ours for the same network.
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def flops(model: nn.Module, clip: torch.Tensor) -> tuple[int, dict[str, int]]:
    """Total FLOPs of one forward of ``clip`` (N, C, T, H, W), and those of every submodule by its
    dotted name in ``model`` ("" for the whole model)."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip)
    model.train(was_training)
    root = type(model).__name__
    by_module = {}
    for name, counts in counter.get_flop_counts().items():
        if name == root or name.startswith(f"{root}."):
            by_module[name[len(root) + 1:]] = sum(counts.values())
    return counter.get_total_flops(), by_module


def clips_per_second(model: nn.Module, clip: torch.Tensor, repeats: int = 3) -> float:
    """Inference throughput on ``clip``'s device: the best of ``repeats`` timed forwards after a warm-up."""
    was_training = model.training
    model.eval()
    synchronize = torch.cuda.synchronize if clip.is_cuda else (lambda: None)
    best = float("inf")
    with torch.no_grad():
        model(clip)
        for _ in range(repeats):
            synchronize()
            start = time.perf_counter()
            model(clip)
            synchronize()
            best = min(best, time.perf_counter() - start)
    model.train(was_training)
    return clip.shape[0] / best


def cost_report(model: nn.Module, clip: torch.Tensor, blocks: dict[str, nn.Module]) -> dict:
    """Parameters and FLOPs of ``model`` and of each inserted block (by insertion point), clips/s."""
    total, by_module = flops(model, clip)
    return {
        "clip_shape": list(clip.shape[1:]),
        "parameters": count_parameters(model),
        "flops_per_clip": total / clip.shape[0],
        "clips_per_second": clips_per_second(model, clip),
        "blocks": {
            point: {"parameters": count_parameters(block), "flops_per_clip": by_module.get(f"{point}.attention", 0) / clip.shape[0]}
            for point, block in blocks.items()
        },
    }


def format_cost(report: dict) -> str:
    lines = [
        f"model: {report['parameters'] / 1e6:.3f} M parameters, {report['flops_per_clip'] / 1e9:.3f} GFLOPs per "
        f"{'x'.join(map(str, report['clip_shape']))} clip (flop_counter: multiply-add = 2), {report['clips_per_second']:.1f} clips/s",
    ]
    for point, block in report["blocks"].items():
        lines.append(f"  block at {point}: {block['parameters'] / 1e6:.3f} M parameters, {block['flops_per_clip'] / 1e9:.4f} GFLOPs")
    return "\n".join(lines)
