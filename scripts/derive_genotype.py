"""Re-derive the genotype of any search checkpoint, and export it as JSON and a cell diagram.

    python scripts/derive_genotype.py runs/search/checkpoints/latest.pt [--out cell]

Reads the run's config.json (two folders up) for the search space, takes α and β from the
checkpoint, and writes OUT.json plus the cell diagram OUT.dot, OUT.png and OUT.svg.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from darts_video.cli import DocstringHelpFormatter
from darts_video.diagram import genotype_to_text, write_diagram
from darts_video.engine import CheckpointError, load_checkpoint
from darts_video.search_config import SearchConfig
from darts_video.supernet import ArchitectureParameters, derive_genotype


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a search checkpoint (RUN/checkpoints/*.pt)")
    parser.add_argument("--out", type=Path, help="output stem (default: RUN/derived_epoch_<N>)")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    run = args.checkpoint.resolve().parent.parent
    try:
        state = load_checkpoint(args.checkpoint)
        config = SearchConfig(**json.loads((run / "config.json").read_text()))
    except (CheckpointError, OSError, TypeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    arch = ArchitectureParameters(config.space())
    arch_state = {key.removeprefix("arch."): value for key, value in state["model"].items() if key.startswith("arch.")}
    try:
        arch.load_state_dict(arch_state)
    except RuntimeError as error:
        print(f"error: {args.checkpoint}: its α/β do not fit the search space of {run / 'config.json'}: {error}", file=sys.stderr)
        return 2
    epoch = state["epoch"] + 1
    genotype = derive_genotype(arch, {**config.provenance(epoch), "checkpoint": str(args.checkpoint)})
    stem = args.out or run / f"derived_epoch_{epoch:03d}"
    genotype.save(stem.with_suffix(".json"))
    written = write_diagram(genotype, stem, title=f"{run.name}, epoch {epoch}")
    print(genotype_to_text(genotype))
    print("wrote " + ", ".join(str(p) for p in [stem.with_suffix(".json"), *written]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
