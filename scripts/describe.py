"""Print the search space or a genotype, and draw a genotype's cell.

    python scripts/describe.py space [--ops 'dot_*' identity] [--nodes 3] [--connections dense]
    python scripts/describe.py genotype divided_space_time [--out cell]   # writes cell.dot, .png and .svg
    python scripts/describe.py genotype runs/search/genotype.json --space --nodes 3
"""

from __future__ import annotations

import argparse
import sys

from darts_video.cli import DocstringHelpFormatter
from darts_video.diagram import genotype_to_text, write_diagram
from darts_video.errors import DartsVideoError
from darts_video.genotype import get_genotype, named_genotypes
from darts_video.ops import OpConfig
from darts_video.space import CONNECTIONS, SearchSpace


def add_space_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ops", nargs="+", default=["*"], metavar="PATTERN", help="candidate operations, shell-style patterns (default: all)")
    parser.add_argument("--nodes", type=int, default=3, help="operation nodes per cell, K (default: 3)")
    parser.add_argument("--connections", choices=tuple(CONNECTIONS), default="dense", help="which earlier states a node may read")
    parser.add_argument("--reduction", type=int, default=2, help="dot-product attention uses C // reduction channels")
    parser.add_argument("--heads", type=int, default=1, help="attention heads of dot-product operations")


def space_from(args: argparse.Namespace) -> SearchSpace:
    return SearchSpace.from_patterns(args.ops, num_nodes=args.nodes, connections=args.connections, op_config=OpConfig(args.reduction, args.heads))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    add_space_arguments(commands.add_parser("space", help="print the candidate operations and connections"))
    genotype_parser = commands.add_parser("genotype", help="print and draw a genotype", formatter_class=DocstringHelpFormatter)
    genotype_parser.add_argument("genotype", help=f"a genotype JSON file or a registered name: {', '.join(named_genotypes())}")
    genotype_parser.add_argument("--out", metavar="STEM", help="also draw the cell: STEM.dot, STEM.png and STEM.svg (default: print it only)")
    genotype_parser.add_argument("--space", action="store_true", help="also check the genotype belongs to the space given by the options below")
    add_space_arguments(genotype_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    try:
        if args.command == "space":
            print(space_from(args))
            return 0
        genotype = get_genotype(args.genotype, space_from(args) if args.space else None)
    except DartsVideoError as error:  # bad input; a bug keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(genotype_to_text(genotype))
    if args.out:
        written = write_diagram(genotype, args.out, title=args.genotype)
        print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
