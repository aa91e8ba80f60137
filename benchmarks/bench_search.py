"""Cost of a search step: supernet modes against the bare backbone, second against first order.

    python benchmarks/bench_search.py            # built-in dataset size: batch 32, 3x8x32x32, tiny backbone
    python benchmarks/bench_search.py --quick    # tiny sizes: checks the script runs

Weight step: forward + backward of the supernet on one batch (all 19 candidates, K = 3).
Search step: architecture step (first or second order) + weight step, as the search loop runs
them. Mixed op: one MixedOp with all candidates at the tiny backbone's stage2 features, forward +
backward, against the sum of every candidate run alone on the same input (the overhead of
mixing), and each candidate's share of that sum (what a cheaper search would have to cut). All
candidates alternate within one run; times are medians.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from darts_video.backbones import create_backbone
from darts_video.space import SearchSpace
from darts_video.supernet import MixedOp, Supernet
from darts_video.supernet.architect import Architect
from darts_video.utils.memory import peak_memory_bytes
from timing import compare_table, markdown_table, time_interleaved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.frames, args.size, args.repeats = 2, 2, 16, 1
    torch.manual_seed(0)
    device = torch.device("cpu")
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    y = torch.randint(0, 8, (args.batch,))
    space = SearchSpace()

    def weight_step(model):
        return lambda: F.cross_entropy(model(x), y).backward()

    def search_step(model, order):
        optimizer = torch.optim.SGD(model.weight_parameters(), lr=0.01, momentum=0.9)
        architect = Architect(model, optimizer, order=order)

        def run():
            architect.step((x, y), (x, y), weight_lr=0.01)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            optimizer.zero_grad()

        return run

    steps = {"backbone only": weight_step(create_backbone("tiny"))}
    for mode in ("darts", "gdas", "pc"):
        steps[f"{mode} weight step"] = weight_step(Supernet(create_backbone("tiny"), space, mode=mode))
    steps["darts search step, 1st order"] = search_step(Supernet(create_backbone("tiny"), space, mode="darts"), 1)
    steps["darts search step, 2nd order"] = search_step(Supernet(create_backbone("tiny"), space, mode="darts"), 2)
    measured = time_interleaved(steps, device, repeats=args.repeats, label="Search steps", description=f"batch {tuple(x.shape)}")
    seconds = {name: m.median for name, m in measured.items()}
    base = seconds["backbone only"]
    rows = []
    for name, step in steps.items():
        memory = peak_memory_bytes(step, device)
        rows.append([name, f"{seconds[name] / base:.1f}", "n/a" if memory is None else f"{memory / 2**20:.0f}"])
    print(f"torch {torch.__version__}; batch {tuple(x.shape)}, {len(space.ops)} candidates, K = {space.num_nodes}, "
          f"{torch.get_num_threads()} CPU threads\n")
    print(compare_table(measured.values()) + "\n")
    print(markdown_table(["step", "x backbone", "peak MiB"], rows))
    print(f"\n{mixed_op_overhead(space, args, device)}")
    print(f"gdas / darts weight step: {seconds['gdas weight step'] / seconds['darts weight step']:.2f}; "
          f"pc / darts: {seconds['pc weight step'] / seconds['darts weight step']:.2f}; "
          f"2nd / 1st order search step: {seconds['darts search step, 2nd order'] / seconds['darts search step, 1st order']:.2f}")


def mixed_op_overhead(space: SearchSpace, args: argparse.Namespace, device: torch.device) -> str:
    """The mixed op's forward+backward over the sum of its candidates' standalone ones."""
    features = torch.randn(args.batch, 32, args.frames, args.size // 4, args.size // 4, requires_grad=True)  # stage2
    mixed = MixedOp(space.ops, 32, space.op_config)
    weights = torch.randn(len(space.ops)).softmax(0).requires_grad_()
    steps = {"mixed": lambda: mixed(features, weights).sum().backward()}
    steps.update({spec.name: (lambda op=op: op(features).sum().backward()) for spec, op in zip(space.ops, mixed.ops)})
    seconds = {name: m.median for name, m in time_interleaved(steps, device, repeats=args.repeats).items()}
    alone = sum(t for name, t in seconds.items() if name != "mixed")
    by_cost = sorted((spec.name for spec in space.ops), key=seconds.get, reverse=True)
    shares = markdown_table(["candidate alone", "ms", "share of the sum"],
                            [[name, f"{seconds[name] * 1e3:.1f}", f"{seconds[name] / alone:.1%}"] for name in by_cost])
    return (f"mixed op with {len(space.ops)} candidates at {tuple(features.shape)}: {seconds['mixed'] * 1e3:.0f} ms, "
            f"candidates alone {alone * 1e3:.0f} ms in sum: mixed / sum = {seconds['mixed'] / alone:.2f}\n\n"
            f"where the mixed op's time goes (forward + backward, most expensive first):\n\n{shares}")


if __name__ == "__main__":
    main()
