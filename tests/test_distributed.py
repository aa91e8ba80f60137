"""The search and the retraining under torchrun with 2 processes (gloo, CPU): every rank ends with
the same genotype; evaluation scores every video once, exactly as one process does."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import torch

from helpers import VIDEOS

RANK_SCRIPT = """
import hashlib, json, os, sys
import torch
torch.set_num_threads(1)
from darts_video.engine import distributed
from darts_video.search import run_search
from darts_video.search_config import SearchConfig
config = SearchConfig(out=sys.argv[1], num_clips=64, epochs=2, warmup_epochs=1, batch_size=8, nodes=2,
                      ops=["identity", "map_temporal_sigmoid", "dot_temporal_softmax"], mode=sys.argv[2], device="cpu",
                      selection_clips=16)
genotype = run_search(config)
compact = dict(separators=(",", ":"))
evidence = hashlib.sha256(json.dumps(genotype.to_dict()["evidence"]).encode()).hexdigest()
# one write per line: torchrun's workers write unbuffered, and print's pieces from two ranks would interleave
sys.stdout.write(f"RANK {os.environ['RANK']} {json.dumps([[n.input, n.op.name] for n in genotype.nodes], **compact)} {evidence}\\n")
distributed.teardown()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_two_ranks(tmp_path: Path, mode: str) -> tuple[list[str], subprocess.CompletedProcess]:
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), str(script), str(tmp_path / "run"), mode]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("RANK ")]
    assert len(lines) == 2, f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
    return lines, result


def test_two_gdas_ranks_derive_the_same_genotype_and_only_rank_zero_writes(tmp_path):
    lines, _ = run_two_ranks(tmp_path, "gdas")
    assert sorted(line.split()[1] for line in lines) == ["0", "1"]
    genotypes = {line.split(" ", 2)[2] for line in lines}
    assert len(genotypes) == 1  # same nodes and the same evidence (α, perturbation effects) on both ranks
    written = json.loads((tmp_path / "run" / "genotype.json").read_text())
    assert [[n["input"], n["op"]["name"]] for n in written["nodes"]] == json.loads(lines[0].split(" ", 3)[2])
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]  # one writer: no line twice
    assert metrics[-1]["step"] == 4  # each rank read its 16-clip shard of a 32-clip half: 2 batches of 8 per epoch


def test_two_darts_ranks_agree_too(tmp_path):
    lines, _ = run_two_ranks(tmp_path, "darts")
    assert len({line.split(" ", 2)[2] for line in lines}) == 1


TRAIN_SCRIPT = """
import json, os, sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[2])
from test_distributed import train_config, real_video_views
from darts_video.engine import distributed
from darts_video.train import run_training
summary = run_training(train_config(sys.argv[1]))
compact = dict(sort_keys=True, separators=(",", ":"))
sys.stdout.write(f"RANK {os.environ['RANK']} {json.dumps(summary['test'], **compact)}\\n")  # one write per line (see above)
sys.stdout.write(f"VIEWS {os.environ['RANK']} {json.dumps(real_video_views(), **compact)}\\n")
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


def test_two_retraining_ranks_shard_the_data_and_score_every_video_once_as_one_process_does(tmp_path):
    from darts_video.train import evaluate_checkpoint

    script = tmp_path / "train_rank.py"
    script.write_text(TRAIN_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), str(script), str(tmp_path / "run"), str(Path(__file__).parent)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    tests = {line.split()[1]: json.loads(line.split(" ", 2)[2]) for line in result.stdout.splitlines() if line.startswith("RANK ")}
    views = {line.split()[1]: json.loads(line.split(" ", 2)[2]) for line in result.stdout.splitlines() if line.startswith("VIEWS ")}
    assert sorted(tests) == sorted(views) == ["0", "1"]
    assert tests["0"] == tests["1"] and views["0"] == views["1"]  # all-reduced: the same on both ranks
    alone = evaluate_checkpoint(train_config(str(tmp_path / "run")))  # this process, no process group
    assert tests["0"] == json.loads(json.dumps(alone)) and alone["videos"] == alone["views"] == 33
    single = real_video_views()
    assert views["0"] == json.loads(json.dumps(single)) and single["views"] == 5 * 3 * 3 and single["videos"] == 5
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [4, 8]  # 32 clips per rank, batches of 8
    assert (tmp_path / "run" / "model.pt2").exists()
