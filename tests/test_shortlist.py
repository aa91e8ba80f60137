"""The shortlist: proposals from the supernet, a short training of each, the best by search-val clips."""

import dataclasses
import json
import random

import pytest
import torch

import darts_video.search as search
from darts_video.backbones import create_backbone
from darts_video.cell import Cell
from darts_video.data.synthetic import SYNTHETIC_TRANSFORM, SyntheticVideoDataset
from darts_video.engine import distributed
from darts_video.engine.loop import TrainingRun
from darts_video.genotype import Decision, Genotype
from darts_video.search import run_search
from darts_video.search_config import SearchConfig
from darts_video.shortlist import (PROPOSAL_POOLS, SHORTLIST_SCORES, Candidate, decide, evidence_choices, format_margin, halving_rounds,
                                   round_plan, shortlist_model, survivors, train_briefly)
from darts_video.space import SearchSpace
from darts_video.supernet.select import CellsEffect

OPS = ["identity", "map_temporal_sigmoid", "dot_temporal_softmax"]

def test_the_most_accurate_candidate_wins_with_its_paired_margin(monkeypatch):
    monkeypatch.setattr(Candidate, "to_dict", lambda self: {"accuracy": self.accuracy})
    a = Candidate(None, "selector", 50.0, torch.tensor([1, 0, 0, 1], dtype=torch.float64))  # 50 %
    b = Candidate(None, "path score", 40.0, torch.tensor([1, 1, 1, 0], dtype=torch.float64))  # 75 %
    chosen, evidence = decide([a, b])
    # differences b - a per clip: 0, 1, 1, -1 -> mean 25 points; sample std 95.74 / 2 = 47.87 points
    assert chosen == 1 and evidence["runner_up"] == 0
    assert evidence["margin"] == pytest.approx(25.0) and evidence["margin_stderr"] == pytest.approx(47.871, abs=1e-3)
    assert evidence["supported"] is False and evidence["clips"] == 4
    chosen, evidence = decide([b, Candidate(None, "path score", 0.0, b.scores.clone())])
    assert chosen == 0 and evidence["margin"] == 0.0 and not evidence["supported"]  # a tie: the earlier, not supported


def test_by_loss_the_lowest_cross_entropy_wins_with_its_paired_margin_in_nats(monkeypatch):
    monkeypatch.setattr(Candidate, "to_dict", lambda self: {"accuracy": self.accuracy, "loss": self.loss})
    f64 = dict(dtype=torch.float64)
    a = Candidate(None, "selector", 50.0, torch.tensor([1, 1, 1, 1], **f64), torch.tensor([0.5, 0.5, 0.5, 0.5], **f64))  # 100 %, 0.5 nats
    b = Candidate(None, "path score", 40.0, torch.tensor([1, 0, 1, 1], **f64), torch.tensor([0.1, 0.7, 0.2, 0.2], **f64))  # 75 %, 0.3 nats
    assert decide([a, b], "accuracy")[0] == 0
    chosen, evidence = decide([a, b], "loss")
    # a's loss - b's per clip: 0.4, -0.2, 0.3, 0.3 -> mean 0.2; squared deviations sum to 0.22, std sqrt(0.22 / 3), stderr that / 2
    assert chosen == 1 and evidence["runner_up"] == 0 and evidence["score"] == "loss"
    assert evidence["margin"] == pytest.approx(0.2) and evidence["margin_stderr"] == pytest.approx(0.135401, abs=1e-6)
    assert evidence["supported"] is False
    assert format_margin(evidence) == "+0.200 ± 0.135 nats"


@pytest.mark.parametrize("points", [None, ["stage2", "stage3"]])
def test_a_shortlisted_cell_starts_open_in_the_searchs_starting_weights(points, tmp_path):
    """Open, every cell's sink starts at scale 1 (the retraining's cell starts closed, the
    identity), so its operations learn from the first step; the weights outside the cells are the
    file's of ``--pretrained``; the same seed gives the same network (every rank alike)."""
    torch.manual_seed(7)
    weights = create_backbone("tiny", num_classes=5).state_dict()
    torch.save(weights, tmp_path / "tiny.pt")
    genotype = SearchSpace.from_patterns(OPS, num_nodes=2).sample(random.Random(1))
    model = shortlist_model(genotype, "tiny", 5, points, seed=3, pretrained=str(tmp_path / "tiny.pt"), sink_scale=1.0).eval()
    cells = [m for m in model.modules() if isinstance(m, Cell)]
    assert len(cells) == len(points or ["stage2"]) and all(torch.equal(c.sink.norm.weight, torch.ones(c.sink.norm.weight.shape)) for c in cells)
    bare = create_backbone("tiny", num_classes=5)
    bare.load_state_dict(weights)
    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(model(clips), bare.eval()(clips), atol=1e-3)  # open: not the identity
        for cell in cells:
            cell.sink.norm.weight.zero_()
        assert torch.allclose(model(clips), bare(clips), atol=1e-6)  # closed, it is the file's backbone
    first, second = (shortlist_model(genotype, "tiny", 5, points, seed=3, sink_scale=1.0).state_dict() for _ in range(2))
    assert all(torch.equal(first[name], second[name]) for name in first)


@pytest.mark.parametrize("sink_scale", [0.0, 0.25])
def test_a_shortlisted_cell_can_start_closed_or_small(sink_scale):
    """``--shortlist-sink-scale``: closed (0) the cell is the identity, as the retraining starts it."""
    genotype = SearchSpace.from_patterns(OPS, num_nodes=2).sample(random.Random(1))
    model = shortlist_model(genotype, "tiny", 5, None, seed=3, sink_scale=sink_scale).eval()
    cells = [m for m in model.modules() if isinstance(m, Cell)]
    assert cells and all(torch.equal(c.sink.norm.weight, torch.full(c.sink.norm.weight.shape, sink_scale)) for c in cells)
    bare = create_backbone("tiny", num_classes=5).eval()
    bare.load_state_dict({k.replace("stage2.block.", "stage2."): v for k, v in model.state_dict().items() if ".attention." not in k})
    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(clips), bare(clips), atol=1e-6) == (sink_scale == 0)


@pytest.mark.parametrize("score,pool_from", list(zip(SHORTLIST_SCORES, PROPOSAL_POOLS)))  # each value once, at one search each
def test_a_search_with_a_shortlist_trains_each_proposal_and_keeps_the_best(score, pool_from, tmp_path):
    config = SearchConfig(out=str(tmp_path / "run"), num_clips=64, epochs=2, warmup_epochs=1, batch_size=8, ops=OPS, nodes=2, device="cpu",
                          selection_clips=16, shortlist=3, shortlist_pool=4, shortlist_epochs=1, shortlist_clips=24, shortlist_score=score,
                          shortlist_pool_from=pool_from)
    final = run_search(config)
    run = tmp_path / "run"
    shortlist = final.provenance["shortlist"]
    gains = [c["accuracy"] if score == "accuracy" else -c["loss"] for c in shortlist["candidates"]]
    assert len(gains) == 3 and shortlist["clips"] == 24 and shortlist["seconds"] > 0 and shortlist["score"] == score
    assert all(c["loss"] > 0 for c in shortlist["candidates"])
    last_round = shortlist["order"]  # the cells of the last racing round, best first
    assert shortlist["chosen"] == last_round[0] == max(last_round, key=lambda i: (gains[i], -i))
    assert shortlist["rounds"][-1]["chosen"] == shortlist["chosen"] and 1 <= len(shortlist["rounds"]) <= config.shortlist_rounds
    assert shortlist["candidates"][0]["proposed_by"] == "perturbation"
    assert len({c["cell"] for c in shortlist["candidates"]}) == 3  # distinct proposals
    selected = Genotype.load(run / "genotype_perturbation.json")
    assert shortlist["candidates"][0]["cell"] == ", ".join(f"{n.op.name}({n.input})" for n in selected.nodes)
    allowed = evidence_choices(selected, SearchSpace.from_patterns(OPS, num_nodes=2)) if pool_from == "evidence" else None
    assert shortlist["pool"]["from"] == ("space" if allowed is None else "evidence")  # the evidence, where founded
    if allowed is not None:
        assert shortlist["pool"]["choices"] == [{"ops": [op.name for op in c.ops], "inputs": list(c.inputs)} for c in allowed]
    assert Genotype.load(run / "genotype.json").provenance["shortlist"] == shortlist  # validated on load, evidence kept
    assert final.selector == ("perturbation" if shortlist["chosen"] == 0 else "shortlist")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["shortlist"] == shortlist
    assert ("the shortlist's choice" in summary["unsupported"]) == (not shortlist["supported"])


@pytest.mark.parametrize("cells,epochs,rounds,plan", [
    (6, 4, 3, [(6, 4), (3, 8), (2, 12)]),  # the default: each round 24 cell-epochs
    (6, 4, 1, [(6, 4)]),  # no racing
    (5, 2, 4, [(5, 2), (3, 4), (2, 5), (2, 5)]),  # ceil(10 / 3) = 4 epochs; from 2 cells on, 2 race on
    (2, 4, 3, [(2, 4), (2, 4), (2, 4)]),
    (1, 4, 3, [(1, 4)]),  # one cell: nothing to race
])
def test_halving_rounds_keep_the_better_half_at_the_first_rounds_budget(cells, epochs, rounds, plan):
    assert halving_rounds(cells, epochs, rounds) == plan


@pytest.mark.parametrize("cells,epochs,rounds,later,proposals,plan", [
    (6, 4, 3, "race", 6, [(6, 4), (3, 8), (2, 12)]),
    (6, 4, 3, "explore", 18, [(6, 4), (6, 4), (6, 4)]),  # each round as many new cells, for as many epochs
    (6, 4, 3, "explore", 14, [(6, 4), (6, 4), (2, 4)]),  # a small pool: the proposals run out
    (6, 4, 3, "explore", 6, [(6, 4)]),
    (6, 4, 1, "explore", 6, [(6, 4)]),
])
def test_a_round_plan_races_or_explores_at_the_first_rounds_budget(cells, epochs, rounds, later, proposals, plan):
    assert round_plan(cells, epochs, rounds, later, proposals) == plan


def test_a_later_round_decides_among_its_survivors_only(monkeypatch):
    monkeypatch.setattr(Candidate, "to_dict", lambda self: {"accuracy": self.accuracy})
    f64 = dict(dtype=torch.float64)
    best_dropped = Candidate(None, "selector", 0.0, torch.ones(4, **f64))  # 100 %, but not in the round
    a = Candidate(None, "path score", 0.0, torch.tensor([1, 0, 0, 0], **f64))  # 25 %
    b = Candidate(None, "path score", 0.0, torch.tensor([1, 1, 0, 0], **f64))  # 50 %
    chosen, evidence = decide([best_dropped, a, b], among=[1, 2])
    assert chosen == 2 and evidence["runner_up"] == 1 and evidence["order"] == [2, 1] and len(evidence["candidates"]) == 3
    assert survivors(decide([best_dropped, a, b])[1], 2) == [0, 2]


def test_a_search_draws_its_proposals_from_what_a_founded_selection_does_not_rule_out(tmp_path, monkeypatch):
    """The selection as measured, then made decisive: node 1's operation ahead of every other
    beyond noise, the supernet using its cells. Every proposal then keeps node 1's operation."""
    real = search.select_cell

    def decisive(*args, **kwargs):
        genotype, failures = real(*args, **kwargs)
        node1 = genotype.nodes[0].op.name
        first = Decision(1, "op", node1, None, 20.0, 1.0, True,
                         {name: {"alpha": 0.3, "effect": 20.0 if name == node1 else 0.0, "effect_stderr": 1.0} for name in OPS})
        provenance = {**genotype.provenance, "cells_effect": CellsEffect(30.0, 3.0, 128).to_dict()}
        return dataclasses.replace(genotype, evidence=(first,), provenance=provenance), failures

    monkeypatch.setattr(search, "select_cell", decisive)
    config = SearchConfig(out=str(tmp_path / "run"), num_clips=32, epochs=1, warmup_epochs=0, batch_size=8, ops=OPS, nodes=2, device="cpu",
                          selection_clips=8, shortlist=3, shortlist_pool=8, shortlist_epochs=1, shortlist_clips=8)  # the default pool: evidence
    shortlist = run_search(config).provenance["shortlist"]
    selected = Genotype.load(tmp_path / "run" / "genotype_perturbation.json")
    node1 = selected.nodes[0].op.name
    assert shortlist["pool"]["from"] == "evidence" and shortlist["pool"]["cells"] == 3 * 2  # node 1 fixed; node 2: 3 ops × 2 inputs
    assert shortlist["pool"]["choices"][0] == {"ops": [node1], "inputs": [0]} and shortlist["pool"]["drawn"] == 5
    assert len(shortlist["candidates"]) == 3 and all(c["cell"].startswith(f"{node1}(0), ") for c in shortlist["candidates"])


def scripted_shortlist(monkeypatch, perfect: int) -> list[tuple[int, int, int]]:
    """Short trainings as the search runs them, recorded as (network, epochs, first epoch), whose
    scores are scripted: every cell right on half the clips, except the ``perfect``-th scored
    (0-based), right on every clip."""
    trainings, scored = [], []

    def recorded(model, loader, transform, run, epochs, desc, first_epoch=0):
        trainings.append((id(model), epochs, first_epoch))
        return train_briefly(model, loader, transform, run, epochs, desc, first_epoch)

    def scores(net, batches):
        clips = sum(len(labels) for _, labels in batches)
        right = torch.zeros(clips, dtype=torch.float64)
        right[: clips // 2 if len(scored) != perfect else clips] = 1
        scored.append(net)
        return right, torch.full((clips,), 0.5, dtype=torch.float64)

    monkeypatch.setattr(search, "train_briefly", recorded)
    monkeypatch.setattr(search, "clip_scores", scores)
    return trainings


def test_a_close_shortlist_races_its_better_half_until_the_choice_is_supported(tmp_path, monkeypatch):
    """Round 1: three cells at the same accuracy (not supported); round 2: the two best of round 1
    (ties: the earlier) train on from their weights for the round's epochs, and the second one wins
    beyond noise, so no third round runs. The cell dropped keeps its round-1 scores."""
    trainings = scripted_shortlist(monkeypatch, perfect=4)  # round 2's second cell
    config = SearchConfig(out=str(tmp_path / "run"), num_clips=32, epochs=1, warmup_epochs=0, batch_size=8, ops=OPS, nodes=2, device="cpu",
                          selection_clips=8, shortlist=3, shortlist_pool=3, shortlist_epochs=1, shortlist_clips=16, shortlist_rounds=3,
                          shortlist_pool_from="space")  # three proposals whatever the selection rules out
    shortlist = run_search(config).provenance["shortlist"]
    assert [(epochs, first) for _, epochs, first in trainings] == [(1, 0), (1, 0), (1, 0), (2, 1), (2, 1)]  # 3 × 1, then 2 × ceil(3 / 2)
    assert trainings[3][0] == trainings[0][0] and trainings[4][0] == trainings[1][0]  # the same networks, trained on
    assert [r["supported"] for r in shortlist["rounds"]] == [False, True] and shortlist["rounds"][0]["order"] == [0, 1, 2]
    assert shortlist["chosen"] == 1 and shortlist["order"] == [1, 0] and shortlist["supported"] and shortlist["margin"] == 50.0
    assert [c["epochs"] for c in shortlist["candidates"]] == [3, 3, 1] and shortlist["candidates"][2]["accuracy"] == 50.0
    assert shortlist["rounds"][-1]["epochs"] == 3


def test_a_close_shortlist_explores_new_proposals_until_one_is_ahead(tmp_path, monkeypatch):
    """Exploring: round 1 trains two cells (a tie, not supported); round 2 trains the next two
    proposals from their starting weights for the first round's epochs, and the best of all four
    (the third, ahead beyond noise) is chosen; no third round runs."""
    trainings = scripted_shortlist(monkeypatch, perfect=2)  # round 2's first cell
    config = SearchConfig(out=str(tmp_path / "run"), num_clips=32, epochs=1, warmup_epochs=0, batch_size=8, ops=OPS, nodes=2, device="cpu",
                          selection_clips=8, shortlist=2, shortlist_pool=8, shortlist_epochs=1, shortlist_clips=16, shortlist_rounds=3,
                          shortlist_later="explore", shortlist_pool_from="space")
    shortlist = run_search(config).provenance["shortlist"]
    assert [(epochs, first) for _, epochs, first in trainings] == [(1, 0)] * 4  # four cells, each from its start, one epoch
    assert len({c["cell"] for c in shortlist["candidates"]}) == 4 and [c["epochs"] for c in shortlist["candidates"]] == [1, 1, 1, 1]
    assert [c["proposed_by"] for c in shortlist["candidates"]] == ["perturbation"] + ["path score"] * 3
    path_scores = [c["path_score"] for c in shortlist["candidates"][1:]]
    assert path_scores == sorted(path_scores, reverse=True)  # the next proposals are the next best paths
    assert [r["supported"] for r in shortlist["rounds"]] == [False, True] and shortlist["rounds"][0]["order"] == [0, 1]
    assert shortlist["chosen"] == 2 and shortlist["order"] == [2, 0, 1, 3] and shortlist["margin"] == 50.0 and shortlist["later"] == "explore"


@pytest.mark.parametrize("field,value", [("shortlist", -1), ("shortlist_pool", 0), ("shortlist_epochs", 0), ("shortlist_clips", 0),
                                         ("shortlist_score", "f1"), ("shortlist_rounds", 0),
                                         ("shortlist_later", "halve"), ("shortlist_sink_scale", -1.0)])
def test_bad_shortlist_options_are_refused(field, value):
    from darts_video.errors import ConfigError
    with pytest.raises(ConfigError, match="shortlist"):
        SearchConfig(**{field: value})


def test_a_pretrained_searchs_short_trainings_start_from_the_files_weights_their_cells_at_the_sink_scale(tmp_path, monkeypatch):
    torch.manual_seed(3)
    weights = create_backbone("tiny").state_dict()
    torch.save(weights, tmp_path / "tiny.pt")
    starts = []

    def recorded(model, *args, **kwargs):
        starts.append({name: value.clone() for name, value in model.state_dict().items()})
        return train_briefly(model, *args, **kwargs)

    monkeypatch.setattr(search, "train_briefly", recorded)
    config = SearchConfig(out=str(tmp_path / "run"), num_clips=32, epochs=1, warmup_epochs=0, batch_size=8, ops=OPS, nodes=2, device="cpu",
                          selection_clips=8, shortlist=2, shortlist_pool=2, shortlist_epochs=1, shortlist_clips=8, pretrained=str(tmp_path / "tiny.pt"),
                          points=["stage2"], shortlist_rounds=1, shortlist_sink_scale=0.0, shortlist_pool_from="space")  # the starts only: no racing round continuing them
    assert run_search(config).provenance["shortlist"]["sink_scale"] == 0.0
    assert len(starts) == 2
    for start in starts:  # a cell follows stage2: Sequential(block=stage2, attention=cell)
        for name, value in weights.items():
            assert torch.equal(start[name.replace("stage2.", "stage2.block.")], value), name
        assert not start["stage2.attention.sink.norm.weight"].any()  # closed, as asked


def test_a_short_training_is_the_same_after_a_search_left_its_sampler_part_way_through_an_epoch(tmp_path):
    """A search resumed inside its last epoch leaves the train sampler past that epoch's first
    keys; the short trainings must still see (and schedule) whole epochs."""
    dataset, run = SyntheticVideoDataset(32), TrainingRun(str(tmp_path / "unused"), 0, "cpu")
    genotype = SearchSpace.from_patterns(OPS, num_nodes=2).sample(random.Random(1))
    trained = []
    for start in (0, 8):
        loader = distributed.shard_loader(dataset, 8, 0, 0, True, "cpu", list(range(32)))
        loader.sampler.set_epoch(1, start=start)  # where the search left it
        model = train_briefly(shortlist_model(genotype, "tiny", 8, None, seed=3, sink_scale=1.0), loader, SYNTHETIC_TRANSFORM, run, 2, "test")
        trained.append(model.state_dict())
    assert all(torch.equal(trained[0][name], trained[1][name]) for name in trained[0])
