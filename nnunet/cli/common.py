"""Shared pieces of the command-line wrappers: error handling and common arguments."""
from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import logging
import os
import signal
import sys
import threading
import warnings
from typing import Callable, Iterator, Sequence

from nnunet.errors import NnunetError, warning_line


#: what Ctrl-C prints unless the command raised :class:`nnunet.errors.Interrupted` with its own note
INTERRUPTED_NOTE = "Work finished so far is kept; run the same command again to go on."

#: errors of the machine rather than of the program: shown as one line naming the path
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EMFILE,
                      errno.ENFILE, errno.ENAMETOOLONG}

_terminated: list[int] = []  # the termination signal received by the running command, if any


def _raise_on_termination(signum: int, frame) -> None:
    _terminated.append(signum)
    raise KeyboardInterrupt  # the same clean stop as Ctrl-C: workers stopped, partial files removed


@contextlib.contextmanager
def stop_cleanly_on_sigterm() -> Iterator[None]:
    """Inside the block SIGTERM (``kill``, a batch scheduler's time limit) stops the command like Ctrl-C does.

    Python's default for SIGTERM is to end at once, without removing temporary files or stopping workers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _terminated.clear()
    previous = signal.signal(signal.SIGTERM, _raise_on_termination)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Show warnings as one line each (``nnunet: warning: ...``), without Python's source file and code line,
    which mean nothing to a user of the command."""
    previous = warnings.formatwarning
    warnings.formatwarning = warning_line
    try:
        yield
    finally:
        warnings.formatwarning = previous


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


@contextlib.contextmanager
def messages_to_console(level: int = logging.INFO, info_stream=None) -> Iterator[None]:
    """Show the package's log messages from ``level`` up as plain lines while a command runs: info on
    ``info_stream`` (default stdout: what the command reports, results, files written, decisions), warnings and
    errors on stderr. These handlers replace the package logger's own for the block (a command nested in another
    sets its own), and everything is restored afterwards, so a test that calls several commands, or a program
    that imports the package, keeps its own logging set-up."""
    logger = logging.getLogger("nnunet")
    info = logging.StreamHandler(info_stream if info_stream is not None else sys.stdout)
    info.addFilter(_BelowWarning())
    problems = logging.StreamHandler(sys.stderr)
    problems.setLevel(logging.WARNING)
    for handler in (info, problems):
        handler.setFormatter(logging.Formatter("%(message)s"))
    saved = logger.level, logger.propagate, logger.handlers[:]
    logger.handlers = [info, problems]
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers = saved[2]
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def os_error_line(error: OSError) -> str | None:
    """One line for an error of the machine (full disk, read-only folder, no permission, missing path), or None
    for an OSError that is more likely a bug (shown with its traceback)."""
    from nnunet.utils.files import explain_os_error

    where = f"{error.filename}: " if error.filename is not None else ""
    if error.errno in ENVIRONMENT_ERRNOS:
        return f"{where}{explain_os_error(error)}"
    if isinstance(error, (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError)) and where:
        return f"{where}{error.strerror or error}."
    return None


def cli_entry(main: Callable[[Sequence[str] | None], int | None]) -> Callable[[Sequence[str] | None], int]:
    """Wrap a ``main(argv)`` so that user errors print one clear line and exit 1, Ctrl-C exits 130 and SIGTERM
    exits 143 (both after stopping workers and removing partial files).

    Errors of the machine (full disk, read-only or forbidden output folder) are user errors too: one line with
    the path and the errno. Tests call the wrapped function with an argv list and check the return code; the
    console scripts use its return value as the exit status.
    """

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        warnings.filterwarnings("default")
        try:
            with stop_cleanly_on_sigterm(), warnings_as_lines(), messages_to_console():
                return int(main(argv) or 0)
        except NnunetError as e:
            print(f"nnunet: error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as e:
            note = getattr(e, "note", INTERRUPTED_NOTE)
            if _terminated:
                print(f"nnunet: terminated ({signal.Signals(_terminated[0]).name}). {note}", file=sys.stderr)
                return 128 + _terminated[0]
            print(f"nnunet: interrupted. {note}", file=sys.stderr)
            return 130
        except OSError as e:
            line = os_error_line(e)
            if line is None:
                raise
            print(f"nnunet: error: {line}", file=sys.stderr)
            return 1

    return wrapper


def console(main: Callable[[Sequence[str] | None], int], fast_exit: bool = False) -> Callable[[], None]:
    """Turn a wrapped main into a console-script entry point.

    ``fast_exit``: once ``main`` has returned (its workers stopped, its files written and closed), end the
    process without Python's teardown of every imported module. With torch loaded that teardown took 0.4 s on
    the 2-core development machine (2.5 s while it was slow), pure waiting for a user who predicts one case per
    call. Only for commands that leave nothing to clean up at exit: no worker processes, no temporary folders
    left open.
    """

    def run() -> None:
        code = main(None)
        if fast_exit:
            logging.shutdown()  # flush and close log handlers (files included)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        sys.exit(code)

    run.__name__ = main.__name__
    return run


def add_progress_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="print more information")
    parser.add_argument("--no_pbar", action="store_true", help="do not show progress bars")
