"""The search command end to end on a tiny budget: artifacts, resume, bad input, NaN."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from darts_video.backbones import create_backbone
from darts_video.data import EpochSampler, TooManyBadVideos
from darts_video.errors import ConfigError
from darts_video.engine import NonFiniteLoss, RunConfigMismatch, load_checkpoint
from darts_video.derive import Rederivation, compare_supported, load_search, selector_cell_path
from darts_video.genotype import Decision, Genotype, Node
from darts_video.ops import OpSpec
from darts_video.search import build_search_parts, run_search
from darts_video.search_config import SearchConfig
from darts_video.space import SearchSpace
from helpers import Killed, kill_in_weight_step, layer_output_dtypes, run_script

REPO = Path(__file__).resolve().parents[1]
OPS = ["identity", "map_temporal_sigmoid", "dot_temporal_softmax"]


def tiny(tmp_path, **overrides) -> SearchConfig:
    """A small search; the selector's cell is the final one (tests/test_shortlist.py covers the shortlist)."""
    options = dict(out=str(tmp_path / "run"), num_clips=64, epochs=2, warmup_epochs=1, batch_size=8, ops=OPS, nodes=2, device="cpu",
                   selection_clips=16, shortlist=0)
    return SearchConfig(**{**options, **overrides})


def test_a_search_writes_every_artifact_and_tensorboard_holds_the_expected_tags(tmp_path):
    config = tiny(tmp_path)
    returned = run_search(config)
    run = Path(config.out)
    genotype_path = run / "genotype.json"
    genotype = Genotype.load(genotype_path, SearchSpace.from_patterns(OPS, num_nodes=2))
    assert returned.nodes == genotype.nodes
    assert genotype.provenance["epoch"] == 2 and genotype.provenance["dataset"] == "synthetic"
    assert sorted(p.name for p in (run / "genotypes").iterdir()) == ["epoch_001.json", "epoch_002.json"]
    assert json.loads((run / "config.json").read_text())["ops"] == OPS
    split = json.loads((run / "split.json").read_text())
    assert len(split["train"]) == len(split["val"]) == 32 and not set(split["train"]) & set(split["val"])
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2] and "loss/arch_val" not in metrics[0] and "loss/arch_val" in metrics[1]
    assert abs(sum(metrics[1][f"alpha/node1/{op}"] for op in OPS) - 1) < 1e-6
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train", "accuracy/train", "loss/arch_val", "time/data_s", "time/compute_s", "alpha/node2/dot_temporal_softmax",
            "beta/node2/input1", "collapse/op_entropy/node1", "collapse/parameter_free/node2", "collapse/input_entropy/node2",
            "collapse/op_entropy/mean_relative", "collapse/parameter_free/mean", "cells_effect/points", "cells_effect/stderr"} <= tags
    assert metrics[1]["collapse/parameter_free/node1"] == pytest.approx(metrics[1]["alpha/node1/identity"])
    images = events.Images("alpha/probabilities")
    assert [image.step for image in images] == [metrics[0]["step"], metrics[1]["step"]]
    assert (images[-1].width, images[-1].height) == (3 * 12, 2 * 12)  # 3 candidates x 2 nodes
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["epoch"] == 1
    summary = json.loads((run / "summary.json").read_text())
    assert all((run / f"cell.{ext}").exists() for ext in ("dot", "png", "svg")) and summary["genotype"] == str(genotype_path)
    # the selector's evidence: every decision measured, the unsupported ones flagged in the summary
    assert genotype.selector == "perturbation" and [(d.node, d.kind) for d in genotype.evidence] == [(1, "op"), (2, "op"), (2, "input")]
    assert all(set(d.scores) == set(OPS) for d in genotype.evidence if d.kind == "op")
    assert summary["unsupported"] == [f"node {d.node} {d.kind}" for d in genotype.unsupported()]
    effect = summary["cells_effect"]
    assert effect == genotype.provenance["cells_effect"] and effect["clips"] == config.selection_clips
    assert summary["converged"] == (effect["supported"] and not genotype.unsupported()) and len(summary["decisions"]) == 3
    assert (metrics[-1]["cells_effect/points"], metrics[-1]["cells_effect/stderr"]) == (effect["points"], effect["stderr"])  # same weights, same clips
    per_epoch = Genotype.load(run / "genotypes" / "epoch_002.json")
    assert per_epoch.selector == "argmax" and per_epoch.evidence[0].scores["identity"]["alpha"] == pytest.approx(metrics[1]["alpha/node1/identity"], abs=1e-5)
    assert "decisions/supported" in tags


def test_a_search_killed_between_epochs_and_inside_one_resumes_to_the_uninterrupted_alpha_weights_and_metrics(tmp_path, monkeypatch):
    """Killed at an epoch's start, resumed, then killed inside epoch 3 after its checkpoint at step
    9 (``--checkpoint-every 3``, 4 steps an epoch): the run ends as the uninterrupted one. Breaks if
    the sampler restarts the epoch (other clips), the search-val iterator restarts (other α
    steps), the epoch's meter or gradient evidence start empty (other metrics / decisions), or
    writing checkpoints draws from a generator."""
    import darts_video.search as search

    straight = tiny(tmp_path, out=str(tmp_path / "straight"), epochs=3)
    run_search(straight)
    interrupted = replace(straight, out=str(tmp_path / "interrupted"), checkpoint_every=3)
    original_set_epoch, original_step = EpochSampler.set_epoch, search.weight_step

    def kill_at_epoch_three(self, epoch, start=0):
        if epoch == 2:
            raise Killed()
        original_set_epoch(self, epoch, start)

    monkeypatch.setattr(EpochSampler, "set_epoch", kill_at_epoch_three)
    with pytest.raises(Killed):
        run_search(interrupted)
    monkeypatch.setattr(EpochSampler, "set_epoch", original_set_epoch)
    kill_in_weight_step(monkeypatch, search, first_step=9, kill_step=10)
    with pytest.raises(Killed):
        run_search(interrupted)
    state = load_checkpoint(Path(interrupted.out) / "checkpoints" / "latest.pt")
    assert (state["step"], state["epoch"], state["inside_epoch"], state["meter"]["batches"], state["val_meter"]["batches"]) == (9, 2, True, 1, 1)
    monkeypatch.setattr(search, "weight_step", original_step)
    run_search(interrupted)
    a = load_checkpoint(Path(straight.out) / "checkpoints" / "latest.pt")
    b = load_checkpoint(Path(interrupted.out) / "checkpoints" / "latest.pt")
    assert a["model"].keys() == b["model"].keys() and b["step"] == 12 and not b.get("inside_epoch")
    for key in a["model"]:
        assert torch.allclose(a["model"][key].float(), b["model"][key].float(), atol=1e-6), key
    metrics = [[json.loads(line) for line in (Path(run.out) / "metrics.jsonl").read_text().splitlines()] for run in (straight, interrupted)]
    assert [m["step"] for m in metrics[1]] == [4, 8, 12]  # nothing logged twice
    for key in ("loss/train", "accuracy/train", "loss/arch_val", "alpha/node2/dot_temporal_softmax", "decisions/supported"):
        assert metrics[1][-1][key] == pytest.approx(metrics[0][-1][key], abs=1e-6), key
    genotypes = [Genotype.load(Path(run.out) / "genotype.json") for run in (straight, interrupted)]
    assert genotypes[0].nodes == genotypes[1].nodes and genotypes[0].evidence == genotypes[1].evidence


def test_a_run_started_before_an_option_existed_resumes_while_the_option_holds_its_default(tmp_path):
    config = tiny(tmp_path, epochs=1, warmup_epochs=0)
    run_search(config)
    config_file = Path(config.out) / "config.json"
    options = json.loads(config_file.read_text())
    del options["shortlist_score"]  # as written before --shortlist-score
    config_file.write_text(json.dumps(options))
    run_search(config)  # the same options: resumes
    with pytest.raises(RunConfigMismatch, match="shortlist_score: 'accuracy' -> 'loss'"):
        run_search(tiny(tmp_path, epochs=1, warmup_epochs=0, shortlist_score="loss"))


@pytest.mark.parametrize("option,old,default", [("shortlist_sink_scale", 1.0, 0.0), ("shortlist_pool_from", "space", "evidence")])
def test_a_run_started_before_a_default_changed_resumes_only_with_what_it_ran(tmp_path, option, old, default):
    """Searches of before --shortlist-sink-scale trained their shortlists open (1), today's
    default is closed (0); those of before --shortlist-pool-from drew from the whole space: such
    a run is refused with the default and resumes with what it ran, and re-deriving from it reads that."""
    config = tiny(tmp_path, epochs=1, warmup_epochs=0, **{option: old})
    run_search(config)
    config_file = Path(config.out) / "config.json"
    options = json.loads(config_file.read_text())
    del options[option]  # as written before the option
    config_file.write_text(json.dumps(options))
    with pytest.raises(RunConfigMismatch, match=f"{option}: {old!r} -> {default!r}"):
        run_search(tiny(tmp_path, epochs=1, warmup_epochs=0))
    run_search(config)  # what it ran: resumes
    assert getattr(load_search(Path(config.out) / "checkpoints" / "latest.pt").config, option) == old


@pytest.mark.parametrize("sink_scale", [None, 1.0, 0.5])
def test_the_search_starts_its_cells_at_the_sink_scale_it_is_given(tmp_path, sink_scale):
    """By default every mixed cell's sink starts at scale 0 and the fresh supernet computes
    exactly the bare backbone; ``--sink-scale`` opens them (docs/selection.md, "Open cells in
    the supernet")."""
    config = tiny(tmp_path) if sink_scale is None else tiny(tmp_path, sink_scale=sink_scale)
    expected = 0.0 if sink_scale is None else sink_scale
    torch.manual_seed(0)
    backbone = create_backbone("tiny", num_classes=8)
    bare = create_backbone("tiny", num_classes=8)
    bare.load_state_dict(backbone.state_dict())
    net = build_search_parts(config, backbone, torch.device("cpu")).model.eval()
    assert net.cells and all(torch.all(cell.sink.norm.weight == expected) for cell in net.cells)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x), bare.eval()(x), atol=1e-6) == (expected == 0)


def test_reusing_a_run_directory_with_other_options_is_refused(tmp_path):
    run_search(tiny(tmp_path, epochs=1, warmup_epochs=0))
    with pytest.raises(RunConfigMismatch, match="lr: 0.003 -> 0.1"):
        run_search(tiny(tmp_path, epochs=1, warmup_epochs=0, lr=0.1))


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"ops": ["conv_*"]}, "operation pattern 'conv_\\*' matches no registered operation"),
        ({"points": ["stage9"]}, "insertion points \\['stage9'\\] not usable"),
        ({"batch_size": 64}, "--batch-size 64 is larger than a search half \\(32 clips per process\\)"),
        ({"mode": "enas"}, "unknown search mode 'enas'"),
        ({"optimizer": "lamb"}, "unknown --optimizer 'lamb'"),
    ],
)
def test_bad_options_fail_before_training(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        run_search(tiny(tmp_path, **overrides))
    assert not (tmp_path / "run").exists()  # nothing written: the corrected command starts afresh


@pytest.mark.parametrize(
    "overrides,message",
    [({"data": "list"}, "--data list needs --annotations"), ({"warmup_epochs": 2}, "--warmup-epochs 2 must be at least 0 and below --epochs 2"),
     ({"sink_scale": -1.0}, "--sink-scale -1.0 must be 0")],
)
def test_inconsistent_options_are_rejected_by_the_config(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(tmp_path, **overrides)


def test_a_non_finite_loss_stops_the_run_naming_the_step_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    import darts_video.engine.step as weight_step_module

    calls = {"n": 0}
    real = weight_step_module.F.cross_entropy

    def breaks_in_epoch_two(logits, labels):
        calls["n"] += 1
        loss = real(logits, labels)
        return loss * float("nan") if calls["n"] > 4 else loss

    monkeypatch.setattr(weight_step_module.F, "cross_entropy", breaks_in_epoch_two)
    with pytest.raises(NonFiniteLoss, match=r"loss became nan at step 4 \(epoch 2\); the last good checkpoint is .*latest.pt"):
        run_search(tiny(tmp_path))
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["epoch"] == 0


def test_the_command_line_documents_its_options_and_reports_bad_ones():
    script = str(REPO / "scripts" / "search_supernet.py")
    help_text = run_script(script, "--help").stdout
    for option in ("--data", "--backbone", "--points", "--nodes", "--ops", "--mode", "--order", "--epochs", "--batch-size", "--crop-size", "--device", "--seed", "--out"):
        assert option in help_text
    result = subprocess.run([sys.executable, script, "--ops", "dot_*", "tanh_*", "--out", "/nonexistent/never"], capture_output=True, text=True)
    assert result.returncode == 2 and "error: operation pattern 'tanh_*' matches no registered operation" in result.stderr


def test_derive_genotype_re_derives_the_search_result_from_its_checkpoint(tmp_path):
    config = tiny(tmp_path, shortlist=2, shortlist_epochs=1)  # the selector's cell is RUN/genotype_perturbation.json
    run_search(config)
    searched = Genotype.load(Path(config.out) / "genotype_perturbation.json")
    assert selector_cell_path(config.out, "perturbation") == Path(config.out) / "genotype_perturbation.json"
    assert selector_cell_path(config.out, "argmax") == Path(config.out) / "genotype.json"  # no cell of its own: the run's
    checkpoint = Path(config.out) / "checkpoints" / "latest.pt"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "derive_genotype.py"), str(checkpoint), "--out", str(tmp_path / "derived")],
                            capture_output=True, text=True)  # the real command, once; the other cases in this process
    assert result.returncode == 0, result.stderr
    derived = Genotype.load(tmp_path / "derived.json")
    assert derived.nodes == searched.nodes and derived.provenance["epoch"] == 2
    assert derived.evidence == searched.evidence  # same selector, same clips: the same measurements
    assert (tmp_path / "derived.dot").exists()
    assert "supported decisions on the other clips: " in result.stdout and "(stable)" in result.stdout  # the same clips
    other = run_script(REPO / "scripts" / "derive_genotype.py", str(checkpoint), "--subset", "1", "--selector", "argmax", "--out", str(tmp_path / "other"))
    assert other.returncode == 0, other.stderr
    assert Genotype.load(tmp_path / "other.json").selector == "argmax" and "node 1 op:" in other.stdout
    assert "supported decisions on the other clips" not in other.stdout  # another selector: nothing to compare with
    (tmp_path / "cut.pt").write_bytes(checkpoint.read_bytes()[:200])
    bad = run_script(REPO / "scripts" / "derive_genotype.py", str(tmp_path / "cut.pt"))
    assert bad.returncode == 2 and "cut.pt: not a readable checkpoint" in bad.stderr


def test_a_re_derivation_keeps_loses_and_adds_supported_decisions():
    def cell(op1: str, support1: bool, support2: bool, input_support: bool) -> Genotype:
        nodes = [Node(0, OpSpec.parse(op1)), Node(1, OpSpec.parse("identity"))]
        evidence = [Decision(1, "op", op1, None, 1.0, 0.5, support1, {op1: {}}), Decision(2, "op", "identity", None, 1.0, 0.5, support2, {"identity": {}}),
                    Decision(2, "input", "1", None, 1.0, 0.5, input_support, {"1": {}})]
        return Genotype(nodes, sink=(1, 2), selector="perturbation", evidence=evidence)

    search = cell("dot_temporal_softmax", True, True, False)
    assert compare_supported(search, search) == Rederivation(("node 1 op dot_temporal_softmax", "node 2 op identity"), (), ())
    result = compare_supported(search, cell("dot_temporal_softmax", True, False, True))
    assert result.kept == ("node 1 op dot_temporal_softmax",) and not result.stable
    assert result.lost == ("node 2 op identity (re-derived: identity, not supported)",) and result.new == ("node 2 input 1",)
    assert "lost: node 2 op identity" in result.describe() and result.describe().endswith("(NOT stable)")
    assert result.to_dict() == {"kept": ["node 1 op dot_temporal_softmax"], "lost": list(result.lost), "new": ["node 2 input 1"], "stable": False}
    changed = compare_supported(search, cell("map_temporal_sigmoid", True, True, False))  # another choice, supported: lost and new
    assert changed.lost == ("node 1 op dot_temporal_softmax (re-derived: map_temporal_sigmoid, supported)",)
    assert changed.new == ("node 1 op map_temporal_sigmoid",) and changed.kept == ("node 2 op identity",)


def test_a_search_runs_on_real_video_files_through_a_list_file(tmp_path):
    videos = tmp_path / "videos"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_synthetic_dataset.py"), str(videos), "--train", "32", "--val", "0", "--test", "0"],
                   check=True, capture_output=True)
    config = tiny(tmp_path, data="list", annotations=str(videos / "train.txt"), video_root=str(videos), num_frames=8,
                  sampling_rate=1, crop_size=32, epochs=1, warmup_epochs=0)
    genotype = run_search(config)
    assert genotype.provenance["dataset"] == "list" and genotype.num_nodes == 2


def test_bad_videos_are_skipped_and_listed_until_there_are_too_many(tmp_path):
    videos = tmp_path / "videos"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_synthetic_dataset.py"), str(videos), "--train", "32", "--val", "0", "--test", "0"],
                   check=True, capture_output=True)
    (videos / "broken.mp4").write_text("not a video")
    (videos / "empty.mp4").write_bytes(b"")
    with open(videos / "train.txt", "a") as handle:
        handle.write("broken.mp4 0\nempty.mp4 0\n")  # class 0: 6 videos, so both halves hold 17
    # batch 17: each half (17 videos) is one whole batch, so every video is read in the one epoch
    options = dict(data="list", annotations=str(videos / "train.txt"), video_root=str(videos), num_frames=8, sampling_rate=1,
                   crop_size=32, epochs=1, warmup_epochs=0, batch_size=17)
    run_search(tiny(tmp_path, **options, max_bad_videos=0.1))
    listed = (tmp_path / "run" / "bad_videos.txt").read_text()
    assert str(videos / "broken.mp4") in listed and str(videos / "empty.mp4") in listed
    assert (tmp_path / "run" / "classes.txt").read_text().split() == [str(i) for i in range(8)]
    with pytest.raises(TooManyBadVideos, match="1 of 34 videos failed to decode, more than the allowed 1%"):
        run_search(tiny(tmp_path, **options, out=str(tmp_path / "strict"), max_bad_videos=0.01))


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_searches_compute_in_that_precision_keep_fp32_weights_and_take_every_step(tmp_path, monkeypatch, amp):
    """Every layer of every weight step and (first-order) architecture step computes in the low
    precision; weights and α stay fp32; both optimisers take each of their steps. Breaks if
    autocast is left off either step or off part of the supernet (a cell computing in fp32), if
    the model is cast instead, or if fp16's scaler skips steps or is never updated."""
    import darts_video.search as search
    from darts_video.supernet.architect import Architect

    low, config = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp], tiny(tmp_path, amp=amp, epochs=2)
    seen = {"weight": [], "architecture": []}

    def recorded(kind, step):
        def run(*args, **kwargs):
            with layer_output_dtypes() as dtypes:
                result = step(*args, **kwargs)
            seen[kind].append(dtypes["train"])
            return result
        return run

    monkeypatch.setattr(search, "weight_step", recorded("weight", search.weight_step))
    monkeypatch.setattr(Architect, "step", recorded("architecture", Architect.step))
    genotype = run_search(config)
    assert seen == {"weight": [{low}] * 8, "architecture": [{low}] * 4}  # 4 steps an epoch, α from epoch 2
    state = load_checkpoint(Path(config.out) / "checkpoints" / "latest.pt")
    assert {t.dtype for t in state["model"].values() if t.is_floating_point()} == {torch.float32}
    assert {int(s["step"]) for s in state["weight_optimizer"]["state"].values()} == {8}
    assert {int(s["step"]) for s in state["arch_optimizer"]["state"].values()} == {4}
    if amp == "fp16":  # its scale and its count of steps since the last overflow are saved
        assert state["scaler"]["scale"] == 2.0 ** 16 and state["scaler"]["_growth_tracker"] == 8
    else:
        assert state["scaler"] == {}
    metrics = [json.loads(line) for line in (Path(config.out) / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(m["loss/train"])) for m in metrics) and genotype.num_nodes == 2
    with pytest.raises(ValueError, match="unknown --amp 'fp8'"):
        tiny(tmp_path, amp="fp8")
    with pytest.raises(ConfigError, match="--checkpoint-every counts steps and must be 0 .off. or positive, got -1"):
        tiny(tmp_path, checkpoint_every=-1)
