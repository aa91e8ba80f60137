"""Supernet search entry point. The search itself lands with the supernet issue (#4)."""

import sys

if __name__ == "__main__":
    print(
        "search_supernet.py: not yet available — the supernet search lands with issue #4.\n"
        "What works today: `python scripts/describe.py space` (the search space) and\n"
        "`python scripts/describe.py genotype divided_space_time --out cell` (a cell and its diagram).",
        file=sys.stderr,
    )
    sys.exit(1)
