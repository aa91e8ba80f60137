"""The search and the retraining under torchrun with 2 processes (gloo, CPU), each launch guarded
by a timeout so that a hang fails: every rank ends with the same genotype and GDAS generator; a
gdas search killed inside an epoch resumes to the uninterrupted one; evaluation scores every video
once, exactly as one process does; a corrupt video in one rank's shard is listed once by both
ranks, and past the limit both stop with the same message."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import VIDEOS
from test_decode import make_bad_videos

RANK_SCRIPT = """
import dataclasses, hashlib, json, os, sys
import torch
torch.set_num_threads(1)
import darts_video.search as search
from darts_video.engine import distributed, load_checkpoint
from darts_video.search_config import SearchConfig

models = []  # every run's supernet, to read its α and GDAS generator after the run


class Recorded(search.Supernet):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        models.append(self)


search.Supernet = Recorded
compact = dict(separators=(",", ":"))


def report(tag, genotype):
    evidence = hashlib.sha256(json.dumps(genotype.to_dict()["evidence"]).encode()).hexdigest()
    alpha = [value for p in models[-1].arch_parameters() for value in p.detach().flatten().tolist()]
    gdas = hashlib.sha256(models[-1].generator.get_state().numpy().tobytes()).hexdigest()
    nodes = json.dumps([[n.input, n.op.name] for n in genotype.nodes], **compact)
    # one write per line: torchrun's workers write unbuffered, and print's pieces from two ranks would interleave
    sys.stdout.write(f"{tag} {os.environ['RANK']} {nodes} {evidence} {gdas} {json.dumps(alpha, **compact)}\\n")


config = SearchConfig(out=sys.argv[1], num_clips=64, epochs=2, warmup_epochs=1, batch_size=8, nodes=2,
                      ops=["identity", "map_temporal_sigmoid", "dot_temporal_softmax"], mode=sys.argv[2], device="cpu",
                      selection_clips=16)
report("RANK", search.run_search(config))
if config.mode == "gdas":  # killed inside epoch 2 (2 steps an epoch) after its checkpoint at step 3, then resumed
    interrupted = dataclasses.replace(config, out=sys.argv[1] + "-interrupted", checkpoint_every=3)
    weight_step, calls = search.weight_step, []

    def killed_at_step_four(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # on both ranks at the same step, as a kill of the job would
        return weight_step(*args, **kwargs)

    search.weight_step = killed_at_step_four
    try:
        search.run_search(interrupted)
    except KeyboardInterrupt:
        state = load_checkpoint(os.path.join(interrupted.out, "checkpoints", "latest.pt"))
        sys.stdout.write(f"KILLED {os.environ['RANK']} {state['step']} {state['inside_epoch']}\\n")
    search.weight_step = weight_step
    report("RESUMED", search.run_search(interrupted))
distributed.teardown()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(script: Path, *arguments: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``script`` in 2 gloo processes; a hang (a rank waiting in a collective another rank left)
    fails the test at ``timeout`` seconds, the launcher and both ranks killed."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), str(script), *arguments]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True) as launch:
        try:
            stdout, stderr = launch.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(launch.pid, signal.SIGKILL)  # the ranks are in the launcher's session
            stdout, stderr = launch.communicate()
            pytest.fail(f"torchrun {script.name} hung for {timeout} s\nstdout: {stdout[-2000:]}\nstderr: {stderr[-2000:]}")
    assert launch.returncode == 0, stderr[-3000:]
    return subprocess.CompletedProcess(command, launch.returncode, stdout, stderr)


def rank_lines(result: subprocess.CompletedProcess, tag: str) -> dict[str, str]:
    """rank -> the rest of that rank's line "``tag`` rank rest" (one line per rank)."""
    lines = [line.split(" ", 2) for line in result.stdout.splitlines() if line.startswith(tag + " ")]
    assert sorted(fields[1] for fields in lines) == ["0", "1"], f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
    return {rank: rest for _, rank, rest in lines}


def run_two_ranks(tmp_path: Path, mode: str) -> subprocess.CompletedProcess:
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    return torchrun(script, str(tmp_path / "run"), mode)


def test_two_gdas_ranks_derive_the_same_genotype_and_resume_inside_an_epoch_as_if_never_stopped(tmp_path):
    """Both ranks end with the same nodes, evidence (α, perturbation effects), GDAS generator and
    α; only rank 0 writes. Killed inside epoch 2 (after the checkpoint of ``--checkpoint-every 3``)
    and resumed under torchrun, the search ends as the uninterrupted one. Breaks if a rank's GDAS
    generator drifts from the other's (other cells sampled per rank), if a resume restores the
    generator or the data position wrongly (another continuation), or if ranks disagree."""
    result = run_two_ranks(tmp_path, "gdas")
    straight, resumed = rank_lines(result, "RANK"), rank_lines(result, "RESUMED")
    assert straight["0"] == straight["1"] and resumed["0"] == resumed["1"]  # nodes, evidence, GDAS generator, α
    straight, resumed = straight["0"].split(), resumed["0"].split()
    assert rank_lines(result, "KILLED")["0"] == "3 True"  # killed after a checkpoint inside epoch 2
    nodes, evidence, gdas, alpha = straight
    assert resumed[:3] == [nodes, evidence, gdas]
    assert json.loads(resumed[3]) == pytest.approx(json.loads(alpha), abs=1e-6)
    written = json.loads((tmp_path / "run" / "genotype.json").read_text())
    assert [[n["input"], n["op"]["name"]] for n in written["nodes"]] == json.loads(nodes)
    for run in ("run", "run-interrupted"):
        metrics = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        assert [m["epoch"] for m in metrics] == [1, 2]  # one writer, nothing logged twice
        assert metrics[-1]["step"] == 4  # each rank read its 16-clip shard of a 32-clip half: 2 batches of 8 per epoch


def test_two_darts_ranks_agree_too(tmp_path):
    straight = rank_lines(run_two_ranks(tmp_path, "darts"), "RANK")
    assert straight["0"] == straight["1"]


TRAIN_SCRIPT = """
import json, os, sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[2])
from test_distributed import bad_video_outcomes, train_config, real_video_views
from darts_video.engine import distributed
from darts_video.train import run_training
summary = run_training(train_config(sys.argv[1]))
compact = dict(sort_keys=True, separators=(",", ":"))
sys.stdout.write(f"RANK {os.environ['RANK']} {json.dumps(summary['test'], **compact)}\\n")  # one write per line (see above)
sys.stdout.write(f"VIEWS {os.environ['RANK']} {json.dumps(real_video_views(), **compact)}\\n")
sys.stdout.write(f"BAD {os.environ['RANK']} {json.dumps(bad_video_outcomes(sys.argv[3]), **compact)}\\n")
distributed.teardown()
"""


def train_config(out: str):
    from darts_video.train_config import TrainConfig

    # 33 test clips: an odd number, which DistributedSampler padded with a repeated video
    return TrainConfig(out=out, num_clips=64, num_val_clips=33, epochs=2, warmup_epochs=1, batch_size=8, genotype="non_local",
                       device="cpu")


def real_video_views() -> dict:
    """The multi-view test of a fixed tiny model on 5 real videos x 3 clips x 3 crops (15 items,
    odd), through this process's shard."""
    from darts_video.backbones import create_backbone
    from darts_video.data import ClipSampling, ClipTransform, VideoClipDataset, VideoEntry
    from darts_video.engine.distributed import shard_loader
    from darts_video.engine.evaluate import evaluate

    torch.manual_seed(0)
    model = create_backbone("tiny", num_classes=3)
    names = ["arm_wrestling.mp4", "mpeg4_320x240.avi", "short_32frames.mp4", "arm_wrestling.mp4", "mpeg4_320x240.avi"]
    entries = [VideoEntry(str(VIDEOS / name), i % 3) for i, name in enumerate(names)]
    dataset = VideoClipDataset(entries, ["a", "b", "c"], mode="test", sampling=ClipSampling(4, 4), num_test_clips=3, num_test_crops=3,
                               transform=ClipTransform(crop_size=32, train_scale=(36, 40), test_scale=36))
    return evaluate(model, shard_loader(dataset, 6, 0, 0, False, "cpu"), dataset.transform, dataset.classes, len(entries),
                    torch.device("cpu"))


def mixed_videos(bad_video: str) -> tuple:
    """4 videos, the one at index 1 corrupt: in the unshuffled shards of 2 ranks (every other
    index), only rank 1 meets it. Returns (model, {mode: dataset}) with a fixed tiny model."""
    from darts_video.backbones import create_backbone
    from darts_video.data import ClipSampling, ClipTransform, VideoClipDataset, VideoEntry

    torch.manual_seed(0)
    model = create_backbone("tiny", num_classes=3)
    paths = [str(VIDEOS / "arm_wrestling.mp4"), bad_video, str(VIDEOS / "short_32frames.mp4"), str(VIDEOS / "mpeg4_320x240.avi")]
    entries = [VideoEntry(path, i % 3) for i, path in enumerate(paths)]
    datasets = {mode: VideoClipDataset(entries, ["a", "b", "c"], mode=mode, sampling=ClipSampling(4, 4),
                                       transform=ClipTransform(crop_size=32, train_scale=(36, 40), test_scale=36))
                for mode in ("train", "val")}
    return model, datasets


def bad_video_outcomes(bad_video: str) -> dict:
    """What this rank sees of the corrupt video of :func:`mixed_videos`: the batches the training
    loop's :meth:`TrainingRun.batches` gives (training substitutes the video, evaluation leaves rank
    1's batch empty) and the videos listed; the evaluation's metrics and list; and the message each
    stops with when no bad video is allowed (a rank that did not stop would leave the other
    waiting in the next collective: the launch would hang)."""
    from darts_video.data import BadVideoLog, TooManyBadVideos
    from darts_video.engine.distributed import shard_loader
    from darts_video.engine.evaluate import evaluate
    from darts_video.engine.loop import EpochMeter, TrainingRun

    model, datasets = mixed_videos(bad_video)
    run, outcomes = TrainingRun("unused", seed=0, device="cpu"), {}
    for mode, dataset in datasets.items():
        run.bad_videos = BadVideoLog(len(dataset), 0.5)
        loader = shard_loader(dataset, 1, 0, 0, False, "cpu")
        batches = run.batches(loader, dataset.transform, EpochMeter(), mode, progress=False)
        outcomes[f"{mode}/labels"] = [labels.tolist() for _, labels in batches]
        outcomes[f"{mode}/listed"] = list(run.bad_videos.failures)
    log = BadVideoLog(len(datasets["val"]), 0.5)
    outcomes["evaluate"] = evaluate(model, shard_loader(datasets["val"], 1, 0, 0, False, "cpu"), datasets["val"].transform,
                                    datasets["val"].classes, len(datasets["val"]), torch.device("cpu"), bad_videos=log)
    outcomes["evaluate/listed"] = list(log.failures)
    for where in ("batches", "evaluate"):
        try:
            loader = shard_loader(datasets["val"], 1, 0, 0, False, "cpu")
            if where == "batches":
                run.bad_videos = BadVideoLog(len(datasets["val"]), 0.0)
                list(run.batches(loader, datasets["val"].transform, EpochMeter(), "val", progress=False))
            else:
                evaluate(model, loader, datasets["val"].transform, datasets["val"].classes, len(datasets["val"]), torch.device("cpu"),
                         bad_videos=BadVideoLog(len(datasets["val"]), 0.0))
            outcomes[f"stop/{where}"] = None
        except TooManyBadVideos as error:
            outcomes[f"stop/{where}"] = str(error)
    return outcomes


def test_two_retraining_ranks_shard_the_data_score_every_video_once_and_agree_on_bad_videos(tmp_path):
    """The retraining's test and a multi-view test equal one process's; a corrupt video in rank
    1's shard only is listed once on both ranks (so rank 0 writes it), the batches are skipped by
    both ranks together, and past the limit both ranks stop with the same message. Breaks if a
    rank records only its own failures, skips an empty batch alone (the ranks' collectives fall
    out of step), or raises alone (the other waits in a collective: the launch hangs)."""
    from darts_video.engine.distributed import shard_loader
    from darts_video.engine.evaluate import evaluate
    from darts_video.train import evaluate_checkpoint

    bad_video = str(make_bad_videos(tmp_path / "bad")["text"])
    script = tmp_path / "train_rank.py"
    script.write_text(TRAIN_SCRIPT)
    result = torchrun(script, str(tmp_path / "run"), str(Path(__file__).parent), bad_video)
    tests = {rank: json.loads(rest) for rank, rest in rank_lines(result, "RANK").items()}
    views = {rank: json.loads(rest) for rank, rest in rank_lines(result, "VIEWS").items()}
    bad = {rank: json.loads(rest) for rank, rest in rank_lines(result, "BAD").items()}
    assert tests["0"] == tests["1"] and views["0"] == views["1"]  # all-reduced: the same on both ranks
    alone = evaluate_checkpoint(train_config(str(tmp_path / "run")))  # this process, no process group
    assert tests["0"] == json.loads(json.dumps(alone)) and alone["videos"] == alone["views"] == 33
    single = real_video_views()
    assert views["0"] == json.loads(json.dumps(single)) and single["views"] == 5 * 3 * 3 and single["videos"] == 5
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [4, 8]  # 32 clips per rank, batches of 8
    assert (tmp_path / "run" / "model.pt2").exists()

    for rank, outcome in bad.items():
        for listed in ("train/listed", "val/listed", "evaluate/listed"):
            assert outcome[listed] == [bad_video], (rank, listed)
    assert len(bad["0"]["train/labels"]) == len(bad["1"]["train/labels"]) == 2  # rank 1's video replaced
    assert bad["0"]["val/labels"] == [[2]] and bad["1"]["val/labels"] == [[0]]  # the first batches skipped together
    model, datasets = mixed_videos(bad_video)
    one = evaluate(model, shard_loader(datasets["val"], 1, 0, 0, False, "cpu"), datasets["val"].transform, datasets["val"].classes,
                   len(datasets["val"]), torch.device("cpu"))
    assert bad["0"]["evaluate"] == bad["1"]["evaluate"] == json.loads(json.dumps(one)) and one["videos"] == 3
    for where in ("batches", "evaluate"):
        stops = [bad[rank][f"stop/{where}"] for rank in ("0", "1")]
        assert stops[0] == stops[1] and stops[0].startswith("1 of 4 videos failed to decode"), where
