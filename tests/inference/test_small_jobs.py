"""Small prediction jobs run preprocessing and export in the predicting process (no workers to start)."""
import os

from nnunet.inference.inputs import SMALL_JOB_BYTES, processes_for_job


def _cases(folder, count, size):
    files = []
    for i in range(count):
        path = folder / f"case{i}_0000.nii.gz"
        with open(path, "wb") as f:
            f.truncate(size)
        files.append([str(path)])
    return files


def test_few_small_cases_run_here(tmp_path):
    assert processes_for_job(_cases(tmp_path, 3, 50_000), 2, 2) == (0, 0)


def test_two_cases_per_worker_keep_the_workers(tmp_path):
    assert processes_for_job(_cases(tmp_path, 4, 50_000), 2, 2) == (2, 2)
    assert processes_for_job(_cases(tmp_path, 2, 50_000), 1, 0) == (1, 0)


def test_large_images_keep_the_workers(tmp_path):
    files = _cases(tmp_path, 2, SMALL_JOB_BYTES // 2 + 1)
    assert sum(os.path.getsize(f[0]) for f in files) > SMALL_JOB_BYTES
    assert processes_for_job(files, 2, 3) == (2, 3)


def test_no_workers_asked_for_stays_so(tmp_path):
    assert processes_for_job(_cases(tmp_path, 1, 10), 0, 0) == (0, 0)
