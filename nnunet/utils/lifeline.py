"""Worker processes end when the process that started them ends.

A worker that outlives its parent (killed with ``kill -9``, by the OOM killer, by a scheduler's SIGTERM) keeps
its memory (often half a gigabyte) and its CPU for as long as it runs, and nobody is left to collect its work.
:func:`exit_with_parent` gives a worker a small watchdog thread: it notices that the parent is gone (the worker
was re-parented) within :data:`POLL_SECONDS`, removes the temporary files this worker was writing and ends the
worker at once. Every pool of this package (``utils.pool.spawn_pool``) and the training's augmentation workers
call it.

Why a thread that polls and not ``prctl(PR_SET_PDEATHSIG)``: the kernel sends that signal when the *thread* that
started the worker ends, which would kill healthy workers whose pool was started from a short-lived thread. The
thread needs the interpreter lock to act, so a worker inside a long native call that holds it (rare: numpy and
torch release it) ends when that call returns.
"""
from __future__ import annotations

import os
import threading
import time

#: how often the watchdog looks at its parent (seconds); the worst-case delay before an orphan ends
POLL_SECONDS = 0.5
#: exit status of a worker that ended because its parent was gone (128 + SIGHUP, as a terminal hang-up)
ORPHAN_EXIT_CODE = 129

_watching: dict[int, int] = {}  # this process's pid -> the parent pid it watches (a forked child starts empty)
_lock = threading.Lock()


def exit_with_parent(parent_pid: int | None = None) -> None:
    """End this process soon after ``parent_pid`` (default: the current parent) ends.

    Call it in the child, as early as possible; pass the parent's pid as the parent saw it (``os.getpid()``
    before starting the child) so that a parent that dies during the child's start-up is noticed too. Calling it
    again in the same process does nothing.
    """
    parent_pid = os.getppid() if parent_pid is None else int(parent_pid)
    with _lock:
        if os.getpid() in _watching:
            return
        _watching[os.getpid()] = parent_pid
    threading.Thread(target=_watch, args=(parent_pid,), name="nnunet-exit-with-parent", daemon=True).start()


def parent_is_alive(parent_pid: int) -> bool:
    """Whether this process is still the child of ``parent_pid`` (a dead parent's children are re-parented)."""
    return os.getppid() == parent_pid


def _watch(parent_pid: int) -> None:
    while parent_is_alive(parent_pid):
        time.sleep(POLL_SECONDS)
    from nnunet.utils.files import discard_partial_files

    discard_partial_files()
    os._exit(ORPHAN_EXIT_CODE)
