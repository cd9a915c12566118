"""Final validation: explicit inputs, progress bar, resume after a real interruption, and DDP with an uneven
split of the validation cases over two gloo processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nnunet.registry import TRAINERS
from nnunet.training.run import get_trainer_from_args, maybe_load_checkpoint, run_training
from nnunet.training.validation import STATE_FILE, barrier_positions
from tests.training.helpers import TEST_TRAINERS, make_3d_dataset

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(TRAINERS, *TEST_TRAINERS)


def _fold(dirs, trainer: str, fold: str = "fold_0") -> Path:
    return dirs["results"] / "Dataset901_Tiny" / f"{trainer}__nnUNetPlans__3d_fullres" / fold


def _write_split(dirs, train: list[str], val: list[str]) -> None:
    path = dirs["preprocessed"] / "Dataset901_Tiny" / "splits_final.json"
    path.write_text(json.dumps([{"train": train, "val": val}]))


def test_barriers_are_reached_by_every_rank():
    # 41 cases on 2 ranks: 21 and 20 cases; both pass the barrier after their 20th case, none after a 21st
    assert barrier_positions(41, 2, 20) == {19}
    assert barrier_positions(39, 2, 20) == set()  # 20 and 19 cases: rank 0 alone would wait after its 20th
    assert barrier_positions(3, 2, 1) == {0}
    assert barrier_positions(1, 2, 1) == set()
    for n in range(1, 60):
        for world in (1, 2, 3):
            shares = [len(range(r, n, world)) for r in range(world)]
            reached = [{i for i in barrier_positions(n, world, 7) if i < s} for s in shares]
            assert all(r == reached[0] for r in reached)


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1")
    return env


@pytest.mark.slow
def test_ddp_two_processes_odd_number_of_validation_cases(dirs):
    """3 validation cases on 2 gloo processes, the ranks meeting after every case: finishes (the old barrier
    rule left rank 0 waiting for a rank that had already finished)."""
    make_3d_dataset(dirs["preprocessed"], n_cases=5, shape=(16, 16, 16), patch=(16, 16, 16))
    _write_split(dirs, ["case_000", "case_001"], ["case_002", "case_003", "case_004"])
    code = ("from nnunet.training.run import run_training; run_training(901, '3d_fullres', 0, "
            "'tests.training.helpers.OddValidationTrainer', num_gpus=2, device='cpu')")
    res = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((_fold(dirs, "OddValidationTrainer") / "validation" / "summary.json").read_text())
    assert sorted(Path(c["prediction_file"]).name for c in summary["metric_per_case"]) == \
        ["case_002.nii.gz", "case_003.nii.gz", "case_004.nii.gz"]


@pytest.mark.slow
def test_validation_resumes_after_sigkill(dirs):
    """Kill ``--val`` after two of six cases were exported; the next ``--val`` keeps them and predicts the rest."""
    make_3d_dataset(dirs["preprocessed"], n_cases=7, shape=(16, 16, 16), patch=(16, 16, 16))
    _write_split(dirs, ["case_000"], [f"case_{i:03d}" for i in range(1, 7)])
    run_training(901, "3d_fullres", 0, "SlowValidationTrainer", device="cpu", run_validation=False)
    validation = _fold(dirs, "SlowValidationTrainer") / "validation"
    code = ("import sys; from tests.training.helpers import register_test_trainers; register_test_trainers(); "
            "from nnunet.cli.train import train_main; "
            "sys.exit(train_main(['901', '3d_fullres', '0', '-tr', 'SlowValidationTrainer', '--val', '-device', "
            "'cpu']))")
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    try:
        while len(list(validation.glob("case_*.nii.gz"))) < 2:
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"validation ended or stalled before the kill: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    exported = {p.name: p.stat().st_mtime_ns for p in validation.glob("case_*.nii.gz")}
    assert 2 <= len(exported) < 6 and not (validation / "summary.json").exists()
    assert (validation / STATE_FILE).is_file()

    res = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"{len(exported)} of 6 cases were already exported" in res.stdout
    assert "Validation:" in res.stderr and "6/6" in res.stderr  # the progress bar counts all cases
    for name, mtime in exported.items():  # kept, not predicted again
        assert (validation / name).stat().st_mtime_ns == mtime
    summary = json.loads((validation / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 6


def test_other_weights_predict_every_case_again(dirs):
    make_3d_dataset(dirs["preprocessed"], n_cases=3, shape=(16, 16, 16), patch=(16, 16, 16))
    _write_split(dirs, ["case_000"], ["case_001", "case_002"])
    run_training(901, "3d_fullres", 0, "SlowValidationTrainer", device="cpu")
    validation = _fold(dirs, "SlowValidationTrainer") / "validation"
    first = {p.name: p.stat().st_mtime_ns for p in validation.glob("case_*.nii.gz")}
    assert len(first) == 2
    trainer = get_trainer_from_args(901, "3d_fullres", 0, "SlowValidationTrainer", device=torch.device("cpu"))
    maybe_load_checkpoint(trainer, continue_training=False, validation_only=True)
    with torch.no_grad():  # other weights: the exports of the old ones must not be reused
        next(trainer.network.parameters()).add_(0.5)
    trainer.perform_actual_validation()
    assert all(p.stat().st_mtime_ns != first[p.name] for p in validation.glob("case_*.nii.gz"))
