"""Plan a search before running it: ``python scripts/plan_search.py [search options]`` (``--help``)."""

import sys

from darts_video.errors import DartsVideoError
from darts_video.plan import process_startup_seconds
from darts_video.plan_report import build_plan_parser, run_plan

build_parser = build_plan_parser  # what tests/test_help.py reads


def main() -> int:
    try:
        run_plan(build_plan_parser().parse_args(), process_startup_seconds())
    except DartsVideoError as error:  # bad input; a bug keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
