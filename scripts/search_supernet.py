"""Search an attention cell: ``python scripts/search_supernet.py`` (``--help`` lists every option)."""

import sys

from darts_video.data import TooManyBadVideos
from darts_video.engine import CheckpointError, RunConfigMismatch
from darts_video.genotype import GenotypeError
from darts_video.search import NonFiniteLoss, run_search
from darts_video.search_config import build_parser, config_from_args


def main() -> int:
    try:
        config = config_from_args(build_parser().parse_args())
        genotype = run_search(config)
    except (ValueError, KeyError, GenotypeError, RunConfigMismatch, CheckpointError, NonFiniteLoss, TooManyBadVideos) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"searched cell: {genotype}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
