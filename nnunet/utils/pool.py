"""Worker processes: :func:`run_parallel` maps a function over items with a progress bar; :class:`BoundedPool`
runs jobs in the background while the caller keeps producing (exports during prediction and validation)."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import warnings
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Sequence

from tqdm import tqdm

from nnunet.errors import NnunetError, warning_line
from nnunet.utils.lifeline import exit_with_parent

_shared: dict[str, Any] = {"pool": None, "workers": 0}


def _start_worker(parent_pid: int) -> None:
    """Worker initializer. Ctrl-C reaches every process of the terminal's group, but only the main process acts
    on it (it stops the workers); a worker reacting too would print its own traceback. A worker whose parent
    dies (kill -9, SIGTERM, out of memory) ends within a second instead of staying alive as an orphan."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # started with SIGINT blocked (see _SpawnProcessBlockingCtrlC)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    warnings.formatwarning = warning_line  # a worker's warnings look like the main process's: one line
    exit_with_parent(parent_pid)


class _SpawnProcessBlockingCtrlC(multiprocessing.context.SpawnProcess):
    """Starts its interpreter with SIGINT blocked: a Ctrl-C while a worker is still importing (before
    :func:`_start_worker` ignores it) would otherwise print a KeyboardInterrupt traceback from the worker. The
    signal mask is inherited across fork and exec; here it is blocked only for the moment of the start, so a
    Ctrl-C then reaches this process as soon as the worker exists instead of being lost."""

    def start(self) -> None:
        if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
            return super().start()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _SpawnContextBlockingCtrlC(multiprocessing.context.SpawnContext):
    Process = _SpawnProcessBlockingCtrlC


def spawn_pool(num_processes: int) -> ProcessPoolExecutor:
    """A spawn process pool whose workers leave Ctrl-C to this process (see :func:`stop_pool_now`) and end
    when this process ends, however it ends (see :mod:`nnunet.utils.lifeline`)."""
    return ProcessPoolExecutor(max_workers=num_processes, mp_context=_SpawnContextBlockingCtrlC(),
                               initializer=_start_worker, initargs=(os.getpid(),))


def stop_pool_now(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's processes at once (after Ctrl-C), instead of waiting for their current jobs. Jobs
    write their outputs atomically, so a terminated one leaves no file that looks complete."""
    processes = getattr(pool, "_processes", None) or {}  # no public API for this before Python 3.14
    for process in list(processes.values()):
        process.terminate()
    # the executor now fails its pending futures itself; wait for that instead of cancelling them (cancelling
    # first makes its manager thread raise InvalidStateError, printed as a traceback)
    pool.shutdown(wait=True)


@contextlib.contextmanager
def shared_pool(num_processes: int) -> Iterator[None]:
    """Let every :func:`run_parallel` call with ``num_processes`` workers inside the block reuse one pool.

    Starting spawn workers costs about a second each (imports), which adds up when a command runs several
    stages (fingerprint, then one preprocessing pass per configuration).
    """
    if num_processes <= 1 or _shared["pool"] is not None:
        yield
        return
    pool = spawn_pool(num_processes)
    _shared.update(pool=pool, workers=num_processes)
    try:
        yield
    finally:
        _shared.update(pool=None, workers=0)
        pool.shutdown(cancel_futures=True)


def _keep(index: int, result: Any) -> Any:
    return result


def _collect(pool: Executor, fn: Callable[..., Any], arg_tuples: list[tuple], bar: tqdm, desc: str,
             on_result: Callable[[int, Any], Any]) -> list[Any]:
    results: list[Any] = [None] * len(arg_tuples)
    futures: dict[Future, int] = {}
    try:
        # submitting is inside the try: a shared pool whose worker died while idle refuses new jobs here
        for i, args in enumerate(arg_tuples):
            futures[pool.submit(fn, *args)] = i
        for future in as_completed(futures):
            index = futures.pop(future)  # dropping the future lets a consumed result be freed
            results[index] = on_result(index, future.result())
            bar.update()
    except BrokenProcessPool:
        raise NnunetError(
            f"A background worker died while running {desc or fn.__name__}. This usually means it ran out of "
            f"memory: try fewer processes (-np)."
        ) from None
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt) and isinstance(pool, ProcessPoolExecutor):
            stop_pool_now(pool)
        else:
            for f in futures:
                f.cancel()
        raise
    return results


def run_parallel(fn: Callable[..., Any], arg_tuples: Sequence[tuple], num_processes: int, desc: str = "",
                 show_progress: bool = True, on_result: Callable[[int, Any], Any] = _keep) -> list[Any]:
    """Call ``fn(*args)`` for every tuple in ``arg_tuples``; return the results in input order.

    With ``num_processes <= 1`` (or a single item) everything runs in this process, which keeps tests and
    debugging simple. Otherwise a spawn pool is used (the :func:`shared_pool` one if it has the same size); a
    worker that dies (e.g. killed by the OOM killer) aborts the run with a clear message instead of hanging, and
    a worker's exception is re-raised here.
    """
    arg_tuples = list(arg_tuples)
    bar = tqdm(total=len(arg_tuples), desc=desc, disable=not show_progress)
    try:
        if num_processes <= 1 or len(arg_tuples) <= 1:
            results = []
            for index, args in enumerate(arg_tuples):
                results.append(on_result(index, fn(*args)))
                bar.update()
            return results
        if _shared["pool"] is not None and _shared["workers"] == num_processes:
            return _collect(_shared["pool"], fn, arg_tuples, bar, desc, on_result)
        with spawn_pool(min(num_processes, len(arg_tuples))) as pool:
            return _collect(pool, fn, arg_tuples, bar, desc, on_result)
    finally:
        bar.close()


class BoundedPool:
    """Run jobs in a spawn pool while the caller keeps producing, with at most ``workers + 2`` jobs pending.

    The bound keeps memory flat when the producer (e.g. a GPU predicting cases) is faster than the consumers
    (exports of large arrays): the producer waits instead of queueing every result. With ``num_processes``
    of 0 the jobs run here, in order, which keeps tests and debugging simple. Use it as a context manager:
    leaving the block normally waits for all jobs; Ctrl-C stops the workers at once; any other error cancels
    the jobs not yet started.

    Args:
        num_processes: worker processes (0: run each job in this process as it is submitted).
        what: what the jobs do, for the message shown when a worker dies (e.g. "export").
        hint: how to use fewer processes (e.g. "use fewer export processes (-nps)").
    """

    def __init__(self, num_processes: int, what: str = "background job", hint: str = "use fewer processes"):
        self.num_processes = max(0, int(num_processes))
        self.what, self.hint = what, hint
        self.pool: ProcessPoolExecutor | None = None
        self.pending: list[Future] = []
        self.done: list[Any] = []

    def __enter__(self) -> "BoundedPool":
        if self.num_processes > 0:
            self.pool = spawn_pool(self.num_processes)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.pool is None:
            return
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            stop_pool_now(self.pool)
        elif exc_type is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        else:
            try:
                self.results()
            finally:
                self.pool.shutdown(wait=True)

    def _died(self) -> NnunetError:
        article = "An" if self.what[:1].lower() in "aeiou" else "A"
        return NnunetError(f"{article} {self.what} worker died, most likely because it ran out of memory; "
                           f"{self.hint}.")

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` (here, or in a worker once fewer than ``workers + 2`` jobs are pending)."""
        if self.pool is None:
            self.done.append(fn(*args))
            return
        while sum(not f.done() for f in self.pending) >= self.num_processes + 2:
            wait([f for f in self.pending if not f.done()], return_when=FIRST_COMPLETED)
            self._raise_failures()
        self._raise_failures()
        try:
            self.pending.append(self.pool.submit(fn, *args))
        except BrokenProcessPool:
            raise self._died() from None

    def _raise_failures(self) -> None:
        for f in self.pending:
            if f.done() and f.exception() is not None:
                if isinstance(f.exception(), BrokenProcessPool):
                    raise self._died() from None
                raise f.exception()

    def results(self) -> list[Any]:
        """Wait for every job; return their results in submission order (a job's exception is raised here)."""
        if self.pool is None:
            return self.done
        try:
            return [f.result() for f in self.pending]
        except BrokenProcessPool:
            raise self._died() from None
