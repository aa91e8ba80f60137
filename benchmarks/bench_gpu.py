"""The search at the paper's scale on one device: the planner's numbers with and without
recomputation, and the retraining step, in one table.

    python benchmarks/bench_gpu.py                       # a GPU: I3D-R50, batch 8 of 8x224² clips, bf16, default points
    python benchmarks/bench_gpu.py --device cpu --frames 4 --size 64 --batch 2 --amp off   # reduced, on CPU
    python benchmarks/bench_gpu.py --quick               # the tiny backbone: checks the script runs

Rows: the bare backbone's training step and the search step (architecture + weight step), each
as the planner measures it (``darts_video.plan``: random clips of the shape, no data read), with
``--recompute`` off and on; and the retraining step of the derived network (``--genotype``'s cell
at the same points, AdamW as ``train_final.py``). Columns: peak GiB (CUDA allocator; on CPU the
planner's count), ms per step, clips/s, memory per extra clip and its ratio to the bare
backbone's (the goal of issue 14: at most 3x with recomputation), and the model FLOPs
utilisation: FLOPs of one step counted by ``torch.utils.flop_counter`` (a multiply-add is 2;
recomputation's repeated forwards are not model FLOPs, so both search rows count the stored
step's) over ms/step, as a share of the device's peak (``--peak-tflops``, or a known CUDA device's
dense bf16 peak).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from timing import markdown_table
from torch.utils.flop_counter import FlopCounterMode

from darts_video.backbones import create_backbone
from darts_video.engine import weight_step
from darts_video.engine.optim import create_weight_optimizer, current_lr
from darts_video.models import create_model
from darts_video.options import AMP_DTYPES
from darts_video.plan import GIB, PlanOptions, plan_search, step_peak_bytes
from darts_video.search import MAX_GRAD_NORM, build_search_parts
from darts_video.search_config import SearchConfig
from darts_video.train_config import TrainConfig
from darts_video.utils.files import atomic_write_text

CLASSES = 400  # Kinetics-400's head
DENSE_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0}  # vendors' sheets
QUICK = dict(backbone="tiny", frames=4, size=16, batch=2, ops=["identity", "map_temporal_sigmoid", "dot_temporal_softmax"], nodes=2,
             amp="off", steps=1, max_batch=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="i3d_r50", help="the backbone (default: i3d_r50)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default: 8)")
    parser.add_argument("--size", type=int, default=224, help="crop size (default: 224)")
    parser.add_argument("--batch", type=int, default=8, help="clips per step (default: 8)")
    parser.add_argument("--amp", choices=tuple(AMP_DTYPES), default="bf16", help="autocast precision (default: bf16)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--ops", nargs="+", default=["*"], help="candidate patterns (default: every operation)")
    parser.add_argument("--nodes", type=int, default=3, help="nodes per cell, K (default: 3)")
    parser.add_argument("--mode", default="darts", help="search mode (default: darts)")
    parser.add_argument("--genotype", default="divided_space_time", help="the retrained cell (default: divided_space_time)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement (default: 3)")
    parser.add_argument("--memory-limit", type=float, help="GiB the planner's largest batch must fit in (default: the device's)")
    parser.add_argument("--max-batch", type=int, default=64, help="largest batch the planner tries (default: 64)")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak TFLOP/s for the MFU (default: a known CUDA device's bf16)")
    parser.add_argument("--out", help="also write the table to this markdown file (default: print only)")
    parser.add_argument("--quick", action="store_true", help="the tiny backbone at 4x16², batch 2: checks the script runs")
    args = parser.parse_args()
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    config = SearchConfig(backbone=args.backbone, num_frames=args.frames, crop_size=args.size, batch_size=args.batch, amp=args.amp,
                          device=str(device), ops=args.ops, nodes=args.nodes, mode=args.mode, num_clips=2 * args.batch * 8, workers=0)
    options = PlanOptions(steps=args.steps, memory_limit_gib=args.memory_limit, max_batch=args.max_batch, without_data=True, classes=CLASSES)
    peak_tflops = args.peak_tflops or _known_peak(device, args.amp)
    plans = {recompute: plan_search(dataclasses.replace(config, recompute=recompute), options) for recompute in (False, True)}
    search_flops = _search_step_flops(config, device)
    bare = plans[False].backbone
    bare_flops = _training_flops(create_backbone(args.backbone, num_classes=CLASSES), config, device)
    rows = [_row("bare backbone, training step", bare.peak_bytes, bare.weight_s, args.batch, bare_flops, peak_tflops,
                 plans[False].backbone_per_clip_bytes, plans[False].backbone_per_clip_bytes)]
    for recompute, plan in plans.items():
        step_s = plan.total.weight_s + plan.total.arch_s
        rows.append(_row(f"search step, recompute {'on' if recompute else 'off'} (largest batch {plan.largest_batch})", plan.total.peak_bytes,
                         step_s, args.batch, search_flops, peak_tflops, plan.per_clip_bytes, plans[False].backbone_per_clip_bytes))
    retrain_peak, retrain_s, retrain_flops = _retraining(args, config, device)
    rows.append(_row(f"retraining step ({args.genotype})", retrain_peak, retrain_s, args.batch, retrain_flops, peak_tflops, None, None))
    described = plans[False].description
    title = (f"{args.backbone}, cells at {', '.join(described['points'])} ({described['candidates']} candidates x K = {args.nodes}, {args.mode}), "
             f"batch {args.batch} of {args.frames}x{args.size}² clips, amp {args.amp}, {described['device']}"
             + (f", MFU against {peak_tflops:g} TFLOP/s" if peak_tflops else ", MFU n/a (no --peak-tflops)"))
    table = title + "\n\n" + markdown_table(["step", "peak GiB", "ms/step", "clips/s", "GFLOP/step", "MFU", "MiB per extra clip",
                                             "per clip / bare backbone's"], rows)
    print(table)
    if args.out:
        atomic_write_text(Path(args.out), table + "\n")


def _row(name: str, peak: int | None, seconds: float, batch: int, flops: int, peak_tflops: float | None, per_clip: float | None,
         bare_per_clip: float | None) -> list[str]:
    mfu = f"{flops / seconds / (peak_tflops * 1e12):.2%}" if peak_tflops else "n/a"
    ratio = f"{per_clip / bare_per_clip:.2f}x" if per_clip is not None and bare_per_clip else "–"
    return [name, "n/a" if peak is None else f"{peak / GIB:.3f}", f"{seconds * 1e3:.0f}", f"{batch / seconds:.2f}", f"{flops / 1e9:.3g}", mfu,
            "–" if per_clip is None else f"{per_clip / 2**20:.1f}", ratio]


def _known_peak(device: torch.device, amp: str) -> float | None:
    if device.type != "cuda" or amp != "bf16":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops for key, tflops in DENSE_BF16_TFLOPS.items() if key in name), None)


def _clips(config: SearchConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (config.batch_size, 3, config.num_frames, config.crop_size, config.crop_size)
    return torch.randn(shape, device=device), torch.randint(0, CLASSES, (config.batch_size,), device=device)  # (B, 3, T, H, W), (B,)


def _search_step_flops(config: SearchConfig, device: torch.device) -> int:
    """One search step's FLOPs (architecture step, then weight step), cells stored."""
    parts = build_search_parts(dataclasses.replace(config, recompute=False), create_backbone(config.backbone, num_classes=CLASSES), device)
    train, val = _clips(config, device), _clips(config, device)
    with FlopCounterMode(display=False) as counter:
        parts.architect.step(train, val, current_lr(parts.weight_optimizer))
        weight_step(parts.model, *train, parts.weight_optimizer, parts.scaler, parts.amp_dtype, "a benchmark step", MAX_GRAD_NORM)
    return counter.get_total_flops()


def _training_flops(model: torch.nn.Module, config: SearchConfig, device: torch.device) -> int:
    model = model.to(device)
    optimizer = create_weight_optimizer(model, "adamw", 1e-3, 1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    with FlopCounterMode(display=False) as counter:
        weight_step(model, *_clips(config, device), optimizer, scaler, AMP_DTYPES[config.amp], "a benchmark step")
    return counter.get_total_flops()


def _retraining(args: argparse.Namespace, config: SearchConfig, device: torch.device) -> tuple[int | None, float, int]:
    """The derived network's training step (AdamW, as train_final.py's default): peak bytes, seconds, FLOPs."""
    train = TrainConfig()
    model = create_model(args.backbone, CLASSES, args.genotype).to(device)
    optimizer = create_weight_optimizer(model, train.optimizer, train.lr, train.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
    step = lambda: weight_step(model, *_clips(config, device), optimizer, scaler, AMP_DTYPES[args.amp], "a benchmark step")  # noqa: E731
    step()  # optimiser states, kernel choices
    peak = step_peak_bytes(step, device, [model], [optimizer])  # as the planner counts: what is held between steps, and the step's rise
    times = []
    for _ in range(args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
    flops = _training_flops(create_model(args.backbone, CLASSES, args.genotype), config, device)
    return peak, sum(times) / len(times), flops


if __name__ == "__main__":
    main()
