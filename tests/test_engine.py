"""Checkpoints, RNG state and run directories: atomic, weights_only, resumable, readable back;
the shared weight step."""

import collections
import random

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from darts_video.engine import (
    CheckpointError,
    NonFiniteLoss,
    RunConfigMismatch,
    RunDirectory,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
    weight_step,
)


def test_checkpoint_round_trips_models_optimisers_and_rng(tmp_path):
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 7, "rng": rng_state()}
    path = save_checkpoint(state, tmp_path / "checkpoints" / "latest.pt")
    assert [p.name for p in path.parent.iterdir()] == ["latest.pt"]  # no temporary file left
    loaded = load_checkpoint(path)
    assert loaded["step"] == 7 and torch.equal(loaded["model"]["weight"], model.weight)
    restored = torch.optim.SGD(torch.nn.Linear(4, 2).parameters(), lr=0.1, momentum=0.9)
    restored.load_state_dict(loaded["optimizer"])
    assert torch.equal(restored.state[restored.param_groups[0]["params"][0]]["momentum_buffer"], optimizer.state[model.weight]["momentum_buffer"])


def test_rng_state_restores_python_numpy_and_torch():
    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(2))
    restore_rng_state(state)
    second = (random.random(), np.random.rand(), torch.rand(2))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


class NotAllowed:
    pass


def test_loading_refuses_pickled_objects_and_names_bad_files(tmp_path):
    torch.save({"object": NotAllowed()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"evil.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    good = save_checkpoint({"w": torch.ones(1000)}, tmp_path / "good.pt")
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"cut.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match=r"missing.pt: no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_run_directory_resumes_with_the_same_config_and_refuses_another(tmp_path):
    run = RunDirectory(tmp_path / "run", {"lr": 0.1, "epochs": 3})
    assert run.resume_state() is None
    run.save_checkpoint({"step": 5, "weights": torch.zeros(2)}, is_best=True)
    assert (tmp_path / "run" / "checkpoints" / "best.pt").exists()
    again = RunDirectory(tmp_path / "run", {"lr": 0.1, "epochs": 3})
    assert again.resume_state()["step"] == 5
    with pytest.raises(RunConfigMismatch, match=r"another configuration \(epochs: 3 -> 4, seed: None -> 1\)"):
        RunDirectory(tmp_path / "run", {"lr": 0.1, "epochs": 4, "seed": 1})
    # an option added since the run started counts as its default there
    assert RunDirectory(tmp_path / "run", {"lr": 0.1, "epochs": 3, "seed": 0}, defaults={"seed": 0, "lr": 1.0}).resume_state()["step"] == 5
    with pytest.raises(RunConfigMismatch, match=r"another configuration \(seed: 0 -> 1\)"):
        RunDirectory(tmp_path / "run", {"lr": 0.1, "epochs": 3, "seed": 1}, defaults={"seed": 0})


def test_a_run_directory_moved_elsewhere_resumes_there(tmp_path):
    RunDirectory(tmp_path / "run", {"out": str(tmp_path / "run"), "lr": 0.1}).save_checkpoint({"step": 5})
    (tmp_path / "run").rename(tmp_path / "moved")
    assert RunDirectory(tmp_path / "moved", {"out": str(tmp_path / "moved"), "lr": 0.1}).resume_state()["step"] == 5
    with pytest.raises(RunConfigMismatch, match=r"another configuration \(lr: 0.1 -> 0.2\)"):  # the rest is still checked
        RunDirectory(tmp_path / "moved", {"out": str(tmp_path / "moved"), "lr": 0.2})


def test_other_ranks_write_nothing(tmp_path):
    run = RunDirectory(tmp_path / "run", {"a": 1}, rank=1)
    run.log_metrics({"step": 1, "loss": 1.0})
    run.save_checkpoint({"step": 1})
    assert not (tmp_path / "run").exists()


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_metrics_go_to_json_lines_and_tensorboard_and_a_resume_drops_what_came_after_its_checkpoint(tmp_path):
    run = RunDirectory(tmp_path / "run", {"a": 1})
    for step in range(1, 7):
        run.log_metrics({"step": step, "loss/train": 1.0 / step, "note": "text is kept out of TensorBoard"})
        if step == 4:
            run.save_checkpoint({"step": step})
    run.close()
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3, 4, 5, 6]
    assert [step for step, _ in scalars(tmp_path / "run" / "tensorboard")["loss/train"]] == [1, 2, 3, 4, 5, 6]

    resumed = RunDirectory(tmp_path / "run", {"a": 1})
    assert resumed.resume_state()["step"] == 4
    assert [r["step"] for r in resumed.read_metrics()] == [1, 2, 3, 4]
    for step in (5, 6):
        resumed.log_metrics({"step": step, "loss/train": 2.0})
    resumed.close()
    events = scalars(tmp_path / "run" / "tensorboard")["loss/train"]
    assert collections.Counter(step for step, _ in events) == {s: 1 for s in range(1, 7)}
    assert dict(events)[6] == 2.0
    assert [r["loss/train"] for r in resumed.read_metrics()][-2:] == [2.0, 2.0]


def test_weight_step_updates_clips_and_stops_on_a_non_finite_loss_without_touching_the_weights():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    clips, labels = 100 * torch.randn(4, 3, 1, 2, 2), torch.tensor([0, 1, 2, 0])
    before = [p.detach().clone() for p in model.parameters()]
    logits, loss = weight_step(model, clips, labels, optimizer, scaler, None, "step 0", max_grad_norm=0.5)
    assert logits.shape == (4, 3) and loss > 0
    step_norm = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)]).norm()
    assert step_norm == pytest.approx(0.5, rel=1e-4)  # lr 1: the step is the clipped gradient

    clips[0, 0, 0, 0, 0] = float("nan")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteLoss, match="loss became nan at step 7 \\(epoch 2\\)"):
        weight_step(model, clips, labels, optimizer, scaler, None, "step 7 (epoch 2)")
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
