"""Re-derive the cell of any search checkpoint with the run's selector, and write it with its diagram.

    python scripts/derive_genotype.py runs/search/checkpoints/latest.pt [--out cell] [--subset 1]

Reads the run's config.json (two folders up) for the search space, the selector and the data
options, rebuilds the supernet from the checkpoint and runs the selector: the perturbation
selector measures on the run's search-val half (``--subset N`` draws another subset of it, to
check that the supported decisions stay; ``--video-root`` etc. point at the videos if they moved).
Writes OUT.json plus the cell diagram OUT.dot, OUT.png and OUT.svg. When the checkpoint is the
one the run's RUN/genotype.json was selected from, with the same selector, it also says which of
that cell's supported decisions the re-derivation keeps, loses or adds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from darts_video.cli import DocstringHelpFormatter
from darts_video.derive import compare_supported, format_decisions, load_search, select_cell, selector_cell_path
from darts_video.diagram import genotype_to_text, write_diagram
from darts_video.errors import DartsVideoError
from darts_video.genotype import Genotype
from darts_video.supernet.select import SELECTORS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a search checkpoint (RUN/checkpoints/*.pt)")
    parser.add_argument("--out", type=Path, help="output stem (default: RUN/derived_epoch_<N>[_subset<K>])")
    parser.add_argument("--selector", choices=SELECTORS, help="default: the run's")
    parser.add_argument("--subset", type=int, default=0, help="which random subset of the search-val half to select on (0: the search's own)")
    parser.add_argument("--selection-clips", type=int, help="default: the run's")
    parser.add_argument("--device", default="cpu", help="where the supernet runs")
    for name in ("annotations", "video-root", "categories"):
        parser.add_argument(f"--{name}", help="the run's data option, where the videos have moved (default: the run's)")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    run = args.checkpoint.resolve().parent.parent
    overrides = {k: v for k, v in vars(args).items() if k in ("selector", "selection_clips", "annotations", "video_root", "categories") and v is not None}
    try:
        search = load_search(args.checkpoint, args.device, **overrides)
    except DartsVideoError as error:  # bad input; a bug keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    config, epoch = search.config, search.epoch
    provenance = {**config.provenance(epoch), "checkpoint": str(args.checkpoint)}
    genotype, failures = select_cell(config, search.model, search.classes, search.val_indices, provenance, search.gradients, args.subset)
    if failures:
        print(f"{len(failures)} selection videos failed to decode and were left out, e.g. {failures[0]}")
    reference = searched_cell(run, config.selector, epoch)  # read before OUT may replace it
    stem = args.out or run / (f"derived_epoch_{epoch:03d}" + (f"_subset{args.subset}" if args.subset else ""))
    genotype.save(stem.with_suffix(".json"))
    written = write_diagram(genotype, stem, title=f"{run.name}, epoch {epoch}, {config.selector}")
    print(genotype_to_text(genotype))
    print(format_decisions(genotype))
    if reference is not None:
        print(compare_supported(reference, genotype).describe())
    print("wrote " + ", ".join(str(p) for p in [stem.with_suffix(".json"), *written]))
    return 0


def searched_cell(run: Path, selector: str, epoch: int) -> Genotype | None:
    """The cell ``selector`` selected from the checkpoint of ``epoch`` (RUN/genotype.json, or
    RUN/genotype_<selector>.json where a shortlist chose among it and others), else None."""
    path = selector_cell_path(run, selector)
    if not path.exists():
        return None
    genotype = Genotype.load(path)
    return genotype if genotype.selector == selector and genotype.provenance.get("epoch") == epoch else None


if __name__ == "__main__":
    sys.exit(main())
