"""run_parallel: results in input order, on_result as results arrive, and Ctrl-C that stops the workers at once."""
from __future__ import annotations

import signal
import time

import pytest

from nnunet.utils.pool import run_parallel


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
