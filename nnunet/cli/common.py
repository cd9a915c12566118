"""Shared pieces of the command-line wrappers: error handling and common arguments."""
from __future__ import annotations

import argparse
import functools
import sys
import warnings
from typing import Callable, Sequence

from nnunet.errors import NnunetError


#: what Ctrl-C prints unless the command raised :class:`nnunet.errors.Interrupted` with its own note
INTERRUPTED_NOTE = "Work finished so far is kept; run the same command again to go on."


def cli_entry(main: Callable[[Sequence[str] | None], int | None]) -> Callable[[Sequence[str] | None], int]:
    """Wrap a ``main(argv)`` so that user errors print one clear line and exit 1, and Ctrl-C exits 130.

    Tests call the wrapped function with an argv list and check the return code; the console scripts use
    its return value as the exit status.
    """

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        warnings.filterwarnings("default")
        try:
            return int(main(argv) or 0)
        except NnunetError as e:
            print(f"nnunet: error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as e:
            print(f"nnunet: interrupted. {getattr(e, 'note', INTERRUPTED_NOTE)}", file=sys.stderr)
            return 130

    return wrapper


def console(main: Callable[[Sequence[str] | None], int]) -> Callable[[], None]:
    """Turn a wrapped main into a console-script entry point."""

    def run() -> None:
        sys.exit(main(None))

    run.__name__ = main.__name__
    return run


def add_progress_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="print more information")
    parser.add_argument("--no_pbar", action="store_true", help="do not show progress bars")
