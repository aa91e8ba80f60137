"""Cost of the three arms on every backbone: bare, + non-local blocks, + a searched cell.

    python benchmarks/bench_models.py                          # 8x224² and 8x64², batch 1, all backbones
    python benchmarks/bench_models.py --genotype runs/search/genotype.json --backbones i3d_r50
    python benchmarks/bench_models.py --quick                  # tiny sizes: checks the script runs

For each backbone and clip size: parameters, FLOPs (``torch.utils.flop_counter``; a multiply-add
counts 2) and inference clips/s, with ratios to the bare backbone. Blocks go at the backbone's
default insertion points. The three arms of one backbone are timed in alternation in one run.
"""

from __future__ import annotations

import argparse

import torch

from darts_video import create_model
from darts_video.backbones import list_backbones
from darts_video.engine.cost import count_parameters, flops
from timing import compare_table, markdown_table, time_interleaved

ARMS = {"bare": {"baseline": "none"}, "non-local": {"baseline": "nonlocal"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", choices=list_backbones(), default=["i3d", "s3d", "i3d_r50", "tiny"])
    parser.add_argument("--genotype", default="divided_space_time", help="the searched cell: a genotype JSON or registered name")
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 64], help="square crop sizes")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.backbones, args.sizes, args.frames, args.repeats = ["tiny", "s3d"], [32], 8, 1
    device = torch.device(args.device)
    arms = {**ARMS, f"cell ({args.genotype})": {"genotype": args.genotype}}
    rows, measurements = [], []
    label = f"Inference, {device}, batch {args.batch}"
    for backbone in args.backbones:
        models = {arm: create_model(backbone, num_classes=400, **kwargs).to(device).eval() for arm, kwargs in arms.items()}
        for size in args.sizes:
            clip = torch.randn(args.batch, 3, args.frames, size, size, device=device)
            with torch.no_grad():
                measured = time_interleaved({arm: (lambda m=m: m(clip)) for arm, m in models.items()}, device, repeats=args.repeats,
                                            label=label, description=f"{backbone} {args.frames}x{size}²")
            measurements += measured.values()
            seconds = {arm: m.median for arm, m in measured.items()}
            counted = {arm: flops(m, clip)[0] / args.batch for arm, m in models.items()}
            for arm, model in models.items():
                params = count_parameters(model)
                rows.append([backbone, f"{args.frames}x{size}²", arm, f"{params / 1e6:.2f}", f"{params / count_parameters(models['bare']):.3f}",
                             f"{counted[arm] / 1e9:.2f}", f"{counted[arm] / counted['bare']:.3f}", f"{args.batch / seconds[arm]:.2f}",
                             f"{seconds['bare'] / seconds[arm]:.3f}"])
    print(f"device: {device}, batch {args.batch}, median of {args.repeats} interleaved forwards\n")
    print(compare_table(measurements) + "\n")
    print(markdown_table(["backbone", "clip", "arm", "params (M)", "× bare", "GFLOPs", "× bare", "clips/s", "× bare"], rows))


if __name__ == "__main__":
    main()
