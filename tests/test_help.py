"""Every command's --help: each default reads as what it means."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("search_supernet", "train_final", "run_experiment", "derive_genotype", "describe", "scan_videos", "make_synthetic_dataset", "plan_search")


def parsers_of(script: str) -> list[argparse.ArgumentParser]:
    """The script's parser and its sub-commands' (scripts/ is not a package: import by path)."""
    spec = importlib.util.spec_from_file_location(f"script_{script}", REPO / "scripts" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    build = getattr(module, "build_parser")  # search / train / experiment re-export theirs from the package
    parser = build()
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices.values())
    return found


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_never_shows_a_meaningless_default(script):
    for parser in parsers_of(script):
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: True)" not in text and "(default: False)" not in text, text
        assert not re.search(r"\(default: \[", text), text  # lists read as they are typed
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, f"{script}: {action.option_strings} has no help, so neither its default nor its meaning shows"
            if action.nargs == 0:
                continue  # flags: present or not
            if action.default is None or isinstance(action.default, bool):
                assert action.help and "default" in action.help, f"{script}: {action.option_strings} does not say what happens without it"


def test_a_flag_that_turns_something_off_does_not_claim_a_default_and_values_do():
    train = " ".join(parsers_of("train_final")[0].format_help().split())  # argparse wraps lines anywhere
    assert "--no-export skip the torch.export of the trained model (model.pt2) --eval-only" in train
    assert "(default: runs/train)" in train and "(default: 3e-3)" not in train and "(default: 0.003)" in train
    assert "(default: *)" in " ".join(parsers_of("search_supernet")[0].format_help().split())
