"""2.8.1's ``*_entry_point()`` functions read ``sys.argv`` and return nothing: run one of our commands so."""
from __future__ import annotations

from typing import Callable, Sequence


def run_command(main: Callable[[Sequence[str] | None], int]) -> None:
    """Run ``main`` on ``sys.argv``; a failure (our commands print one line and return 1) exits with its code."""
    rc = main(None)
    if rc:
        raise SystemExit(rc)
