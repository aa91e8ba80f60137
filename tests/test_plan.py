"""The planner: every field of its report, the largest batch under the memory limit, the
selection's evaluations as the selector runs them, and its projection against a real search."""

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import darts_video.supernet.select as select
from darts_video.backbones import create_backbone
from darts_video.plan import GIB, PlanOptions, _largest_batch, plan_search, process_startup_seconds, project, selection_evaluations
from darts_video.plan_report import build_plan_parser, format_plan, run_plan
from darts_video.search import run_search
from darts_video.search_config import SearchConfig
from darts_video.space import SearchSpace
from darts_video.supernet import Supernet

REPO = Path(__file__).resolve().parents[1]
OPS = ["identity", "map_temporal_sigmoid", "dot_temporal_softmax"]
TINY = ["--num-clips", "32", "--epochs", "2", "--warmup-epochs", "1", "--batch-size", "4", "--ops", *OPS, "--nodes", "2",
        "--selection-clips", "8", "--device", "cpu", "--points", "stage2", "stage3"]


def test_the_plan_reports_every_field_per_point_and_keeps_the_largest_batch_under_the_limit(tmp_path, capsys):
    out = tmp_path / "plan.json"
    limit_gib = 0.02
    run_plan(build_plan_parser().parse_args([*TINY, "--memory-limit", str(limit_gib), "--plan-steps", "1", "--plan-max-batch", "32",
                                             "--plan-without-data", "--num-frames", "4", "--crop-size", "16", "--plan-classes", "8",
                                             "--shortlist-epochs", "4", "--shortlist-rounds", "3", "--plan-out", str(out)]))
    printed = capsys.readouterr().out
    for text in ("| the backbone alone (training step) |", "| cell at stage2 alone |", "| cell at stage3 alone |", "| supernet, every point |",
                 "peak MiB", "weight step ms", "arch step ms", "data wait ms/step", "memory per clip", "largest batch per device",
                 "data: none read (--plan-without-data)",
                 "projected wall time", "warm-up epochs", "search epochs", "checkpoints", "selection (perturbation): 11 evaluations of 8 clips",
                 "shortlist: "):
        assert text in printed, (text, printed)
    plan = json.loads(out.read_text())
    assert set(plan["points"]) == {"stage2", "stage3"} and plan["clip_shape"] == [3, 4, 16, 16] and plan["steps_per_epoch"] == 4
    for cost in [*plan["points"].values(), plan["total"]]:
        assert cost["peak_bytes"] > plan["backbone"]["peak_bytes"] > 0 and cost["weight_s"] > 0 and cost["arch_s"] > 0
    assert plan["backbone"]["arch_s"] is None and plan["data_batch_s"] is None and plan["selection"]["seconds"] > 0
    assert set(plan["projection"]) == {"setup_s", "warmup_epochs_s", "search_epochs_s", "checkpoints_s", "selection_s", "shortlist_s", "total_s"}
    shortlist = plan["shortlist"]  # 6 cells of 4 epochs racing: every path of the 2-node space's other cells scored, its cells trained
    assert shortlist["cells"] == SearchConfig.shortlist and shortlist["train_step_s"] > 0 and shortlist["seconds"] == plan["projection"]["shortlist_s"] > 0
    # the racing rounds at most: 3 cells × 8 epochs and 2 × 12 trained (no data wait here), plus their scoring; not in the total
    assert shortlist["racing_s"] > 48 * plan["steps_per_epoch"] * shortlist["train_step_s"] and "later rounds" in printed
    assert plan["memory_limit_bytes"] == round(limit_gib * GIB)
    largest, probes = plan["largest_batch"], {p["batch"]: p for p in plan["probes"]}
    assert all(p["peak_bytes"] <= plan["memory_limit_bytes"] for p in probes.values() if p["fits"])
    assert 1 <= largest < 32 and probes[largest]["fits"] and not probes[largest + 1]["fits"]  # the limit binds: bisected to one clip


def test_the_plan_commands_refuse_a_bad_plan_option_naming_it(monkeypatch, capsys):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "plan_search.py"), "--memory-limit", "0"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "--memory-limit must be positive" in result.stderr, result.stderr
    spec = importlib.util.spec_from_file_location("search_script", REPO / "scripts" / "search_supernet.py")  # scripts/ is no package
    search_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search_script)
    monkeypatch.setattr(sys, "argv", ["search_supernet.py", "--plan", "--memory-limit", "-1"])
    assert search_script.main() == 2 and "--memory-limit must be positive" in capsys.readouterr().err


def test_the_batch_search_finds_the_largest_fitting_batch_and_does_not_run_what_it_predicts_too_large():
    run = []

    def probe(batch: int) -> int:  # a step whose peak grows linearly: 100 MB + 30 MB per clip
        run.append(batch)
        return 100 + 30 * batch

    probes = _largest_batch(probe, 8, limit=1000, max_batch=256, start_peak=probe(8))
    assert max(p.batch for p in probes if p.fits) == 30  # 100 + 30 * 30 = 1000
    assert max(run) <= 32 and all(p.how == "predicted" for p in probes if p.batch not in run)
    shrunk = _largest_batch(probe, 64, limit=1000, max_batch=256, start_peak=None)
    assert max(p.batch for p in shrunk if p.fits) == 30 and all(not p.fits for p in shrunk if p.batch > 30)
    assert max(p.batch for p in _largest_batch(probe, 8, 1000, max_batch=16, start_peak=None) if p.fits) == 16


def test_the_selection_projection_counts_the_evaluations_the_selector_runs(monkeypatch):
    space = SearchSpace.from_patterns(OPS, num_nodes=3)
    net = Supernet(create_backbone("tiny", num_classes=4), space, points=["stage2"])
    active = []

    def scores(net, batches, mask, metric=select.correct):  # the evaluation's running candidates, and random scores
        active.append(sum(len(ops) for ops in mask.ops))
        return torch.rand(8).round().double()

    monkeypatch.setattr(select, "per_clip_scores", scores)
    select.select_by_perturbation(net, [])
    assert active == selection_evaluations(space)


def test_the_projection_of_a_short_search_is_near_what_the_search_takes(tmp_path):
    """The arithmetic of the projection (steps per epoch, epochs, the parts' sum), not a timing
    claim: a generous bound, as the machine may be shared (benchmarks/plan_vs_search.py measures)."""
    config = SearchConfig(out=str(tmp_path / "run"), num_clips=32, epochs=2, warmup_epochs=1, batch_size=4, ops=OPS, nodes=2,
                          selection_clips=8, device="cpu")
    plan = plan_search(config, PlanOptions(steps=1, memory_limit_gib=1, max_batch=8))
    assert project(plan, config) == plan.projection and plan.projection["total_s"] == pytest.approx(
        sum(v for k, v in plan.projection.items() if k != "total_s"))
    started = time.perf_counter()
    run_search(config)
    real_s = time.perf_counter() - started
    metrics = [json.loads(line) for line in (Path(config.out) / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["step"] == plan.steps_per_epoch and plan.data_batch_s > 0 and list(plan.points) == ["stage2"]
    assert 1 / 3 < plan.projection["total_s"] / real_s < 3, (plan.projection, real_s)
    assert format_plan(plan).count("\n") > 10


def test_the_process_startup_the_projection_adds_is_the_process_age():
    first = process_startup_seconds()
    time.sleep(0.3)
    second = process_startup_seconds()
    assert first > 0 and 0.25 < second - first < 1.0  # clock ticks of 10 ms: a process's age, not a constant
