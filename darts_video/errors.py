"""The package's own error types: bad input a user can fix, as opposed to bugs.

The command-line scripts catch :class:`DartsVideoError` alone and print its message (exit
status 2); anything else is a bug and keeps its traceback. Each subclass also derives from the
built-in type a caller would expect (``ValueError`` for a bad value, ``KeyError`` for an unknown
name), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class DartsVideoError(Exception):
    """Bad input: an option, a file or a video the user can fix. The message names it."""


class ConfigError(DartsVideoError, ValueError):
    """An option, or a combination of options, that cannot run."""


class UnknownNameError(ConfigError, KeyError):
    """A name (operation, backbone, insertion point) that is not registered; lists those that are."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
