"""No orphans: worker processes end within seconds when their parent dies by kill -9 or SIGTERM (issue 12, item 6).

Each test starts a real process tree, waits until its workers are busy, sends the signal to the parent only (as
the OOM killer or ``kill PID`` would; the workers get nothing), and asserts that every worker recorded before the
kill has ended within a few seconds. Without the protection the workers here would run for a minute (a sleeping
job) or forever (augmentation workers fill their queue and wait for a reader that never comes back).
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from tests.reliability.helpers import TINY_ID, command_env, make_dirs, script
from tests.reliability.processes import kill_and_check_no_orphans, start, stderr_of, wait_for_workers, wait_until

SIGNALS = [pytest.param(signal.SIGKILL, id="kill-9"), pytest.param(signal.SIGTERM, id="sigterm")]
WITHIN = 5.0  # seconds the workers may take to notice (they look every 0.5 s)

POOL_SCRIPT = """
import sys
from nnunet.utils.pool import run_parallel
from tests.reliability.jobs import {job}
run_parallel({job}, [({arg!r}, 120.0)] * 2, 2, show_progress=False)
"""


def _started(folder: Path, count: int) -> bool:
    return len(list(folder.glob("started_*"))) >= count


@pytest.mark.parametrize("sig", SIGNALS)
def test_pool_workers_busy_in_a_long_job_end_with_their_parent(tmp_path, sig):
    process = start([sys.executable, "-c", POOL_SCRIPT.format(job="mark_then_sleep", arg=str(tmp_path))],
                    command_env(), tmp_path / "log")
    assert wait_until(lambda: _started(tmp_path, 2), 60), "the pool's jobs did not start"
    workers = wait_for_workers(process, 2, 10)
    kill_and_check_no_orphans(process, workers, sig, WITHIN)


def test_a_worker_killed_with_its_parent_removes_its_partial_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    process = start([sys.executable, "-c", POOL_SCRIPT.format(job="publish_then_sleep", arg=str(out / "case.nii.gz"))],
                    command_env(), tmp_path / "log")
    assert wait_until(lambda: _started(out, 2), 60), "the pool's jobs did not start"
    assert list((out / ".nnunet_partial").iterdir()), "the jobs should be writing"
    workers = wait_for_workers(process, 2, 10)
    kill_and_check_no_orphans(process, workers, signal.SIGKILL, WITHIN)
    assert not (out / "case.nii.gz").exists()
    assert not (out / ".nnunet_partial").exists(), list((out / ".nnunet_partial").rglob("*"))


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS)
def test_training_augmentation_workers_end_with_their_parent(tiny_preprocessed, tmp_path, sig):
    # the default trainer (1000 epochs) is still in its first epochs when it is killed
    process = start([script("nnUNet_train"), str(TINY_ID), "3d_fullres", "0", "-device", "cpu"],
                    command_env(dict(tiny_preprocessed, results=tmp_path / "results"), nnUNet_n_proc_DA="2"),
                    tmp_path / "log")
    workers = wait_for_workers(process, 3, 240)  # 2 training + 1 validation augmentation workers
    kill_and_check_no_orphans(process, workers, sig, WITHIN)
    if sig == signal.SIGTERM:
        assert process.returncode == 143
        assert "nnunet: terminated (SIGTERM)" in stderr_of(process)


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS)
def test_plan_and_preprocess_pool_ends_with_its_parent(tmp_path, sig):
    from nnunet.demo.synthetic import SyntheticSpec, make_dataset

    dirs = make_dirs(tmp_path)
    make_dataset(dirs["raw"], 932, "OrphansPP", SyntheticSpec(num_cases=12, shape=(48, 48, 48)))
    process = start([script("nnUNet_plan_and_preprocess"), "-d", "932", "-c", "3d_fullres", "-np", "2", "-npfp", "2"],
                    command_env(dirs), tmp_path / "log")
    workers = wait_for_workers(process, 2, 120)
    kill_and_check_no_orphans(process, workers, sig, WITHIN)
    if sig == signal.SIGTERM:  # stopped like Ctrl-C: one line, exit 143, no temporary files left
        assert process.returncode == 143
        assert "nnunet: terminated (SIGTERM)" in stderr_of(process)
        assert not list(dirs["preprocessed"].rglob(".nnunet_partial"))
    else:
        assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_prediction_pools_end_with_their_parent(tmp_path):
    """nnUNet_predict with preprocessing and export workers (-npp 2 -nps 2), killed while they exist."""
    from tests.helpers import FIXTURES

    process = start([script("nnUNet_predict_from_modelfolder"), "-i", str(FIXTURES / "inference" / "imagesTs"), "-o",
                     str(tmp_path / "out"), "-m", str(FIXTURES / "inference" / "model"), "-f", "0", "-device", "cpu",
                     "-npp", "2", "-nps", "2", "--disable_progress_bar"], command_env(), tmp_path / "log")
    workers = wait_for_workers(process, 3, 120)
    kill_and_check_no_orphans(process, workers, signal.SIGKILL, WITHIN)
    assert not list((tmp_path / "out").glob("*.nii.gz")) or all(
        p.stat().st_size > 0 for p in (tmp_path / "out").glob("*.nii.gz"))
