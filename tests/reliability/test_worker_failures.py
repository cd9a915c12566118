"""Failures inside augmentation workers surface once (issue 25): the worker's own message, exit 1, no traceback,
no second message from batchgenerators, no leaked semaphores, no process left, with nnUNet_n_proc_DA 0, 1 and 2.

Each test plants the real fault in a private copy of the tiny preprocessed dataset (a truncated .b2nd, a
pickle that would run code, a SIGKILL of one worker) and runs the console command as a user would.
"""
from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess

import pytest

from tests.reliability.helpers import TINY, TINY_ID, command_env, script
from tests.reliability.processes import descendants, kill_and_check_no_orphans, running, start, stderr_of, \
    wait_for_workers, wait_until

CONFIG = "nnUNetPlans_3d_fullres"
NOISE = ("Traceback", "background workers", "Exception in", "leaked", "resource_tracker", "Please check")


@pytest.fixture
def own_dirs(tiny_preprocessed, tmp_path) -> dict:
    """The session's tiny dataset with a private copy of its preprocessed folder (the faults damage it)."""
    dirs = dict(tiny_preprocessed, preprocessed=tmp_path / "preprocessed", results=tmp_path / "results")
    shutil.copytree(tiny_preprocessed["preprocessed"], dirs["preprocessed"])
    dirs["results"].mkdir()
    return dirs


def _train(dirs, workers: int, trainer: str = "nnUNetTrainer_1epoch") -> subprocess.CompletedProcess:
    return subprocess.run([script("nnUNet_train"), str(TINY_ID), "3d_fullres", "0", "-tr", trainer, "-device", "cpu"],
                          env=command_env(dirs, nnUNet_n_proc_DA=str(workers)), capture_output=True, text=True,
                          timeout=600)


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("nnunet: error:")]
    assert len(lines) == 1, stderr[-3000:]
    assert not any(word in stderr for word in NOISE), stderr[-3000:]
    return lines[0]


def _no_checkpoint(dirs) -> bool:
    return not list(dirs["results"].rglob("checkpoint_*.pth"))


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_truncated_case_file_is_one_line_naming_it(own_dirs, workers):
    damaged = own_dirs["preprocessed"] / TINY / CONFIG / "case_001.b2nd"
    damaged.write_bytes(damaged.read_bytes()[:100])
    result = _train(own_dirs, workers)
    assert result.returncode == 1
    line = _one_error_line(result.stderr)
    assert str(damaged) in line and "not a readable .b2nd file" in line and "Re-run nnUNet_preprocess" in line
    assert _no_checkpoint(own_dirs)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("workers", [0, 2])
def test_refused_case_pickle_is_one_line_and_runs_nothing(own_dirs, tmp_path, workers):
    marker = tmp_path / "PWNED"
    poisoned = own_dirs["preprocessed"] / TINY / CONFIG / "case_002.pkl"
    poisoned.write_bytes(pickle.dumps(_Payload(marker)))
    result = _train(own_dirs, workers)
    assert result.returncode == 1
    line = _one_error_line(result.stderr)
    assert str(poisoned) in line
    assert not marker.exists() and _no_checkpoint(own_dirs)


def test_killed_worker_stops_training_with_one_line_and_no_orphans(own_dirs, tmp_path):
    process = start([script("nnUNet_train"), str(TINY_ID), "3d_fullres", "0", "-device", "cpu"],
                    command_env(own_dirs, nnUNet_n_proc_DA="2"), tmp_path / "log")
    workers = wait_for_workers(process, 3, 240)  # 2 training + 1 validation augmentation workers
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)  # as the out-of-memory killer would
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        kill_and_check_no_orphans(process, workers, signal.SIGKILL, 5)
        raise AssertionError("the training went on after one of its workers was killed")
    assert process.returncode == 1
    line = _one_error_line(stderr_of(process))
    assert f"pid {victim} was killed by SIGKILL, most likely by the out-of-memory killer" in line, line
    assert "nnUNet_n_proc_DA" in line
    assert wait_until(lambda: not any(running(p) for p in workers), 5), [p for p in workers if running(p)]
    assert not descendants(process.pid)


class _BuggyLoader:
    """A loader whose transforms have a bug (not a user error): the worker must not print a traceback, the
    training process raises one line that says so, and nnUNet_debug=1 shows where it happened."""

    def set_thread_id(self, thread_id: int) -> None:
        pass

    def __next__(self):
        raise ValueError("boom in a custom transform")


@pytest.mark.parametrize("debug", ["0", "1"])
def test_a_bug_in_a_worker_is_one_line_and_debug_shows_its_traceback(monkeypatch, capfd, debug):
    from nnunet.errors import NnunetError
    from nnunet.training.data.workers import background_loader, finish_loader

    monkeypatch.setenv("nnUNet_debug", debug)
    loader = background_loader(_BuggyLoader(), 1, 2, False)
    try:
        with pytest.raises(NnunetError, match=r"An augmentation worker failed: ValueError: boom in a custom "
                                              r"transform\. This is a bug .* set nnUNet_debug=1"):
            next(loader)
        workers = list(loader.workers)
    finally:
        finish_loader(loader)
    assert workers and not any(w.is_alive() for w in workers)
    err = capfd.readouterr().err
    assert ("Traceback" in err and "in __next__" in err) == (debug == "1"), err
    assert "Exception in background worker" not in err


BUGGY_TRAINER = """
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform

from nnunet.training.variants.training_length import nnUNetTrainer_1epoch


class RaisesInAWorker(BasicTransform):
    def apply(self, data_dict, **params):
        raise ValueError("boom in a custom transform")


class nnUNetTrainerBuggyTransform(nnUNetTrainer_1epoch):
    @classmethod
    def get_training_transforms(cls, *args, **kwargs):
        return RaisesInAWorker()
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_a_bug_in_a_trainer_transform_stops_nnunet_train_with_one_line(own_dirs, tmp_path, workers):
    """The same bug in a user's trainer file, run as a command: exit 1, the one line, nothing else."""
    (tmp_path / "trainers").mkdir()
    (tmp_path / "trainers" / "buggy.py").write_text(BUGGY_TRAINER)
    result = subprocess.run([script("nnUNet_train"), str(TINY_ID), "3d_fullres", "0", "-tr",
                             "nnUNetTrainerBuggyTransform", "-device", "cpu"],
                            env=command_env(own_dirs, nnUNet_n_proc_DA=str(workers),
                                            nnUNet_extTrainer=str(tmp_path / "trainers")),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    line = _one_error_line(result.stderr)
    what = "Loading or augmenting a batch failed" if workers == 0 else "An augmentation worker failed"
    assert f"{what}: ValueError: boom in a custom transform. This is a bug" in line and "nnUNet_debug=1" in line
    assert _no_checkpoint(own_dirs)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_broken_file_in_a_preprocessing_worker_is_one_line(tmp_path, processes):
    """A label file that is not gzip data, read by a fingerprint/preprocessing worker (-np 2) or in the main
    process (-np 1): the worker's own message naming the file, exit 1, nothing from the pool or the resource
    tracker, no worker left."""
    from nnunet.demo.synthetic import SyntheticSpec, make_dataset
    from tests.reliability.helpers import make_dirs

    dirs = make_dirs(tmp_path)
    make_dataset(dirs["raw"], 932, "Broken", SyntheticSpec(num_cases=4, shape=(16, 16, 16), shape_jitter=0))
    broken = dirs["raw"] / "Dataset932_Broken" / "labelsTr" / "case_002.nii.gz"
    broken.write_bytes(b"\x1f\x8b this is not gzip data" * 10)
    result = subprocess.run([script("nnUNet_plan_and_preprocess"), "-d", "932", "-c", "3d_fullres", "-np",
                             processes, "-npfp", processes, "--no_pbar"], env=command_env(dirs),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    line = _one_error_line(result.stderr)
    assert f"Could not read {broken}" in line, line
    assert not (dirs["preprocessed"] / "Dataset932_Broken" / "nnUNetPlans_3d_fullres").exists()
