"""The shortlist: proposals from the supernet, a short training of each, the best by search-val clips."""

import json

import pytest
import torch

from darts_video.genotype import Genotype
from darts_video.search import run_search
from darts_video.search_config import SearchConfig
from darts_video.shortlist import Candidate, decide

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

def test_a_search_with_a_shortlist_trains_each_proposal_and_keeps_the_best(tmp_path):
    config = SearchConfig(out=str(tmp_path / "run"), num_clips=64, epochs=2, warmup_epochs=1, batch_size=8, ops=OPS, nodes=2, device="cpu",
                          selection_clips=16, shortlist=3, shortlist_pool=4, shortlist_epochs=1, shortlist_clips=24)
    final = run_search(config)
    run = tmp_path / "run"
    shortlist = final.provenance["shortlist"]
    accuracies = [c["accuracy"] for c in shortlist["candidates"]]
    assert len(accuracies) == 3 and shortlist["clips"] == 24 and shortlist["seconds"] > 0
    assert shortlist["chosen"] == accuracies.index(max(accuracies))
    assert shortlist["candidates"][0]["proposed_by"] == "perturbation"
    assert len({c["cell"] for c in shortlist["candidates"]}) == 3  # distinct proposals
    selected = Genotype.load(run / "genotype_perturbation.json")
    assert shortlist["candidates"][0]["cell"] == ", ".join(f"{n.op.name}({n.input})" for n in selected.nodes)
    assert Genotype.load(run / "genotype.json").provenance["shortlist"] == shortlist  # validated on load, evidence kept
    assert final.selector == ("perturbation" if shortlist["chosen"] == 0 else "shortlist")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["shortlist"] == shortlist
    assert ("the shortlist's choice" in summary["unsupported"]) == (not shortlist["supported"])


@pytest.mark.parametrize("field,value", [("shortlist", -1), ("shortlist_pool", 0), ("shortlist_epochs", 0), ("shortlist_clips", 0)])
def test_bad_shortlist_options_are_refused(field, value):
    from darts_video.errors import ConfigError
    with pytest.raises(ConfigError, match="shortlist"):
        SearchConfig(**{field: value})
