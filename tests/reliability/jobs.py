"""Jobs that the fault tests run in worker processes (importable by spawned workers: PYTHONPATH=repository)."""
from __future__ import annotations

import os
import time
from pathlib import Path


def mark_then_sleep(folder: str, seconds: float) -> int:
    """Write ``folder/started_<pid>``, then sleep: a long job that the test can see running."""
    Path(folder, f"started_{os.getpid()}").write_text("")
    time.sleep(seconds)
    return os.getpid()


def publish_then_sleep(path: str, seconds: float) -> None:
    """Start writing ``path`` through ``publish`` and stay inside the write (a long export)."""
    from nnunet.utils.files import publish

    with publish(path) as tmp:
        tmp.write_bytes(b"partial")
        Path(path).parent.joinpath(f"started_{os.getpid()}").write_text("")
        time.sleep(seconds)
