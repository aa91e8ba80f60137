"""Search an attention cell: ``python scripts/search_supernet.py`` (``--help`` lists every option);
``--plan`` prints the search's plan instead (``scripts/plan_search.py``)."""

import os
import sys
from pathlib import Path

from darts_video.engine import distributed
from darts_video.errors import DartsVideoError
from darts_video.plan import process_startup_seconds
from darts_video.plan_report import build_plan_parser, options_from_args, run_plan
from darts_video.search import run_search


def build_parser():
    """The search's options and the plan's (read with ``--plan`` only)."""
    return build_plan_parser(search=True)


def main() -> int:
    try:
        args = build_parser().parse_args()
        if args.plan:
            run_plan(args, process_startup_seconds())
            return 0
        config = options_from_args(args)[0]
        run_search(config)
    except DartsVideoError as error:  # bad input; a bug keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        distributed.teardown()
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun sets RANK; alone it is 0
        print(f"searched cell: {Path(config.out) / 'genotype.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
