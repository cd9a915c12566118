"""Small prediction jobs run preprocessing and export in the predicting process (no workers to start)."""
import os

import pytest

from nnunet.errors import NnunetError
from nnunet.inference import data_iterators
from nnunet.inference.inputs import processes_for_job
from nnunet.utils import pool
from tests.inference.helpers import CASES, IMAGES, MODEL, make_predictor

MB = 1024 ** 2


@pytest.fixture
def small_jobs(monkeypatch):
    monkeypatch.setenv("nnUNet_small_job_mb", "32")


def _cases(folder, count, size):
    files = []
    for i in range(count):
        path = folder / f"case{i}_0000.nii.gz"
        with open(path, "wb") as f:
            f.truncate(size)
        files.append([str(path)])
    return files


def test_few_small_cases_run_here(tmp_path, small_jobs):
    assert processes_for_job(_cases(tmp_path, 3, 50_000), 2, 2) == (0, 0)


def test_many_cases_of_little_input_run_here(tmp_path, small_jobs):
    # 10 Hippocampus-sized cases (0.8 MB): less than 1 MB of work per worker
    assert processes_for_job(_cases(tmp_path, 10, 80_000), 2, 2) == (0, 0)
    assert processes_for_job(_cases(tmp_path, 10, 80_000), 1, 0) == (0, 0)


def test_two_cases_per_worker_with_enough_input_keep_the_workers(tmp_path, small_jobs):
    assert processes_for_job(_cases(tmp_path, 4, 600_000), 2, 2) == (2, 2)  # 2.4 MB for 2 workers
    assert processes_for_job(_cases(tmp_path, 2, 600_000), 1, 0) == (1, 0)  # 1.2 MB for 1 worker
    assert processes_for_job(_cases(tmp_path, 10, 80_000), 3, 3) == (0, 0)  # 0.8 MB for 3 workers
    assert processes_for_job(_cases(tmp_path, 30, 80_000), 2, 2) == (2, 2)  # 2.4 MB for 2 workers


def test_large_images_keep_the_workers(tmp_path, small_jobs):
    files = _cases(tmp_path, 2, 16 * MB + 1)
    assert processes_for_job(files, 2, 3) == (2, 3)


def test_the_limit_is_an_environment_variable(tmp_path, monkeypatch):
    files = _cases(tmp_path, 1, 2 * MB)
    monkeypatch.setenv("nnUNet_small_job_mb", "1")
    assert processes_for_job(files, 2, 2) == (2, 2)
    monkeypatch.setenv("nnUNet_small_job_mb", "0")  # off
    assert processes_for_job(_cases(tmp_path, 1, 10), 2, 2) == (2, 2)
    monkeypatch.setenv("nnUNet_small_job_mb", "lots")
    with pytest.raises(NnunetError, match="nnUNet_small_job_mb"):
        processes_for_job(files, 2, 2)


def test_no_workers_asked_for_stays_so(tmp_path, small_jobs):
    assert processes_for_job(_cases(tmp_path, 1, 10), 0, 0) == (0, 0)


def test_a_small_job_starts_no_process_and_predicts_the_same(tmp_path, small_jobs, monkeypatch):
    predictor = make_predictor(MODEL, (0,))
    monkeypatch.setenv("nnUNet_small_job_mb", "0")
    predictor.predict_from_files(str(IMAGES), str(tmp_path / "with_workers"), num_processes_preprocessing=2,
                                 num_processes_segmentation_export=2)
    monkeypatch.setenv("nnUNet_small_job_mb", "32")

    def no_pool(*args, **kwargs):
        raise AssertionError("a small job started worker processes")

    monkeypatch.setattr(pool, "spawn_pool", no_pool)
    monkeypatch.setattr(data_iterators, "spawn_pool", no_pool)
    predictor.predict_from_files(str(IMAGES), str(tmp_path / "small"), num_processes_preprocessing=2,
                                 num_processes_segmentation_export=2)
    for case in CASES:
        name = f"{case}.nii.gz"
        assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "with_workers" / name).read_bytes()
