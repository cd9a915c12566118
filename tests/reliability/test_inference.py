"""Fault tests of prediction (issue 12): a full disk, damaged outputs and --continue_prediction, orphan workers.

Each test injects the real fault (a 1 MB tmpfs that fills up, a truncated file, SIGKILL of the parent) and checks
the exit code, the message and what is left on disk.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.cli.predict import predict_from_modelfolder_main
from tests.inference.helpers import IMAGES, MODEL

FAST = ["-m", str(MODEL), "-f", "0", "-device", "cpu", "--disable_progress_bar", "--disable_tta"]


@pytest.fixture
def small_disk(filesystems):
    """A 1 MB tmpfs (the shared fixture skips, with the reason, where mounting is not possible)."""
    return filesystems.tmpfs("disk", "1m")


@pytest.fixture(scope="module")
def large_input(tmp_path_factory):
    """One 56^3 image: its probabilities (.npz, about 2 MB) do not fit the small disk, its label map does."""
    folder = tmp_path_factory.mktemp("large_in")
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray(rng.normal(0, 1, (56, 56, 56)).astype(np.float32))
    sitk.WriteImage(image, str(folder / "big_0000.nii.gz"))
    return folder


def _left_on(disk: Path) -> list[str]:
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*"))


@pytest.mark.parametrize("extra", [pytest.param(["-nps", "0"], id="export-here"),
                                   pytest.param(["-nps", "1"], id="export-worker"),
                                   pytest.param(["-nps", "0", "--max_ram_gb", "1e-6"], id="slab-export")])
def test_full_disk_while_writing_probabilities(small_disk, large_input, capsys, extra):
    out = small_disk / "out"
    rc = predict_from_modelfolder_main(["-i", str(large_input), "-o", str(out), *FAST, "-npp", "0",
                                        "--save_probabilities", *extra])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("nnunet: error:")]
    assert len(line) == 1 and "ENOSPC" in line[0] and "Free some space" in line[0]
    assert str(out / "big.npz") in line[0] or "--max_ram_gb" in extra
    if "--max_ram_gb" in extra:  # the probabilities are assembled in a scratch file on the output disk first
        assert str(out / "big") in line[0] and " MB of temporary space in " in line[0], line[0]
    # nothing that looks like a result, nothing half-written
    assert _left_on(small_disk) == ["out", "out/dataset.json", "out/plans.json", "out/predict_from_raw_data_args.json"]


def test_full_disk_with_worker_pools_ends_cleanly_in_a_subprocess(small_disk, large_input, tmp_path):
    """The command as a user runs it, with preprocessing and export workers: one line, and nothing from Python's
    resource tracker at exit (leaked semaphores or shared memory) after the pools are stopped."""
    import subprocess

    from tests.reliability.helpers import command_env

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        os.symlink(large_input / "big_0000.nii.gz", folder / f"c{i}_0000.nii.gz")
    out = small_disk / "out"
    result = subprocess.run([sys.executable, "-c", "import sys; from nnunet.cli.predict import "
                             "predict_from_modelfolder_main as m; sys.exit(m(sys.argv[1:]))",
                             "-i", str(folder), "-o", str(out), *FAST, "-npp", "2", "-nps", "2",
                             "--save_probabilities"], env=command_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    errors = [x for x in result.stderr.splitlines() if x.startswith("nnunet: error:")]
    assert len(errors) == 1 and "ENOSPC" in errors[0], result.stderr
    assert not any(word in result.stderr for word in ("Traceback", "leaked", "resource_tracker")), result.stderr
    # nothing that looks like a result, nothing half-written, no temporary left by a stopped worker
    assert _left_on(small_disk) == ["out", "out/dataset.json", "out/plans.json", "out/predict_from_raw_data_args.json"]


def test_full_disk_while_writing_the_segmentation(small_disk, capsys):
    filler = small_disk / "filler"
    out = small_disk / "out"
    out.mkdir()
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), *FAST, "-npp", "0", "-nps", "0", "--c"])
    assert rc == 0, capsys.readouterr().err
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "ts_regular.nii.gz").unlink()
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * free)  # the disk is now full: the missing case cannot be written
    assert os.statvfs(small_disk).f_bavail == 0
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), *FAST, "-npp", "0", "-nps", "0",
                                        "--c"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "ENOSPC" in err and "ts_regular.nii.gz" in err
    assert not (out / "ts_regular.nii.gz").exists() and not (out / ".nnunet_partial").exists()
    for name in ("ts_aniso.nii.gz", "ts_small.nii.gz", "plans.json"):  # finished files are untouched
        assert (out / name).read_bytes() == written[name]


def test_continue_prediction_redoes_a_truncated_output(tmp_path, capsys):
    out = tmp_path / "out"
    base = ["-i", str(IMAGES), "-o", str(out), *FAST, "-npp", "0", "-nps", "0", "--save_probabilities"]
    assert predict_from_modelfolder_main(base) == 0
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ts_small.nii.gz")))
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    data = (out / "ts_small.nii.gz").read_bytes()
    (out / "ts_small.nii.gz").write_bytes(data[:len(data) // 2])  # e.g. copied by hand, interrupted
    npz = (out / "ts_aniso.npz").read_bytes()
    (out / "ts_aniso.npz").write_bytes(npz[:-100])  # a damaged probabilities file
    capsys.readouterr()
    assert predict_from_modelfolder_main(base + ["--c"]) == 0
    err = capsys.readouterr().err
    assert f"{out / 'ts_small.nii.gz'} exists but cannot be read" in err
    assert f"{out / 'ts_aniso.npz'} exists but cannot be read" in err
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ts_small.nii.gz"))), expected)
    with np.load(out / "ts_aniso.npz") as probabilities:
        assert probabilities["probabilities"].shape[0] == 3
    for name in ("ts_regular.nii.gz", "ts_regular.npz", "ts_regular.pkl"):
        assert (out / name).stat().st_mtime_ns == stamps[name], f"{name} was redone"


# ------------------------------------------------------------------------------------------- orphan workers

@pytest.mark.slow
def test_no_prediction_worker_survives_a_killed_parent(tmp_path, large_input):
    """Preprocessing (-npp 2) and export (-nps 2) workers, busy with large cases, end with their parent.

    tests/reliability/test_orphans.py covers the tiny fixture images; here every worker holds a 56^3 case and the
    slab path's hand-over files are in use."""
    from tests.reliability.helpers import command_env
    from tests.reliability.processes import kill_and_check_no_orphans, start, wait_for_workers

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):  # enough cases that the workers are still busy when the parent dies
        os.symlink(large_input / "big_0000.nii.gz", folder / f"c{i}_0000.nii.gz")
    process = start([sys.executable, "-c", "import sys; from nnunet.cli.predict import "
                     "predict_from_modelfolder_main as m; sys.exit(m(sys.argv[1:]))",
                     "-i", str(folder), "-o", str(tmp_path / "out"), *FAST, "-npp", "2", "-nps", "2",
                     "--save_probabilities"], command_env(), tmp_path / "log")
    workers = wait_for_workers(process, 4, 120)  # 2 preprocessing + 2 export workers
    kill_and_check_no_orphans(process, workers, signal.SIGKILL, 5.0)
    assert not (tmp_path / "out" / "c5.nii.gz").exists()


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["first", "last"])
def test_a_killed_prediction_worker_stops_the_command_with_one_line(tmp_path, large_input, victim):
    """SIGKILL of one preprocessing or export worker (as the out-of-memory killer would): exit 1, one line that
    names the kind of worker and the option that uses fewer, every other worker ends, and each segmentation
    already published is complete. The workers start preprocessing first, so the first pid is a preprocessing
    worker and the last one usually an export worker; the message may name either."""
    from tests.reliability.helpers import command_env
    from tests.reliability.processes import descendants, running, start, stderr_of, wait_for_workers, wait_until

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(16):
        os.symlink(large_input / "big_0000.nii.gz", folder / f"c{i:02d}_0000.nii.gz")
    process = start([sys.executable, "-c", "import sys; from nnunet.cli.predict import "
                     "predict_from_modelfolder_main as m; sys.exit(m(sys.argv[1:]))",
                     "-i", str(folder), "-o", str(out), *FAST, "-npp", "2", "-nps", "2", "--save_probabilities"],
                    command_env(), tmp_path / "log")
    wait_for_workers(process, 4, 120)  # the resource tracker and the first pool workers
    workers = sorted(pid for pid in descendants(process.pid)
                     if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes())
    os.kill(workers[0] if victim == "first" else workers[-1], signal.SIGKILL)
    process.wait(timeout=120)
    stderr = stderr_of(process)
    assert process.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("nnunet: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr and "leaked" not in stderr, stderr
    assert re.search(r"An? (preprocessing|export) worker died, most likely because it ran out of memory.* "
                     r"fewer (preprocessing|export) processes \(-np[ps]\)", errors[0]), errors[0]
    assert wait_until(lambda: not descendants(process.pid) and not any(running(p) for p in workers), 5)
    written = sorted(out.glob("c*.nii.gz"))
    assert len(written) < 16  # stopped, not finished
    for path in written:  # complete or absent
        assert sitk.GetArrayFromImage(sitk.ReadImage(str(path))).shape == (56, 56, 56), path


@pytest.mark.slow
def test_ctrl_c_of_a_prediction_with_workers_points_to_continue_prediction(tmp_path, large_input):
    """A real SIGINT (what Ctrl-C sends to the whole foreground process group) while preprocessing and export
    workers are busy: exit 130, one line pointing to --continue_prediction, no worker left, every published
    segmentation complete; the same command with --continue_prediction then finishes the rest."""
    from tests.reliability.helpers import command_env
    from tests.reliability.processes import descendants, start, stderr_of, wait_for_workers, wait_until

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(8):
        os.symlink(large_input / "big_0000.nii.gz", folder / f"c{i}_0000.nii.gz")
    command = [sys.executable, "-c", "import sys; from nnunet.cli.predict import predict_from_modelfolder_main as m; "
               "sys.exit(m(sys.argv[1:]))", "-i", str(folder), "-o", str(out), *FAST, "-npp", "2", "-nps", "2"]
    process = start(command, command_env(), tmp_path / "log", new_session=True)
    workers = wait_for_workers(process, 4, 120)
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=60)
    stderr = stderr_of(process)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "leaked" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("nnunet: interrupted.")]
    assert len(lines) == 1 and "add --continue_prediction to the same" in lines[0], stderr
    assert wait_until(lambda: not descendants(process.pid) and not any(Path(f"/proc/{p}").exists()
                                                                       for p in workers), 5)
    written = sorted(out.glob("c*.nii.gz"))
    for path in written:
        assert sitk.GetArrayFromImage(sitk.ReadImage(str(path))).shape == (56, 56, 56), path
    again = subprocess.run(command + ["--continue_prediction"], env=command_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(p.name for p in out.glob("c*.nii.gz")) == [f"c{i}.nii.gz" for i in range(8)]
