"""Process helpers for the fault tests: descendants read from /proc (no psutil), waiting, killing."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of ``pid``, or None when it no longer exists."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may contain spaces and parentheses
    return fields[0], int(fields[1])


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (an ended process its new parent has not reaped yet)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """Every running process below ``pid`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] not in ("Z", "X"):
                children.setdefault(stat[1], []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def wait_for_workers(process: subprocess.Popen, count: int, timeout: float) -> set[int]:
    """The descendants of ``process`` once there are at least ``count`` of them (fails with its output if it
    ends or takes longer than ``timeout``)."""
    found: set[int] = set()

    def enough() -> bool:
        nonlocal found
        if process.poll() is not None:
            raise AssertionError(f"the command ended early ({process.returncode}):\n{_output(process)}")
        found = descendants(process.pid)
        return len(found) >= count

    assert wait_until(enough, timeout, 0.1), f"only {len(found)} worker(s) after {timeout} s:\n{_output(process)}"
    return found


def start(argv: list[str], env: dict[str, str], log_folder: Path, new_session: bool = False) -> subprocess.Popen:
    """Start a command with its output going to files (a pipe nobody reads could block it). ``new_session``:
    in its own process group, as a terminal's foreground job is (Ctrl-C signals the whole group)."""
    log_folder.mkdir(parents=True, exist_ok=True)
    out = open(log_folder / "stdout.txt", "w")
    err = open(log_folder / "stderr.txt", "w")
    process = subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True, start_new_session=new_session)
    out.close()
    err.close()
    process.log_folder = log_folder
    return process


def stderr_of(process: subprocess.Popen) -> str:
    return (process.log_folder / "stderr.txt").read_text()


def _output(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)
    return f"{(process.log_folder / 'stdout.txt').read_text()[-3000:]}\n{stderr_of(process)[-3000:]}"


def kill_and_check_no_orphans(process: subprocess.Popen, workers: set[int], sig: int, within: float) -> float:
    """Send ``sig`` to the command's main process only (as the OOM killer or ``kill PID`` would), wait for it, and
    assert that every one of its ``workers`` ends within ``within`` seconds. Returns the seconds they took."""
    start = time.monotonic()
    os.kill(process.pid, sig)
    process.wait(timeout=60)
    left = set(workers)
    wait_until(lambda: not any(running(p) for p in left), within)
    alive = sorted(p for p in left if running(p))
    for pid in alive:  # do not leave them behind for the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not alive, f"{len(alive)} of {len(workers)} worker(s) still running {within} s after {signal.Signals(sig).name} " \
                      f"of their parent: {alive}"
    return time.monotonic() - start
