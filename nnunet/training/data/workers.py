"""Run patch loaders in background processes (``nnUNet_n_proc_DA``)."""
from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from dataclasses import dataclass

import numpy as np

from batchgenerators.dataloading.nondet_multi_threaded_augmenter import (NonDetMultiThreadedAugmenter,
                                                                        pin_memory_of_all_eligible_items_in_dict)

from nnunet.errors import NnunetError
from nnunet.training.data.shared_batches import SlotReader, SlotWriter
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
        try:
            return next(self.loader)
        except (StopIteration, NnunetError):
            raise
        except Exception as e:  # a bug in the transforms: the same one line as from a worker
            raise WorkerFailure.of(e).error(in_worker=False) from None


#: set to 1 to see the traceback of a failed augmentation worker (the error itself is always one line)
DEBUG_VARIABLE = "nnUNet_debug"


@dataclass(frozen=True)
class WorkerFailure:
    """What a worker sends instead of a batch when loading or augmenting failed: plain text, so that it always
    reaches the training process (an exception object may not survive pickling), which then stops every worker
    and raises one error (:class:`BackgroundLoader`)."""

    message: str
    user_error: bool  # an NnunetError (a damaged case, a refused pickle): its message is all the user needs
    details: str  # the worker's traceback, shown with nnUNet_debug=1

    @classmethod
    def of(cls, error: Exception) -> "WorkerFailure":
        return cls(str(error), isinstance(error, NnunetError), traceback.format_exc())

    def error(self, in_worker: bool = True) -> NnunetError:
        """The one-line error; ``in_worker=False`` for a batch augmented in the training process itself."""
        who = "an augmentation worker" if in_worker else "the training process"
        if os.environ.get(DEBUG_VARIABLE, "0") not in ("", "0"):
            print(f"Traceback in {who} (pid {os.getpid()} reports it):\n{self.details}", file=sys.stderr, end="")
        if self.user_error:
            return NnunetError(self.message)
        last = self.details.strip().splitlines()[-1] if self.details.strip() else self.message
        what = "An augmentation worker failed" if in_worker else "Loading or augmenting a batch failed"
        return NnunetError(f"{what}: {last}. This is a bug (of a custom trainer's transforms, or ours); set "
                           f"{DEBUG_VARIABLE}=1 to see where it happened.")


class EndsWithParent:
    """A patch loader whose background copies end when the training process ends (kill -9 included), and report
    their failures as a :class:`WorkerFailure` item instead of dying with a traceback.

    batchgenerators starts its workers itself and calls ``set_thread_id`` first thing in each of them: that is
    where the worker's watchdog starts (:func:`nnunet.utils.lifeline.exit_with_parent`). Without it a killed
    training leaves its augmentation workers spinning, about half a gigabyte each. A worker that raises would
    print its own traceback and die, after which batchgenerators adds a second message of its own.
    """

    def __init__(self, loader, max_slots: int = 0):
        self.loader = loader
        self.parent_pid = os.getpid()
        self.failure: WorkerFailure | None = None
        self.max_slots = max_slots  # 0: batches go the plain (pickled) way
        self.writer: SlotWriter | None = None

    def set_thread_id(self, thread_id: int) -> None:
        if os.getpid() != self.parent_pid:  # in a worker (forked: it inherited the parent's SIGTERM handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            exit_with_parent(self.parent_pid)
            if self.max_slots:
                self.writer = SlotWriter(self.max_slots)
        self.loader.set_thread_id(thread_id)

    def __iter__(self):
        return self

    def __next__(self):
        if self.failure is not None:  # until the training process stops this worker
            return self.failure
        try:
            batch = next(self.loader)
            return self.writer.pack(batch) if self.writer is not None else batch
        except Exception as e:
            if os.getpid() == self.parent_pid:
                raise
            self.failure = WorkerFailure.of(e)
            return self.failure

    def __getattr__(self, name):
        # not set yet (unpickling in a spawned worker)
        if name in ("loader", "failure", "max_slots", "writer") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.loader, name)


def _is_results_thread(thread: threading.Thread | None) -> bool:
    # batchgenerators starts it unnamed, so Python names it after its target
    return thread is not None and thread.name.endswith("(results_loop)")


class _QuietResultsThreads:
    """While a background loader runs, its results thread's own exceptions are not printed: it fails when a
    worker dies (or is killed), and the training process reports that once, as one line."""

    active = 0
    previous_hook = None

    @classmethod
    def hook(cls, args) -> None:
        if cls.active and _is_results_thread(args.thread):
            return
        (cls.previous_hook or threading.__excepthook__)(args)

    @classmethod
    def start(cls) -> None:
        if cls.active == 0:
            cls.previous_hook, threading.excepthook = threading.excepthook, cls.hook
        cls.active += 1

    @classmethod
    def stop(cls) -> None:
        cls.active = max(0, cls.active - 1)
        if cls.active == 0 and threading.excepthook is cls.hook:
            threading.excepthook = cls.previous_hook or threading.__excepthook__


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
        cause = ", most likely by the out-of-memory killer" if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name}{cause}"
    return f"exited with status {exitcode}"


class BackgroundLoader:
    """batchgenerators' augmenter with one error instead of its tracebacks: a :class:`WorkerFailure` from a
    worker, or a worker that died, stops every worker and raises an NnunetError with the cause."""

    def __init__(self, augmenter, pin_memory: bool = False):
        self.augmenter = augmenter
        self.reader = SlotReader()
        # pinned here, not in the augmenter's results thread, which cannot see into a slot batch before it is unpacked
        self.pin_memory = pin_memory
        # the list batchgenerators fills with its worker processes when it starts them; its shutdown replaces
        # the attribute, so holding the list keeps their exit codes readable for the message
        self.workers = augmenter._processes
        self.results_loop_thread = None
        _QuietResultsThreads.start()
        self.quiet = True

    def __iter__(self):
        return self

    def __next__(self):
        try:
            item = next(self.augmenter)
        except RuntimeError as e:
            if "no longer alive" not in str(e):
                raise
            self._finish()
            raise NnunetError(self._death_message()) from None
        finally:
            self.results_loop_thread = self.augmenter.results_loop_thread or self.results_loop_thread
        if isinstance(item, WorkerFailure):
            self._finish()
            raise item.error()
        batch = self.reader.unpack(item)
        if self.pin_memory and isinstance(batch, dict):  # a copy: the slot is free again at once
            batch = pin_memory_of_all_eligible_items_in_dict(batch)
        return batch

    def _death_message(self) -> str:
        dead = [p for p in self.workers if p.exitcode not in (None, 0)]
        what = "; ".join(f"pid {p.pid} {_death(p.exitcode)}" for p in dead) or "one ended without a word"
        return (f"An augmentation worker stopped: {what}. Training cannot go on. If memory ran out, use fewer "
                f"workers (nnUNet_n_proc_DA) or a smaller batch; the checkpoints written so far are kept.")

    def _finish(self) -> None:
        try:
            self.augmenter._finish()
            self.reader.clear()
        finally:
            if self.quiet:
                self.quiet = False
                _QuietResultsThreads.stop()


#: set to 0 to send batches from the workers the plain (pickled) way instead of through reused shared memory
SHARED_BATCHES_VARIABLE = "nnUNet_shared_batches"


def slots_per_worker(num_cached: int) -> int:
    """Enough slots for every batch that can be on its way from one worker: the augmenter's two queues
    (``num_cached`` each), the batch its results thread holds, the one being made and two held by the trainer; 0
    when shared batches are switched off."""
    if os.environ.get(SHARED_BATCHES_VARIABLE, "1") in ("0", ""):
        return 0
    return 2 * num_cached + 4


def background_loader(loader, num_processes: int, num_cached: int, pin_memory: bool):
    """Iterate ``loader`` in ``num_processes`` worker processes (batchgenerators' non-deterministic augmenter).

    Each worker gets its own seed for numpy and torch, drawn from numpy's global generator, so runs seeded
    (or resumed with restored generator states) start their workers reproducibly-seeded. Batches come back
    through shared memory that each worker reuses (:mod:`nnunet.training.data.shared_batches`).
    """
    if num_processes == 0:
        return InProcessLoader(loader)
    seeds = [int(s) for s in np.random.randint(0, 2 ** 31 - 1, size=num_processes)]
    slots = slots_per_worker(num_cached)
    augmenter = NonDetMultiThreadedAugmenter(EndsWithParent(loader, slots), None, num_processes, num_cached,
                                             seeds=seeds, pin_memory=pin_memory and not slots, wait_time=0.002)
    return BackgroundLoader(augmenter, pin_memory=pin_memory and bool(slots))


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

