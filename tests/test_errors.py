"""Bad input ends a command with its message and status 2; a bug keeps its traceback."""

import importlib.util
import sys
from pathlib import Path

import pytest

from darts_video.data import AnnotationError, TooManyBadVideos, VideoDecodeError
from darts_video.engine import CheckpointError, NonFiniteLoss, RunConfigMismatch
from darts_video.errors import ConfigError, DartsVideoError, UnknownNameError
from darts_video.genotype import GenotypeError
from darts_video.ops import OpSpec

REPO = Path(__file__).resolve().parents[1]


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_bad_input_error_shares_one_base_and_keeps_its_builtin_type():
    for error_type in (ConfigError, GenotypeError, RunConfigMismatch, AnnotationError):
        assert issubclass(error_type, DartsVideoError) and issubclass(error_type, ValueError)
    for error_type in (CheckpointError, NonFiniteLoss, TooManyBadVideos, VideoDecodeError):
        assert issubclass(error_type, DartsVideoError) and issubclass(error_type, RuntimeError)
    with pytest.raises(UnknownNameError) as error:
        OpSpec.parse("dot_spatial_tanh")
    assert isinstance(error.value, KeyError) and str(error.value).startswith("unknown operation 'dot_spatial_tanh'")  # unquoted


@pytest.mark.parametrize("name,entry", [("search_supernet", "run_search"), ("train_final", "run_training"), ("run_experiment", "run_experiment")])
def test_scripts_print_bad_input_in_one_line_and_let_bugs_raise(name, entry, monkeypatch, capsys):
    module = script(name)
    monkeypatch.setattr(sys, "argv", [name])

    def bad_input(*args, **kwargs):
        raise ConfigError("--num-clips must be positive, got 0")

    monkeypatch.setattr(module, entry, bad_input)
    assert module.main() == 2
    assert capsys.readouterr().err == "error: --num-clips must be positive, got 0\n"

    def bug(*args, **kwargs):
        raise ValueError("shapes (3,) and (4,) not aligned")  # not the package's: a bug

    monkeypatch.setattr(module, entry, bug)
    with pytest.raises(ValueError, match="not aligned"):
        module.main()
