"""Search an attention cell: ``python scripts/search_supernet.py`` (``--help`` lists every option)."""

import os
import sys
from pathlib import Path

from darts_video.engine import distributed
from darts_video.errors import DartsVideoError
from darts_video.search import run_search
from darts_video.search_config import build_parser, config_from_args


def main() -> int:
    try:
        config = config_from_args(build_parser().parse_args())
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
