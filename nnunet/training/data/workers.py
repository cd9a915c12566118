"""Run patch loaders in background processes (``nnUNet_n_proc_DA``)."""
from __future__ import annotations

import os
import signal
import threading

import numpy as np

from nnunet.errors import NnunetError
from nnunet.utils.lifeline import exit_with_parent

DEFAULT_DA_PROCESSES = 12


def num_processes_for_augmentation() -> int:
    """``nnUNet_n_proc_DA`` if set, else 12; never more than the CPU count. 0 means: load in this process."""
    value = os.environ.get("nnUNet_n_proc_DA")
    if value is None:
        n = DEFAULT_DA_PROCESSES
    else:
        try:
            n = int(value)
        except ValueError:
            raise NnunetError(f"nnUNet_n_proc_DA must be an integer, got {value!r}.") from None
        if n < 0:
            raise NnunetError(f"nnUNet_n_proc_DA must be >= 0, got {n}.")
    return min(n, os.cpu_count() or 1)


class InProcessLoader:
    """The loader itself, iterated in this process (``nnUNet_n_proc_DA=0``)."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.loader)


class EndsWithParent:
    """A patch loader whose background copies end when the training process ends (kill -9 included).

    batchgenerators starts its workers itself and calls ``set_thread_id`` first thing in each of them: that is
    where the worker's watchdog starts (:func:`nnunet.utils.lifeline.exit_with_parent`). Without it a killed
    training leaves its augmentation workers spinning, about half a gigabyte each.
    """

    def __init__(self, loader):
        self.loader = loader
        self.parent_pid = os.getpid()

    def set_thread_id(self, thread_id: int) -> None:
        if os.getpid() != self.parent_pid:  # in a worker (forked: it inherited the parent's SIGTERM handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            exit_with_parent(self.parent_pid)
        self.loader.set_thread_id(thread_id)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.loader)

    def __getattr__(self, name):
        if name == "loader" or name.startswith("__"):  # not set yet (unpickling in a spawned worker)
            raise AttributeError(name)
        return getattr(self.loader, name)


def background_loader(loader, num_processes: int, num_cached: int, pin_memory: bool):
    """Iterate ``loader`` in ``num_processes`` worker processes (batchgenerators' non-deterministic augmenter).

    Each worker gets its own seed for numpy and torch, drawn from numpy's global generator, so runs seeded
    (or resumed with restored generator states) start their workers reproducibly-seeded.
    """
    if num_processes == 0:
        return InProcessLoader(loader)
    from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter

    seeds = [int(s) for s in np.random.randint(0, 2 ** 31 - 1, size=num_processes)]
    return NonDetMultiThreadedAugmenter(EndsWithParent(loader), None, num_processes, num_cached, seeds=seeds, pin_memory=pin_memory,
                                        wait_time=0.002)


def finish_loader(loader) -> None:
    """Stop a background loader's workers (nothing to do for an in-process one).

    batchgenerators' results thread can be unpickling a batch whose shared memory belongs to a worker that has
    just exited for the shutdown; it then dies with a FileNotFoundError traceback although nothing is wrong (the
    batch is not wanted any more). Exceptions of that thread after the shutdown began are therefore dropped.
    """
    finish = getattr(loader, "_finish", None)
    if finish is None:
        return
    results_thread = getattr(loader, "results_loop_thread", None)
    previous_hook = threading.excepthook

    def drop_shutdown_errors(args) -> None:
        if args.thread is not results_thread:
            previous_hook(args)

    threading.excepthook = drop_shutdown_errors
    try:
        finish()
    finally:
        if results_thread is not None:
            results_thread.join(timeout=10)
        threading.excepthook = previous_hook

