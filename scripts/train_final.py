"""Retrain a searched cell (or a baseline) and test it: ``python scripts/train_final.py``
(``--help`` lists every option; ``--eval-only`` tests a checkpoint)."""

import sys

from darts_video.engine import distributed
from darts_video.errors import DartsVideoError
from darts_video.train import evaluate_checkpoint, run_training
from darts_video.train_config import build_parser, config_from_args


def main() -> int:
    try:
        config, eval_only, checkpoint = config_from_args(build_parser().parse_args())
        if eval_only:
            evaluate_checkpoint(config, checkpoint)
        else:
            run_training(config)
    except DartsVideoError as error:  # bad input; a bug keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        distributed.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
