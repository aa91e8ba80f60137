"""Searched cells against the bare backbone, non-local blocks and random cells: the evidence run.

    python scripts/run_experiment.py            # built-in dataset, CPU, about 77 minutes on 2 cores (measured 2026-12-03)
    python scripts/run_experiment.py --quick    # every arm at a tiny budget: a smoke test in minutes

Writes RUN/report.md, report.json, accuracy.png and alpha.png (default RUN: runs/experiment).
Re-running the same command resumes: finished arms are skipped, an interrupted one continues.
"""

import sys

from darts_video.errors import DartsVideoError
from darts_video.experiment import build_parser, parse_config, run_experiment


def main() -> int:
    try:
        config = parse_config()
        report = run_experiment(config)
    except DartsVideoError as error:  # bad input; a bug keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {config.out}/report.md (and report.json, accuracy.png, alpha.png); {len(report['runs'])} retrained runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
