"""Trainers and launch helpers for the DDP / torchrun / interruption tests.

The trainers are found by torchrun workers as ``tests.training.torchrun_helpers.<Class>`` (PYTHONPATH = the
repository root); they are not registered at import (see :data:`RECORDING_TRAINERS`). With
``NNUNET_TEST_RECORD`` set to a folder, every process appends what the tests check to ``events_{pid}.jsonl``:
its start (rank, TORCHELASTIC_RESTART_COUNT), each epoch it starts, and a digest of its first training batch.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from nnunet.training import ddp
from tests.training.helpers import TinyTestTrainer

ROOT = Path(__file__).resolve().parents[2]


def record(event: str, **values) -> None:
    folder = os.environ.get("NNUNET_TEST_RECORD")
    if not folder:
        return
    entry = {"event": event, "pid": os.getpid(), "rank": ddp.rank_and_world()[0],
             "restart": ddp.elastic_restart_count(), "time": time.time(), **values}
    with open(Path(folder) / f"events_{os.getpid()}.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")


def events(folder: Path, event: str | None = None) -> list[dict]:
    """All recorded events (of one kind), in time order."""
    found = [json.loads(line) for path in folder.glob("events_*.jsonl") for line in path.read_text().splitlines()]
    return sorted((e for e in found if event is None or e["event"] == event), key=lambda e: e["time"])


class RecordingTrainer(TinyTestTrainer):
    """Two short epochs; records its start, epoch starts and first batch (see module docstring)."""

    num_epochs = 2
    num_iterations_per_epoch = 3
    num_val_iterations_per_epoch = 1
    oversample_foreground_percent = 0.0  # every rank samples alike; only the random stream tells ranks apart
    #: seconds each training step sleeps (gives the kill tests a moment inside an epoch)
    step_pause = 0.0

    def on_train_start(self) -> None:
        record("start")
        self._batch_recorded = False
        super().on_train_start()

    def on_epoch_start(self) -> None:
        record("epoch", epoch=self.current_epoch)
        super().on_epoch_start()

    def train_step(self, batch: dict) -> dict:
        if not self._batch_recorded:
            self._batch_recorded = True
            record("batch", epoch=self.current_epoch,
                   digest=hashlib.sha256(batch["data"].numpy().tobytes()).hexdigest())
        if self.step_pause:
            time.sleep(self.step_pause)
        return super().train_step(batch)


class ResumeRecordingTrainer(RecordingTrainer):
    """``NNUNET_TEST_EPOCHS`` epochs (default 2); records the head of the NumPy generator state each rank restores
    from a checkpoint."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_epochs = int(os.environ.get("NNUNET_TEST_EPOCHS", self.num_epochs))

    def load_checkpoint(self, filename_or_checkpoint) -> None:
        import numpy as np

        super().load_checkpoint(filename_or_checkpoint)
        record("restored", numpy_head=[int(k) for k in np.random.get_state()[1][:4]])


class SlowRecordingTrainer(RecordingTrainer):
    """Four epochs of about a second each, for tests that kill or interrupt a process inside an epoch."""

    num_epochs = 4
    num_iterations_per_epoch = 4
    step_pause = 0.25


class WaitBeforeValidationTrainer(RecordingTrainer):
    """One quick epoch, then a final validation that first waits a minute (for a signal)."""

    num_epochs = 1

    def perform_actual_validation(self, save_probabilities: bool = False):
        record("validation")
        time.sleep(60)  # the injected hang itself (the test signals it), not a wait
        return super().perform_actual_validation(save_probabilities)


#: the trainers of this module, registered by nobody at import: the torchrun workers and the nnUNet_train
#: processes find them by their dotted path (:func:`train_args`); a test that looks one up by its name (a
#: checkpoint names ``RecordingTrainer``) registers it with the ``register`` fixture.
RECORDING_TRAINERS = (RecordingTrainer, ResumeRecordingTrainer, SlowRecordingTrainer, WaitBeforeValidationTrainer)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(record: Path | None = None, **extra: str) -> dict[str, str]:
    """The test's environment for a child process: CPU only, one thread, no augmentation workers."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1",
               nnUNet_compile="0", PYTHONUNBUFFERED="1")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "TORCHELASTIC_RESTART_COUNT"):
        env.pop(var, None)
    if record is not None:
        env["NNUNET_TEST_RECORD"] = str(record)
    env.update(extra)
    return env


def train_args(trainer: str, *extra: str) -> list[str]:
    return ["901", "3d_fullres", "0", "-tr", f"tests.training.torchrun_helpers.{trainer}", "-device", "cpu", *extra]


def start_torchrun(node_rank: int, nnodes: int, port: int, run_id: str, args: list[str], env: dict[str, str],
                   log: Path, nproc_per_node: int = 1, max_restarts: int = 0,
                   share_store: bool = False) -> subprocess.Popen:
    """One torchrun launcher (one "node") of a c10d rendezvous on 127.0.0.1, running ``nnunet.cli.train``.

    ``share_store=False`` sets TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1, as documentation/multi_node.md asks for
    elastic restarts. :func:`stop` ends the launcher with all its workers.
    """
    if not share_store:
        env = dict(env, TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nnodes), "--node-rank", str(node_rank),
               "--nproc-per-node", str(nproc_per_node), "--rdzv-backend", "c10d",
               "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", run_id, "--max-restarts", str(max_restarts),
               "--monitor-interval", "0.5", "-m", "nnunet.cli.train", *args]
    with open(log, "wb") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def run_two_nodes(run_id: str, args: list[str], envs: list[dict[str, str]], logs: list[Path],
                  timeout: float) -> tuple[list[int], list[str]]:
    """Two torchrun launchers (nodes 0 and 1) to the end: their exit codes and their logs."""
    port = free_port()
    launchers = [start_torchrun(node, 2, port, run_id, args, envs[node], logs[node]) for node in (0, 1)]
    try:
        for launcher in launchers:
            launcher.wait(timeout=timeout)
    finally:
        stop(*launchers)
    return [launcher.returncode for launcher in launchers], [log.read_text() for log in logs]


def start_train(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``nnUNet_train`` (the console script of this environment) in its own session."""
    script = Path(sys.executable).parent / "nnUNet_train"
    with open(log, "wb") as out:
        return subprocess.Popen([str(script), *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_for(condition, timeout: float, procs=(), what: str = "condition") -> None:
    """Poll ``condition()`` until true; fail early when one of ``procs`` has exited."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"a process ended (exit code {proc.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def descendants(pid: int) -> list[int]:
    """Pids of all processes below ``pid`` (from /proc): torchrun starts its workers in sessions of their own."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop(*procs: subprocess.Popen) -> None:
    """Kill each process that still runs together with everything it started (workers included)."""
    for proc in procs:
        if proc.poll() is None:
            for pid in [*descendants(proc.pid), proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        proc.wait(timeout=30)
