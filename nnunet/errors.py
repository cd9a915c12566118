"""User-facing errors.

Anything a user can cause (a bad dataset, a missing environment variable, an unknown class name) raises
:class:`NnunetError` or a subclass. The command-line wrappers print its message and exit non-zero
without a traceback; Python callers can catch it like any exception.
"""
from __future__ import annotations


class NnunetError(Exception):
    """An error in the user's input or set-up, with a message that says what to fix."""


class DatasetError(NnunetError):
    """A raw dataset (dataset.json, image or label files) is missing, malformed or inconsistent."""


class ConfigurationError(NnunetError):
    """A plans file, configuration name or class name is unknown or inconsistent."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a note for the user about what happens to the work done so far (printed by the CLI)."""

    def __init__(self, note: str):
        super().__init__(note)
        self.note = note


def warning_line(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` replacement: one ``nnunet: warning: ...`` line, without Python's source file and
    code line, which mean nothing to a user of the commands (used by the command-line wrappers and in workers)."""
    kind = "" if issubclass(category, UserWarning) else f" ({category.__name__})"
    return f"nnunet: warning{kind}: {message}\n"


def exception_line(error: BaseException) -> str:
    """``SyntaxError: invalid syntax (line 3)``, ``ModuleNotFoundError: No module named 'x'``: one line."""
    if isinstance(error, SyntaxError):
        return f"{type(error).__name__}: {error.msg} (line {error.lineno})"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
