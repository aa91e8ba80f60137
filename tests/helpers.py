"""Small helpers shared by the tests."""

import contextlib
import io
import os
import runpy
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from darts_video.backbones.base import VideoBackbone

VIDEOS = Path(__file__).resolve().parent / "data" / "videos"  # real files, see its README


@dataclass
class ScriptResult:
    returncode: int
    stdout: str
    stderr: str


def run_script(script: Path, *args: str, cwd: Path | None = None) -> ScriptResult:
    """Run a command-line script in this process, as ``python script args`` would (its ``__main__``
    block, its folder first on ``sys.path``, its exit status), without a new interpreter's imports:
    most of a script test's time is otherwise spent importing torch again. One test per script
    still runs it as a real subprocess."""
    stdout, stderr = io.StringIO(), io.StringIO()
    argv, path, directory, threads = sys.argv, list(sys.path), os.getcwd(), torch.get_num_threads()
    sys.argv, sys.path[:0] = [str(script), *args], [str(Path(script).parent)]
    returncode = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
        returncode = code if isinstance(code, int) else (0 if code is None else 1)
        if not isinstance(code, int) and code is not None:
            stderr.write(f"{code}\n")
    finally:
        sys.argv, sys.path[:] = argv, path
        os.chdir(directory)
        torch.set_num_threads(threads)
    return ScriptResult(returncode, stdout.getvalue(), stderr.getvalue())


class Killed(Exception):
    """Stands for a process killed mid-run: raised by a test's patched step or sampler."""


def kill_in_weight_step(monkeypatch, loop_module, first_step: int, kill_step: int) -> None:
    """Patch ``loop_module.weight_step`` (the search's or the retraining's) to raise :class:`Killed`
    when the run reaches global step ``kill_step``; its first call is step ``first_step`` (where
    the run resumes). Undo with ``monkeypatch.setattr(loop_module, "weight_step", original)``."""
    original, steps = loop_module.weight_step, []

    def killed(*args, **kwargs):
        steps.append(len(steps) + first_step)
        if steps[-1] == kill_step:
            raise Killed()
        return original(*args, **kwargs)

    monkeypatch.setattr(loop_module, "weight_step", killed)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-12)).item()


class FeatureBackbone(VideoBackbone):
    """Returns its input: a supernet on it is one cell whose output is compared with a target."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels, self.body = channels, torch.nn.Identity()

    def insertion_points(self) -> dict[str, int]:
        return {"body": self.channels}

    def default_insertion_points(self) -> tuple[str, ...]:
        return ("body",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def temporal_mean_task(generator: torch.Generator, channels: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """x -> x + its mean over time, broadcast: only a temporal operation can compute it (spatial and
    spatiotemporal attention mix other positions; the identity has nothing to add)."""
    x = torch.randn(16, channels, 4, 4, 4, generator=generator)  # (N, C, T, H, W)
    return x, x + x.mean(dim=2, keepdim=True)
def calibrate_batch_norms(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """Running statistics of real activations (one batch, in eval mode after): with random ones the
    signal of a deep random network fades and every input gives the same logits, so comparing two
    networks' logits would compare two constants."""
    for layer in model.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.momentum = 1.0
    with torch.no_grad():
        model.train()(inputs)
    return model.eval()


@contextlib.contextmanager
def layer_output_dtypes() -> Iterator[dict[str, set[torch.dtype]]]:
    """The dtypes every convolution and linear layer outputs while the block runs, by "train" and
    "eval" (the module's mode): under autocast all of them compute in the low precision."""
    seen: dict[str, set[torch.dtype]] = {"train": set(), "eval": set()}

    def record(module: nn.Module, args: tuple, output: object) -> None:
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)) and isinstance(output, torch.Tensor):
            seen["train" if module.training else "eval"].add(output.dtype)

    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        yield seen
    finally:
        hook.remove()
