"""The help format of every command: each option's default shown only where it says something.

argparse's ``ArgumentDefaultsHelpFormatter`` appends ``(default: X)`` to every option: ``None``
for options whose absence means something else ("the backbone's points"), ``True`` for a flag
such as ``--no-export`` that turns it off. Here the default is shown only when it is a value
the option takes; options without one say in their help what happens without them.
"""

from __future__ import annotations

import argparse


class _MeaningfulDefaults:
    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        if (default is None or default is argparse.SUPPRESS or isinstance(default, bool) or "default" in help_text
                or action.option_strings == [] or action.nargs == 0):
            return help_text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{help_text} (default: {shown})".lstrip()


class HelpFormatter(_MeaningfulDefaults, argparse.HelpFormatter):
    """Descriptions wrapped to the terminal."""


class DocstringHelpFormatter(_MeaningfulDefaults, argparse.RawDescriptionHelpFormatter):
    """Descriptions kept as written: the scripts' module docstrings, with their usage examples."""
