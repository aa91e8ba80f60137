"""Benchmark scripts still run (tiny sizes, in this process: see helpers.run_script); their timings
are never asserted, only that what they print is consistent."""

import importlib.util
import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_script

from darts_video.backbones import create_backbone
from darts_video.data.annotations import read_list_file
from darts_video.data.decode import decode_frames, probe
from darts_video.derive import TrainedSearch
from darts_video.experiment import distinct_random_cells
from darts_video.genotype import Genotype
from darts_video.models import create_model
from darts_video.search import run_search
from darts_video.search_config import SearchConfig
from darts_video.space import SearchSpace
from darts_video.stats import kendall_tau
from darts_video.supernet import Supernet

REPO = Path(__file__).resolve().parents[1]


def test_bench_ops_quick_prints_both_tables():
    result = run_script(REPO / "benchmarks" / "bench_ops.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "| dot_spatiotemporal_softmax |" in result.stdout
    assert "fwd+bwd speed-up" in result.stdout
    assert "[ Operations, forward+backward" in result.stdout and "naive forward+backward  |" in result.stdout  # Compare's tables


def test_bench_data_quick_prints_both_tables():
    result = run_script(REPO / "benchmarks" / "bench_data.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "| 320x240, 2 s | 50 |" in result.stdout
    assert "16x2 clip (PyAV)" in result.stdout and "Times are in" in result.stdout
    assert "2 workers clips/s (decord)" in result.stdout and "PyAV / decord" in result.stdout  # "–" without decord


def test_profile_clip_quick_prints_every_phase():
    result = run_script(REPO / "benchmarks" / "profile_clip.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "| arm_wrestling.mp4 | 16x2 |" in result.stdout and "decode_frames ms now" in result.stdout


def test_bench_synthetic_quick_prints_the_table():
    result = run_script(REPO / "benchmarks" / "bench_synthetic.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "| dot_temporal_softmax |" in result.stdout and "| global_context |" in result.stdout and "spatial pair" in result.stdout


def test_bench_search_quick_prints_the_table():
    result = run_script(REPO / "benchmarks" / "bench_search.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "| gdas weight step |" in result.stdout and "2nd / 1st order" in result.stdout
    assert "[----" in result.stdout and "Search steps" in result.stdout and "Times are in" in result.stdout
    shares = result.stdout.split("where the mixed op's time goes")[1]
    assert all(f"| {spec.name} |" in shares for spec in SearchSpace().ops)  # every candidate's share of the time


def test_bench_models_quick_prints_every_arm():
    result = run_script(REPO / "benchmarks" / "bench_models.py", "--quick")
    assert result.returncode == 0, result.stderr
    for row in ("| tiny | 8x32² | bare |", "| s3d | 8x32² | non-local |", "| s3d | 8x32² | cell (divided_space_time) |"):
        assert row in result.stdout
    assert "|  tiny 8x32²  |  s3d 8x32²" in result.stdout  # Compare: one column per backbone and clip


def test_bench_gpu_quick_writes_every_row_with_its_mfu_against_the_given_peak(tmp_path):
    out = tmp_path / "gpu.md"
    result = run_script(REPO / "benchmarks" / "bench_gpu.py", "--quick", "--peak-tflops", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    table = out.read_text()
    for row in ("| bare backbone, training step |", "| search step, recompute off (largest batch", "| search step, recompute on (largest batch",
                "| retraining step (divided_space_time) |", "MFU against 1 TFLOP/s"):
        assert row in table, table
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "step" in line.split(" | ")[0] and "%" in line]
    assert len(rows) == 4 and all(float(row[4]) > 0 and float(row[5].rstrip("%")) > 0 for row in rows)  # every step counted FLOPs


def test_shortlist_ranking_scores_a_cell_as_the_search_s_shortlist_did_and_prints_tau(tmp_path):
    experiment = tmp_path / "experiment"
    config = SearchConfig(out=str(experiment / "searches" / "darts-1st-seed0"), num_clips=32, epochs=1, warmup_epochs=0, batch_size=8,
                          ops=["identity", "map_temporal_sigmoid", "dot_temporal_softmax"], nodes=2, device="cpu", selection_clips=8,
                          shortlist=2, shortlist_pool=2, shortlist_epochs=1, shortlist_clips=16, shortlist_rounds=1)  # the benchmark repeats round 1
    run_search(config)
    run = Path(config.out)
    shortlisted = json.loads((run / "summary.json").read_text())["shortlist"]["candidates"][0]  # the selector's cell
    (experiment / "random_cells").mkdir()
    selected = Genotype.load(run / "genotype_perturbation.json")
    others = [c for c in distinct_random_cells(config.space(), 3, 0) if c.nodes != selected.nodes][:2]
    for number, cell in enumerate([selected, *others], start=1):
        cell.save(experiment / "random_cells" / f"cell{number}.json")
    retrained = {"cell1": 70.0, "cell2": 90.0, "cell3": 80.0}  # made-up retraining results: τ pairs them with the scores printed
    (experiment / "report.json").write_text(json.dumps({"config": {"search_mode": "darts-1st"}, "runs": [
        {"name": f"random-{c}", "group": "random", "test": {"video/top1": top1}} for c, top1 in retrained.items()]}))
    result = run_script(REPO / "benchmarks" / "shortlist_ranking.py", str(experiment))
    assert result.returncode == 0, result.stderr
    rows = [line.strip("| ").split(" | ") for line in result.stdout.splitlines() if line.startswith("| darts-1st-seed0 |")]
    rows = {(row[1], row[3]): row for row in rows}  # (start, score): search, start, epochs, score, τ, the best retrained cell's rank, values
    assert set(rows) == set(itertools.product(("closed", "inherit", "open", "inherit-open", "small"), ("accuracy", "loss")))
    values = {key: [float(s) for s in row[6].split()] for key, row in rows.items()}  # cell1, cell2, cell3: search-val % or cross-entropy
    assert values["closed", "accuracy"][0] == pytest.approx(shortlisted["accuracy"], abs=0.05)  # the shortlist's own training and clips
    assert values["closed", "loss"][0] == pytest.approx(shortlisted["loss"], rel=1e-3)
    for (start, score), row in rows.items():
        gains = values[start, score] if score == "accuracy" else [-v for v in values[start, score]]  # a lower loss ranks higher
        assert float(row[4]) == pytest.approx(kendall_tau(gains, list(retrained.values())), abs=0.005), rows
        assert row[5].startswith(str(1 + sum(g > gains[1] for g in gains)))  # cell2, the best retrained
    assert values["inherit-open", "loss"] != values["open", "loss"]  # inside the supernet's backbone: another start
    assert values["inherit-open", "loss"] != values["inherit", "loss"]  # and open there
    assert len({values[start, "loss"][0] for start in ("closed", "small", "open")}) == 3  # three sink scales, three trainings
    assert values["open", "loss"] != values["closed", "loss"]  # an open cell trains differently (at this size the closed starts all score chance)


def test_shortlist_ranking_inherits_every_weight_outside_the_cells_from_the_supernet(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location("shortlist_ranking", REPO / "benchmarks" / "shortlist_ranking.py")
    ranking = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ranking)
    space = SearchSpace.from_patterns(["identity", "dot_temporal_softmax"], num_nodes=2)
    supernet = Supernet(create_backbone("tiny", num_classes=4), space, ["stage2"])
    for parameter in supernet.parameters():
        torch.nn.init.normal_(parameter)  # unlike any fresh network
    cell = space.sample(random.Random(0))
    model = create_model("tiny", 4, cell, points=["stage2"])
    ranking.inherit_backbone(model, TrainedSearch(None, supernet, [], [], None, 1))
    trained = supernet.backbone.state_dict()
    outside = [name for name in model.state_dict() if ".attention." not in name]
    assert outside and all(torch.equal(model.state_dict()[name], trained[name]) for name in outside)


def test_heldout_task_writes_decodable_list_files_whose_pairs_differ_only_in_a_relation(tmp_path, monkeypatch):
    result = run_script(REPO / "benchmarks" / "heldout_task.py", "--out", str(tmp_path), "--train", "16", "--val", "8", "--test", "8")
    assert result.returncode == 0, result.stderr
    annotations = read_list_file(tmp_path / "train.txt", tmp_path)
    assert [entry.label for entry in annotations.entries] == [i % 8 for i in range(16)]
    info = probe(annotations.entries[0].path)
    assert decode_frames(annotations.entries[0].path, list(range(8)), info).shape == (8, 36, 36, 3)
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import heldout_task

    def colour_counts(label: int, seed: int) -> np.ndarray:  # objects' pixels of each palette colour, any brightness
        clip = heldout_task.make_clip(label, np.random.default_rng(seed))[0].reshape(-1, 3).astype(float)
        bright = clip.max(axis=1, keepdims=True)
        hue = np.where(bright > 60, clip / np.maximum(bright, 1), 0)
        palette = heldout_task.PALETTE / heldout_task.PALETTE.max(axis=1, keepdims=True)
        return np.array([(np.abs(hue - colour).sum(axis=1) < 0.1).sum() for colour in palette])

    for same, different in ((0, 1), (4, 5)):  # each colour equally likely in both classes of a pair ...
        counts = [np.mean([colour_counts(label, seed) for seed in range(600)], axis=0) for label in (same, different)]
        np.testing.assert_allclose(counts[0], counts[1], rtol=0.2)
        assert colour_counts(same, 0).max() == colour_counts(same, 0).sum()  # ... and "same" is one colour
    triplet_odd = heldout_task.make_clip(1, np.random.default_rng(0))[0]
    assert len({tuple(p) for p in triplet_odd.reshape(-1, 3) if p.max() > 100}) == 2
