"""The planner's projection against the real search it plans, part by part, in one run.

    python benchmarks/plan_vs_search.py                 # the default search on the built-in dataset (about 9 min on 2 cores: the plan, then the search)
    python benchmarks/plan_vs_search.py --quick         # a tiny search: checks the script runs
    python benchmarks/plan_vs_search.py -- --mode gdas  # options after -- go to both commands (search_supernet.py reads plan options only with --plan)

Runs ``scripts/plan_search.py`` with the given search options, then ``scripts/search_supernet.py``
with the same ones (into a temporary run directory), one after the other, and compares the
projection with what the search took: its warm-up and search epochs (data + compute time of
``metrics.jsonl``), its selection and shortlist (``summary.json``) and its wall time as a process (which also
holds the interpreter's start-up and imports, which the projection does not). Goal: the projected
wall time within 20 % of the real one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import markdown_table

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--num-clips", "64", "--batch-size", "8", "--epochs", "2", "--warmup-epochs", "1", "--ops", "identity", "map_temporal_sigmoid",
         "dot_temporal_softmax", "--nodes", "2", "--selection-clips", "16", "--plan-max-batch", "16"]  # plan options: read by the planner only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny search instead of the default one")
    parser.add_argument("--run-dir", help="where the search writes its run, kept (default: a temporary folder, removed)")
    parser.add_argument("search_options", nargs="*", help="options of both commands (after --)")
    args = parser.parse_args()
    options = (QUICK if args.quick else []) + args.search_options
    with tempfile.TemporaryDirectory() as folder:
        plan_file, run = Path(folder) / "plan.json", Path(args.run_dir or Path(folder) / "run")
        planned = _run([sys.executable, str(REPO / "scripts" / "plan_search.py"), *options, "--plan-out", str(plan_file)])
        print(planned.stdout)
        searched = _run([sys.executable, str(REPO / "scripts" / "search_supernet.py"), *options, "--out", str(run)])
        plan = json.loads(plan_file.read_text())
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        summary = json.loads((run / "summary.json").read_text())
    warmup = plan["description"]["warmup_epochs"]
    epoch_s = [m["time/data_s"] + m["time/compute_s"] for m in metrics]
    real = {"warmup_epochs_s": sum(epoch_s[:warmup]), "search_epochs_s": sum(epoch_s[warmup:]),
            "selection_s": summary["selection_seconds"], "shortlist_s": (summary["shortlist"] or {}).get("seconds", 0.0),
            "total_s": searched.seconds}
    projected = plan["projection"]
    rows = [[name.removesuffix("_s").replace("_", " "), f"{projected[name]:.1f}", f"{real[name]:.1f}", f"{projected[name] / real[name]:.2f}"]
            for name in real if real[name] > 0]
    steps = [m["step"] for m in metrics]
    print(f"planned {plan['steps_per_epoch']} steps per epoch, the search ran {steps[0]} in its first epoch ({steps[-1]} in all); "
          f"planning took {planned.seconds:.0f} s")
    print(markdown_table(["part", "projected s", "real s", "projected / real"], rows))
    error = projected["total_s"] / real["total_s"] - 1
    print(f"\nprojected wall time {projected['total_s']:.0f} s, real {real['total_s']:.0f} s (the process, imports included): "
          f"{error:+.1%} ({'within' if abs(error) <= 0.2 else 'NOT within'} 20 %)")


class _Finished:
    def __init__(self, stdout: str, seconds: float) -> None:
        self.stdout, self.seconds = stdout, seconds


def _run(command: list[str]) -> _Finished:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return _Finished(result.stdout, time.perf_counter() - started)


if __name__ == "__main__":
    main()
