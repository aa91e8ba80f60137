"""The search under torchrun with 2 processes (gloo, CPU): every rank ends with the same genotype."""

import json
import socket
import subprocess
import sys
from pathlib import Path

RANK_SCRIPT = """
import json, os, sys
import torch
torch.set_num_threads(1)
from darts_video.engine import distributed
from darts_video.search import run_search
from darts_video.search_config import SearchConfig
config = SearchConfig(out=sys.argv[1], num_clips=64, epochs=2, warmup_epochs=1, batch_size=8, nodes=2,
                      ops=["identity", "map_temporal_sigmoid", "dot_temporal_softmax"], mode=sys.argv[2], device="cpu")
genotype = run_search(config)
compact = dict(separators=(",", ":"))
print("RANK", os.environ["RANK"], json.dumps([[n.input, n.op.name] for n in genotype.nodes], **compact),
      json.dumps(genotype.provenance["decisions"], **compact), flush=True)
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
    return [line for line in result.stdout.splitlines() if line.startswith("RANK ")], result


def test_two_gdas_ranks_derive_the_same_genotype_and_only_rank_zero_writes(tmp_path):
    lines, _ = run_two_ranks(tmp_path, "gdas")
    assert sorted(line.split()[1] for line in lines) == ["0", "1"]
    genotypes = {line.split(" ", 2)[2] for line in lines}
    assert len(genotypes) == 1  # same nodes and the same α/β probabilities on both ranks
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
from darts_video.engine import distributed
from darts_video.train import run_training
from darts_video.train_config import TrainConfig
config = TrainConfig(out=sys.argv[1], num_clips=64, num_val_clips=32, epochs=2, warmup_epochs=1, batch_size=8,
                     genotype="non_local", device="cpu")
summary = run_training(config)
print("RANK", os.environ["RANK"], json.dumps(summary["test"], sort_keys=True, separators=(",", ":")), flush=True)
distributed.teardown()
"""


def test_two_retraining_ranks_shard_the_data_and_agree_on_the_test(tmp_path):
    script = tmp_path / "train_rank.py"
    script.write_text(TRAIN_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), str(script), str(tmp_path / "run")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("RANK ")]
    assert sorted(line.split()[1] for line in lines) == ["0", "1"]
    assert len({line.split(" ", 2)[2] for line in lines}) == 1  # all-reduced test metrics: the same on both ranks
    test = json.loads(lines[0].split(" ", 2)[2])
    assert test["videos"] == 32  # each rank scored its half; the sums cover every video once
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [4, 8]  # 32 clips per rank, batches of 8
    assert (tmp_path / "run" / "model.pt2").exists()
