"""The evidence experiment: every arm in the report, resume, random cells, the verdict, bad input."""

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

import darts_video.experiment as experiment
from darts_video.experiment import ExperimentConfig, distinct_random_cells, parse_config, run_experiment
from darts_video.report import collapsed, proxy_ranking, stability, verdict
from darts_video.space import SearchSpace
from darts_video.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
GROUPS = ["bare", "nonlocal", "non_local cell", "random", "searched (darts-1st)", "searched (darts-1st, argmax)", "searched (gdas)",
          "searched (pc)"]


def tiny(tmp_path, **overrides) -> ExperimentConfig:
    options = dict(out=str(tmp_path / "experiment"), ops=["identity", "dot_temporal_softmax", "map_spatial_sigmoid"], nodes=2,
                   seeds=2, random_cells=5, search_clips=64, search_epochs=2, search_warmup_epochs=1, search_batch_size=8, num_clips=64, epochs=1,
                   warmup_epochs=0, num_val_clips=32, batch_size=8, test_clips=1, test_crops=1, device="cpu", selection_clips=16,
                   compare_modes=[], selectors=["perturbation"], shortlist=2, shortlist_epochs=1)
    return ExperimentConfig(**{**options, **overrides})


def test_quick_experiment_from_the_command_line_reports_every_arm(tmp_path):
    out = tmp_path / "quick"
    smaller = ["--ops", "identity", "dot_temporal_softmax", "map_spatial_sigmoid", "--nodes", "2", "--num-clips", "32", "--search-clips",
               "32", "--num-val-clips", "16", "--selection-clips", "16", "--batch-size", "8", "--search-batch-size", "8"]
    subprocess.run([sys.executable, str(REPO / "scripts" / "run_experiment.py"), "--quick", *smaller, "--out", str(out)],
                   check=True, capture_output=True, text=True, cwd=tmp_path)
    report = json.loads((out / "report.json").read_text())
    assert [arm["group"] for arm in report["arms"]] == GROUPS
    assert [arm["runs"] for arm in report["arms"]] == [2, 2, 2, 3, 2, 2, 1, 1]
    assert set(report["verdict"]) >= {"beats_bare_by_20", "beats_nonlocal_by_1", "beats_random_by_1_std", "interval_above_nonlocal",
                                      "non_local_cell_within_1.5_of_block", "node1_supported_in_every_seed", "no_collapsed_test"}
    assert set(report["differences"]) == {"nonlocal", "non_local cell", "random", "bare"}
    for d in report["differences"].values():
        assert d["low"] <= d["difference"] <= d["high"]
    assert set(report["proxy"]) == {"darts-1st-seed0", "darts-1st-seed1", "mean_tau"}
    assert set(report["proxy"]["darts-1st-seed0"]["scores"]) == {"cell1", "cell2", "cell3"}
    assert len(report["stability"]["nodes"]["node 1"]["chosen"]) == 2
    assert [set(e) for e in report["stability"]["cells_effect"]] == [{"points", "stderr", "clips", "supported"}] * 2
    assert [set(r) for r in report["stability"]["rederivation"]] == [{"kept", "lost", "new", "stable"}] * 2
    assert "supported_decisions_stay_on_another_subset" in report["verdict"]
    assert (out / "searches" / "darts-1st-seed0" / "genotype_perturbation_subset1.json").exists()
    # the quick shortlist of 2: the final choice's margin per seed; the selector's decisions from its own cell
    assert [set(r) >= {"margin", "margin_stderr", "supported", "seconds"} for r in report["stability"]["shortlist"]] == [True] * 2
    assert (out / "searches" / "darts-1st-seed0" / "genotype_perturbation.json").exists()
    assert set(report["arms"][0]["long_range"]) == {"spatial pair", "temporal pair", "spacetime pair", "motion pair"}
    markdown = (out / "report.md").read_text()
    assert all(f"| {group} |" in markdown for group in GROUPS) and "## Collapse diagnostics per search epoch" in markdown
    assert "| cells' effect (points) | " in markdown and "| shortlist's choice: margin over the runner-up | " in markdown
    assert "## Differences of the main arm (95 % Welch interval)" in markdown and "Kendall's τ" in markdown
    assert "- darts-1st-seed0: τ = " in markdown and " over 3 cells (3 pairs)" in markdown
    for png in ("accuracy.png", "alpha.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    search = report["searches"]["darts-1st-seed0"]
    assert [d["epoch"] for d in search["diagnostics"]] == [1, 2] and search["seconds"] > 0


def test_quick_changes_the_defaults_and_options_beside_it_still_apply():
    quick = parse_config(["--quick"])
    assert (quick.seeds, quick.epochs, quick.out) == (experiment.QUICK["seeds"], experiment.QUICK["epochs"], "runs/experiment_quick")
    mixed = parse_config(["--quick", "--epochs", "3", "--out", "elsewhere"])
    assert (mixed.seeds, mixed.epochs, mixed.out) == (experiment.QUICK["seeds"], 3, "elsewhere")
    assert parse_config([]) == ExperimentConfig()


def test_every_arm_is_retrained_with_the_retraining_defaults():
    """The experiment compares cells under `train_final.py`'s own recipe: a default changed in one
    place (the 12-epoch cosine that lets every seed converge, docs/retraining.md) changes both."""
    trained, default = ExperimentConfig().train_config("out", seed=0, baseline="nonlocal"), TrainConfig(baseline="nonlocal")
    for name in ("num_clips", "epochs", "warmup_epochs", "batch_size", "optimizer", "lr", "weight_decay", "num_val_clips"):
        assert getattr(trained, name) == getattr(default, name), name


def test_an_interrupted_experiment_resumes_and_runs_only_what_is_missing(tmp_path, monkeypatch):
    config = tiny(tmp_path)
    first = run_experiment(config)
    assert not list(Path(config.out).rglob("model.pt2"))  # the arms skip the export
    random_cells = sorted((Path(config.out) / "random_cells").iterdir())
    assert len(random_cells) == 5
    assert (Path(config.out) / "searches" / "darts-1st-seed0" / "path_scores.json").exists()

    (Path(config.out) / "retrain" / "bare-seed1" / "summary.json").unlink()  # as if killed during its test
    calls = []
    monkeypatch.setattr(experiment, "run_search", lambda c: calls.append(("search", c.out)))
    original = experiment.run_training
    monkeypatch.setattr(experiment, "run_training", lambda c: calls.append(("retrain", c.out)) or original(c))
    second = run_experiment(config)
    assert calls == [("retrain", str(Path(config.out) / "retrain" / "bare-seed1"))]
    assert [r["test"] for r in second["runs"]] == [r["test"] for r in first["runs"]]  # same checkpoint, same test


def test_distinct_random_cells_are_valid_distinct_and_uniform():
    space = SearchSpace.from_patterns(["identity", "dot_temporal_softmax", "map_spatial_sigmoid"], num_nodes=2)
    assert space.num_cells == 3 * 6
    every = distinct_random_cells(space, space.num_cells, seed=0)
    assert len({tuple(c.nodes) for c in every}) == space.num_cells
    for cell in every:
        space.check(cell)
    firsts = collections.Counter(tuple(distinct_random_cells(space, 5, seed)[0].nodes) for seed in range(3600))
    expected = 3600 / space.num_cells
    chi_square = sum((count - expected) ** 2 / expected for count in firsts.values())
    assert len(firsts) == space.num_cells and chi_square < 17 + 5 * (2 * 17) ** 0.5
    with pytest.raises(ValueError, match="19 distinct random cells asked of a search space with 18 cells"):
        distinct_random_cells(space, 19, seed=0)


def arm(mean: float, std: float = 0.0, runs: int = 3) -> dict:
    return {"top1_mean": mean, "top1_std": std, "runs": runs}


def no_extras() -> dict:
    return {"differences": {}, "runs": [], "stability": {"nodes": {}}, "collapsed": []}


def test_verdict_applies_the_bars_with_their_margins():
    arms = {"bare": arm(60), "nonlocal": arm(84), "random": arm(75, 6), "searched (gdas)": arm(85.5)}
    result = verdict(arms, "searched (gdas)", no_extras())
    assert result["beats_bare_by_20"] == {"passed": True, "margin": 5.5}
    assert result["beats_nonlocal_by_1"] == {"passed": True, "margin": 0.5}
    assert result["beats_random_by_1_std"] == {"passed": True, "margin": 4.5}
    arms["random"] = arm(80, 6)
    assert verdict(arms, "searched (gdas)", no_extras())["beats_random_by_1_std"] == {"passed": False, "margin": -0.5}
    extras = no_extras() | {"differences": {"nonlocal": {"low": -1.2}}, "collapsed": [{"name": "x"}],
                            "runs": [{"genotype": {"nodes": [{"op": {"name": "dot_spatial_softmax"}}]}, "test": {"video/top1": 62.0}}]}
    result = verdict(arms | {"non_local cell": arm(82)}, "searched (gdas)", extras)
    assert result["interval_above_nonlocal"] == {"passed": False, "margin": -1.2}
    assert result["non_local_cell_within_1.5_of_block"] == {"passed": False, "margin": -0.5}
    assert result["softmax_cells_clear_bare_by_3"] == {"passed": False, "margin": -1.0}
    assert result["no_collapsed_test"]["passed"] is False


def test_kendall_tau_of_the_proxy_pairs_each_cells_score_with_its_retrained_top1():
    runs = [{"group": "random", "name": f"random-cell{i}", "test": {"video/top1": top1}} for i, top1 in enumerate([70, 80, 75, 90], start=1)]
    proxy = {"darts-1st-seed0": {"cell1": 10, "cell2": 30, "cell3": 20, "cell4": 25}}
    # pairs by hand: (1,2) c, (1,3) c, (1,4) c, (2,3) c, (2,4) d, (3,4) c -> (5 - 1) / 6
    result = proxy_ranking(proxy, runs)
    assert result["darts-1st-seed0"]["tau"] == pytest.approx(4 / 6) and result["mean_tau"] == pytest.approx(4 / 6)
    assert result["darts-1st-seed0"]["cells"] == 4


def test_stability_and_collapse_flags():
    def search(*decisions):
        return {"decisions": [{"node": n, "kind": "op", "chosen": op, "supported": ok} for n, (op, ok) in enumerate(decisions, start=1)]}

    result = stability([search(("a", True), ("b", True)), search(("a", True), ("c", False)), search(("x", True), ("b", True))])
    assert result["node1_supported_in_every_seed"] and result["supported_in_every_seed"] == ["node 1"]
    assert result["nodes"]["node 1"] == {"chosen": ["a", "a", "x"], "supported": [True, True, True], "most_common": "a", "agreeing": 2}
    assert result["agree_where_supported"] and result["cells_effect"] == [None, None, None]  # searches of before the cells' effect
    effect = {"points": 12.0, "stderr": 3.0, "clips": 128, "supported": True}
    assert stability([search(("a", True)) | {"cells_effect": effect}])["cells_effect"] == [effect]
    assert not stability([search(("a", True)), search(("b", True)), search(("c", True))])["agree_where_supported"]
    rederived = [{"kept": ["node 1 op a"], "lost": [], "new": [], "stable": True},
                 {"kept": [], "lost": ["node 1 op a (re-derived: b, supported)"], "new": ["node 1 op b"], "stable": False}]
    result = stability([search(("a", True)) | {"rederivation": r} for r in rederived])
    assert result["rederivation"] == rederived
    checked = verdict({"bare": arm(60), "nonlocal": arm(84), "random": arm(75), "main": arm(80)}, "main", no_extras() | {"stability": result})
    assert checked["supported_decisions_stay_on_another_subset"] == {"passed": False, "margin": None}
    runs = [{"name": "ok", "test": {"video/top1": 80.0}, "last_val_top1": 81.5}, {"name": "broken", "test": {"video/top1": 12.5}, "last_val_top1": 81.5}]
    assert collapsed(runs) == [{"name": "broken", "test_top1": 12.5, "last_val_top1": 81.5}]


@pytest.mark.parametrize("overrides,message", [
    ({"search_mode": "enas"}, "unknown search mode 'enas'"),
    ({"search_batch_size": 64}, "larger than a search half"),
    ({"compare_modes": ["darts-3rd"]}, "unknown search mode 'darts-3rd'"),
    ({"seeds": 1}, "must be at least 2"),
    ({"ops": ["nothing_*"]}, "nothing_"),
    ({"epochs": 1, "warmup_epochs": 1}, "--warmup-epochs 1"),
    ({"points": ["stage9"]}, "no insertion point 'stage9'"),
    ({"long_range_classes": ["spatial_same", "juggling"]}, r"\['juggling'\] are not classes of the data; its classes: spatial_same, "),
    ({"selectors": ["best"]}, "--selectors"),
])
def test_bad_options_are_rejected_before_anything_runs(tmp_path, overrides, message):
    with pytest.raises((ValueError, KeyError), match=message):
        run_experiment(tiny(tmp_path, **overrides))
    assert not (tmp_path / "experiment").exists()


def test_random_cells_are_reproducible_per_seed():
    space = SearchSpace.from_patterns(["*"], num_nodes=3)
    assert [c.nodes for c in distinct_random_cells(space, 5, 3)] == [c.nodes for c in distinct_random_cells(space, 5, 3)]
    assert [c.nodes for c in distinct_random_cells(space, 5, 3)] != [c.nodes for c in distinct_random_cells(space, 5, 4)]
