"""Cost of every candidate operation, and the fused dot-product path against a naive one.

    python benchmarks/bench_ops.py                 # CPU, C=256 T=8 14x14 batch 4; L = 1568 and 12544
    python benchmarks/bench_ops.py --device cuda
    python benchmarks/bench_ops.py --quick         # tiny sizes: checks the script runs

Part 1: forward+backward time and peak memory of each operation, next to a 3x3x3 convolution of
the same width (the typical backbone layer a cell sits beside), as a ratio to that convolution.
Part 2: softmax attention through F.scaled_dot_product_attention (fused) against an explicit
softmax(QK^T/sqrt(d))V that materialises the L x L matrix, at each L and the same batch, forward
alone (inference) and forward+backward (training), as speed-ups and peak memory.
All numbers of a table are measured in one run, candidates alternating.
"""

from __future__ import annotations

import argparse
import math
import platform

import torch
from torch import nn

from darts_video.ops import create_op, list_ops
from darts_video.ops.activations import dot_product_attention
from darts_video.utils.memory import peak_memory_bytes
from timing import compare_table, markdown_table, time_interleaved


def forward_backward(module: nn.Module, x: torch.Tensor):
    def step() -> None:
        module(x).sum().backward()

    return step


def bench_operations(args: argparse.Namespace, device: torch.device) -> str:
    shape = (args.batch, args.channels, args.frames, args.size, args.size)
    x = torch.randn(shape, device=device, requires_grad=True)
    modules = {"conv3d 3x3x3 (reference)": nn.Conv3d(args.channels, args.channels, 3, padding=1)}
    modules.update({spec.name: create_op(spec, args.channels) for spec in list_ops()})
    steps = {name: forward_backward(module.to(device), x) for name, module in modules.items()}
    title = f"Operations, forward+backward, input {shape} (N, C, T, H, W), on {_device_name(device)}"
    measured = time_interleaved(steps, device, repeats=args.repeats, label=title, description="forward+backward")
    reference = measured["conv3d 3x3x3 (reference)"].median
    rows = [[name, f"{measured[name].median / reference:.2f}", _mib(peak_memory_bytes(step, device))] for name, step in steps.items()]
    return compare_table(measured.values()) + "\n\n" + markdown_table(["operation", "x conv3d", "peak MiB"], rows)


def bench_fused_attention(args: argparse.Namespace, device: torch.device) -> str:
    head_dim = args.channels // 2  # the dot-product ops' default: reduction 2, one head
    title = f"Softmax attention, batch {args.batch}, 1 head, d={head_dim}, on {_device_name(device)}"
    rows, measurements = [], []
    for length in args.lengths:
        q, k, v = (torch.randn(args.batch, 1, length, head_dim, device=device, requires_grad=True) for _ in range(3))

        def fused() -> torch.Tensor:
            return dot_product_attention(q, k, v, "softmax")

        def naive() -> torch.Tensor:
            weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(head_dim), dim=-1)  # (N, 1, L, L)
            return weights @ v

        steps = {
            "fused forward": torch.no_grad()(fused),
            "naive forward": torch.no_grad()(naive),
            "fused forward+backward": lambda: fused().sum().backward(),
            "naive forward+backward": lambda: naive().sum().backward(),
        }
        measured = time_interleaved(steps, device, repeats=args.repeats, label=title, description=f"L={length}")
        measurements += measured.values()
        seconds = {name: m.median for name, m in measured.items()}
        memory = {name: peak_memory_bytes(step, device) for name, step in steps.items() if "backward" in name}
        fused_memory, naive_memory = memory["fused forward+backward"], memory["naive forward+backward"]
        rows.append([
            str(length),
            f"**{seconds['naive forward'] / seconds['fused forward']:.2f}**",
            f"**{seconds['naive forward+backward'] / seconds['fused forward+backward']:.2f}**",
            _mib(fused_memory),
            _mib(naive_memory),
            _mib(args.batch * length * length * 4),
        ])
    header = ["L", "fwd speed-up", "fwd+bwd speed-up", "fused fwd+bwd peak MiB", "naive fwd+bwd peak MiB", "N x L x L fp32 MiB"]
    return compare_table(measurements) + "\n\n" + markdown_table(header, rows)


def _mib(num_bytes: int | None) -> str:
    return "n/a" if num_bytes is None else f"{num_bytes / 2**20:.1f}"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=14)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1568, 12544], help="token counts L = T*H*W")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke test of the script")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.channels, args.frames, args.size, args.lengths, args.repeats = 1, 16, 2, 4, [64], 1
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}\n")
    print(bench_operations(args, device), end="\n\n")
    print(bench_fused_attention(args, device))

if __name__ == "__main__":
    main()
