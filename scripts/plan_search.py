"""Plan a search before running it: ``python scripts/plan_search.py [search options]`` (``--help``)."""

import json
import sys
from pathlib import Path

from darts_video.backbones.pretrained import PretrainedWeightsError
from darts_video.plan import plan_search
from darts_video.plan_report import build_plan_parser, format_plan, options_from_args
from darts_video.utils.files import atomic_write_text

build_parser = build_plan_parser  # what tests/test_help.py reads


def main() -> int:
    try:
        config, options, out = options_from_args(build_plan_parser().parse_args())
        plan = plan_search(config, options)
    except (ValueError, KeyError, PretrainedWeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_plan(plan))
    if out:
        atomic_write_text(Path(out), json.dumps(plan.to_dict(), indent=2) + "\n")
        print(f"plan written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
