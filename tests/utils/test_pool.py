"""Worker pools: run_parallel (input order, on_result, Ctrl-C stops workers at once) and BoundedPool."""
from __future__ import annotations

import os
import signal
import time

import pytest

from nnunet.errors import NnunetError
from nnunet.utils.pool import BoundedPool, run_parallel
from tests.reliability.processes import running, wait_until


def _square_after(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x * x


def _sigint_disposition(_: int) -> bool:
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


@pytest.mark.parametrize("processes", [1, 2])
def test_results_in_input_order_and_on_result_sees_every_index(processes):
    seen = []
    results = run_parallel(_square_after, [(3, 0.2), (2, 0.0), (1, 0.1)], processes, show_progress=False,
                           on_result=lambda i, r: seen.append(i) or r + 1)
    assert results == [10, 5, 2] and sorted(seen) == [0, 1, 2]


def test_workers_leave_ctrl_c_to_the_main_process():
    assert run_parallel(_sigint_disposition, [(0,), (1,)], 2, show_progress=False) == [True, True]


def test_ctrl_c_stops_running_workers_instead_of_waiting_for_them():
    def interrupt(index, result):
        raise KeyboardInterrupt

    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_parallel(_square_after, [(1, 0.0), (2, 60.0), (3, 60.0)], 2, show_progress=False, on_result=interrupt)
    assert time.perf_counter() - start < 30  # the 60 s jobs were terminated, not awaited


def _square(x):
    return x * x


def _fail(x):
    raise ValueError(f"job {x} failed")


def _die(x):
    os._exit(1)


@pytest.mark.parametrize("processes", [0, 2])
def test_bounded_pool_returns_results_in_order(processes):
    with BoundedPool(processes) as pool:
        for i in range(7):
            pool.submit(_square, i)
        assert pool.results() == [i * i for i in range(7)]


def test_bounded_pool_raises_a_jobs_error():
    with pytest.raises(ValueError, match="job 3 failed"):
        with BoundedPool(2) as pool:
            pool.submit(_square, 1)
            pool.submit(_fail, 3)


def test_bounded_pool_reports_a_dead_worker_with_the_hint():
    with pytest.raises(NnunetError, match="export worker died.*fewer export processes"):
        with BoundedPool(1, "export", "use fewer export processes (-nps)") as pool:
            pool.submit(_die, 0)


def test_a_workers_warning_is_one_line(tmp_path):
    import subprocess
    import sys

    script = ("import warnings\nfrom nnunet.utils.pool import run_parallel\n"
              "run_parallel(warnings.warn, [('spacing differs in case_000',)] * 2, 2, show_progress=False)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and all(line == "nnunet: warning: spacing differs in case_000" for line in lines), lines


def _pid(_: int) -> int:
    return os.getpid()


def test_a_shared_pool_whose_worker_died_while_idle_gives_the_one_line_error():
    from nnunet.utils.pool import shared_pool

    with shared_pool(2):
        worker_pids = set(run_parallel(_pid, [(i,) for i in range(6)], 2, show_progress=False))
        assert os.getpid() not in worker_pids
        os.kill(next(iter(worker_pids)), signal.SIGKILL)  # dies between two stages, with no job running
        # once the executor sees the death it stops the other workers too and refuses new jobs at submit
        assert wait_until(lambda: not any(running(pid) for pid in worker_pids), timeout=30)
        with pytest.raises(NnunetError, match="background worker died while running stage 2"):
            run_parallel(_square_after, [(i, 0.5) for i in range(4)], 2, desc="stage 2", show_progress=False)
