"""Does the built-in procedural dataset need attention? Accuracy of the tiny backbone, bare and
with one attention block after stage2, trained with one recipe.

    python benchmarks/bench_synthetic.py                      # 3000 clips x 8 epochs, seed 0
    python benchmarks/bench_synthetic.py --seeds 0 1 --arms bare non_local_block
    python benchmarks/bench_synthetic.py --quick              # tiny budget: checks the script runs

Prints top-1 and accuracy per class pair (spatial, temporal, space-time, motion) on the val
split, and seconds per run. The dataset's design says: the bare network solves the motion pair
only (50 % inside the long-range pairs); spatial attention adds the spatial pair, temporal
attention the temporal pair, and attention over space-time positions all of them. The
``global_context`` arm (no attention map: every position gets the clip's mean value) measures
how much of that needs a pairwise comparison at all.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from darts_video.backbones import create_backbone
from darts_video.cell import Cell, Sink
from darts_video.data import EpochSampler
from darts_video.data.synthetic import PAIRS, SYNTHETIC_TRANSFORM, SyntheticVideoDataset
from darts_video.genotype import Genotype, Node, get_genotype
from darts_video.ops import NonLocalBlock, OpSpec
from timing import markdown_table


def one_op_cell(dim: str) -> Genotype:
    return Genotype([Node(0, OpSpec("dot", dim, "softmax"))], sink=(1,))


class GlobalContext(nn.Module):
    """The non-local cell with its attention weights fixed at 1 / L: every position receives the
    clip's mean value, ``x + sink(proj(mean_THW(v(x))))``. No pairwise comparison at all: if it
    scores like the non-local cell, the dataset's relations are readable from a global summary."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.value = nn.Conv3d(channels, channels // 2, kernel_size=1)
        self.proj = nn.Conv3d(channels // 2, channels, kernel_size=1)
        self.sink = Sink(1, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, T, H, W)
        context = self.value(x).mean(dim=(2, 3, 4), keepdim=True).expand(-1, -1, *x.shape[2:])  # (N, C/2, T, H, W)
        return x + self.sink([self.proj(context)])


ARMS = {
    "bare": None,
    "non_local_block": lambda channels: NonLocalBlock(channels),
    "non_local_cell": lambda channels: Cell(get_genotype("non_local"), channels),
    "global_context": GlobalContext,
    "dot_spatial_softmax": lambda channels: Cell(one_op_cell("spatial"), channels),
    "dot_temporal_softmax": lambda channels: Cell(one_op_cell("temporal"), channels),
    "divided_space_time": lambda channels: Cell(get_genotype("divided_space_time"), channels),
}


def train_and_evaluate(arm: str, args: argparse.Namespace, seed: int) -> tuple[float, dict[str, float], float]:
    torch.manual_seed(seed)
    model = create_backbone("tiny", num_classes=8)
    if ARMS[arm] is not None:
        model.insert("stage2", ARMS[arm](model.insertion_points()["stage2"]))
    train = DataLoader(SyntheticVideoDataset(args.train, "train", seed, args.fresh), batch_size=args.batch,
                       sampler=EpochSampler(range(args.train), shuffle=True, seed=seed))  # keys (epoch, index)
    val = DataLoader(SyntheticVideoDataset(args.val, "val", seed), batch_size=128)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.epochs * len(train))
    start = time.perf_counter()
    for epoch in range(args.epochs):
        train.sampler.set_epoch(epoch)
        model.train()
        for batch in train:
            loss = F.cross_entropy(model(SYNTHETIC_TRANSFORM.normalize(batch["video"])), batch["label"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    seconds = time.perf_counter() - start
    model.eval()
    correct, labels = [], []
    with torch.no_grad():
        for batch in val:
            correct.append(model(SYNTHETIC_TRANSFORM.normalize(batch["video"])).argmax(1) == batch["label"])
            labels.append(batch["label"])
    correct, labels = torch.cat(correct).float(), torch.cat(labels)
    per_pair = {name: 100 * correct[(labels == a) | (labels == b)].mean().item() for name, (a, b) in PAIRS.items()}
    return 100 * correct.mean().item(), per_pair, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", nargs="+", choices=tuple(ARMS), default=list(ARMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--train", type=int, default=3000, help="training clips")
    parser.add_argument("--val", type=int, default=800, help="validation clips")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--fixed", dest="fresh", action="store_false", help="the same training clips every epoch")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.train, args.val, args.epochs, args.arms = 64, 32, 1, ["bare", "dot_temporal_softmax", "global_context"]
    rows = []
    for arm in args.arms:
        runs = [train_and_evaluate(arm, args, seed) for seed in args.seeds]
        top1 = [run[0] for run in runs]
        spread = f" ± {statistics.stdev(top1):.1f}" if len(top1) > 1 else ""
        pairs = [f"{statistics.mean(run[1][name] for run in runs):.1f}" for name in PAIRS]
        rows.append([arm, f"{statistics.mean(top1):.1f}{spread}", *pairs, f"{statistics.mean(run[2] for run in runs):.0f}"])
        print(f"{arm}: top-1 {rows[-1][1]}", flush=True)
    print(f"\n{args.train} {'fresh' if args.fresh else 'fixed'} training clips x {args.epochs} epochs, {args.val} val clips, seeds {args.seeds}, {torch.get_num_threads()} threads\n")
    print(markdown_table(["arm", "top-1", *(f"{name} pair" for name in PAIRS), "train s"], rows))


if __name__ == "__main__":
    main()
