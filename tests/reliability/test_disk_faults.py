"""Full disks and read-only folders (issue 12, items 4 and 8): one clear line, nothing truncated published.

The filesystems are real: a small tmpfs filled up to the last few kilobytes, or remounted read-only (root only;
the ``filesystems`` fixture skips otherwise). Each test asserts the exit code, the one error line (the path and
the errno name) and what is on disk afterwards: the earlier files intact, no half-written output under its final
name, no temporary files.
"""
from __future__ import annotations

import errno
import re
import shutil
import subprocess
import zipfile

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.cli.ensemble import ensemble_main
from nnunet.cli.evaluate import evaluate_folder_main
from nnunet.cli.postprocess import apply_postprocessing_main
from nnunet.cli.predict import predict_from_modelfolder_main
from nnunet.cli.sharing import export_main, install_main
from nnunet.io.readers import SimpleITKIO
from nnunet.postprocessing.postprocess import write_seg_atomic
from nnunet.training.checkpoint import load_checkpoint_file, save_checkpoint_file
from nnunet.utils.files import OutputError
from tests.evaluation.synthetic_cases import make_ensemble_inputs
from tests.helpers import FIXTURES
from tests.reliability.helpers import (TINY, TINY_ID, command_env, files_below, make_dirs, one_error_line,
                                        script)

REFERENCE_MODEL = FIXTURES / "inference" / "model"
IMAGES = FIXTURES / "inference" / "imagesTs"
GEOMETRY = {"sitk_stuff": {"spacing": (1.0, 1.0, 1.0), "origin": (0.0, 0.0, 0.0),
                           "direction": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}, "spacing": [1.0] * 3}


def _noise_seg(shape=(48, 48, 48)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 3, shape).astype(np.uint8)  # does not compress well


def _one_segmentation(folder):
    folder.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(_noise_seg((8, 8, 8))), str(folder / "case_000.nii.gz"))
    return folder


@pytest.mark.parametrize("ending", [".nii.gz", ".nii", ".nrrd"])
def test_segmentation_on_a_full_disk_is_an_error_not_a_truncated_file(filesystems, ending):
    """ITK writes truncated (.nii.gz) or empty (.nii) NIfTI files on a full disk and reports success."""
    out = filesystems.tmpfs("out", "1m")
    filesystems.fill(out, leave_bytes=8192)
    with pytest.raises(OutputError) as info:
        write_seg_atomic(SimpleITKIO(), _noise_seg(), out / f"case{ending}", GEOMETRY)
    assert str(out / f"case{ending}") in str(info.value) and "ENOSPC" in str(info.value)
    assert files_below(out) == []


def test_checkpoint_on_a_full_disk_keeps_the_previous_one(filesystems):
    fold = filesystems.tmpfs("fold_0", "2m")
    checkpoint = load_checkpoint_file(REFERENCE_MODEL / "fold_0" / "checkpoint_final.pth")
    save_checkpoint_file(checkpoint, fold / "checkpoint_latest.pth")
    before = (fold / "checkpoint_latest.pth").read_bytes()
    filesystems.fill(fold, leave_bytes=16384)
    checkpoint["current_epoch"] += 1
    with pytest.raises(OutputError) as info:
        save_checkpoint_file(checkpoint, fold / "checkpoint_latest.pth")
    assert "checkpoint_latest.pth" in str(info.value) and "ENOSPC" in str(info.value)
    assert (fold / "checkpoint_latest.pth").read_bytes() == before
    assert files_below(fold) == ["checkpoint_latest.pth"]


TRAINER_SOURCE = '''
from nnunet.training.trainer import nnUNetTrainer


class nnUNetTrainerTwoSteps(nnUNetTrainer):
    num_epochs = 1
    num_iterations_per_epoch = 2
    num_val_iterations_per_epoch = 1
    plot_progress = False
'''


@pytest.mark.slow
def test_training_stops_with_one_line_when_the_checkpoint_does_not_fit(tiny_preprocessed, filesystems, tmp_path):
    (tmp_path / "trainers").mkdir()
    (tmp_path / "trainers" / "two_steps.py").write_text(TRAINER_SOURCE)
    results = filesystems.tmpfs("results", "4m")
    env = command_env(dict(tiny_preprocessed, results=results), nnUNet_extTrainer=str(tmp_path / "trainers"),
                      nnUNet_n_proc_DA="0")
    # the logs and plans fit; the first checkpoint (a few hundred kB) does not
    model = results / TINY / "nnUNetTrainerTwoSteps__nnUNetPlans__3d_fullres"
    model.mkdir(parents=True)
    filesystems.fill(results, leave_bytes=96 * 1024)
    result = subprocess.run([script("nnUNet_train"), str(TINY_ID), "3d_fullres", "0", "-tr", "nnUNetTrainerTwoSteps",
                             "-device", "cpu"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    line = one_error_line(result.stderr)
    assert "ENOSPC" in line and str(model / "fold_0" / "checkpoint_best.pth") in line
    assert not list(results.rglob("*.pth")) and not list(results.rglob(".nnunet_partial"))


def test_ensemble_on_a_full_disk(filesystems, tmp_path, capsys):
    folders = make_ensemble_inputs(tmp_path, "labels", num_cases=3)
    out = filesystems.tmpfs("ensemble_out", "1m")
    filesystems.fill(out, leave_bytes=12 * 1024)
    rc = ensemble_main(["-i", *map(str, folders), "-o", str(out), "-np", "1", "--save_npz", "--no_pbar"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 1 and "ENOSPC" in line and str(out) in line
    for name in files_below(out):  # whatever was published is complete
        if name.endswith(".nii.gz"):
            sitk.ReadImage(str(out / name))
        elif name.endswith(".npz"):
            np.load(out / name)["probabilities"]
    assert ".nnunet_partial" not in " ".join(files_below(out))


def test_apply_postprocessing_into_a_read_only_folder(filesystems, tmp_path, capsys):
    src = _one_segmentation(tmp_path / "in")
    out = filesystems.tmpfs("pp_out", "1m")
    filesystems.read_only(out)
    pp = tmp_path / "postprocessing.json"
    pp.write_text('{"postprocessing_fns": ["remove_all_but_largest_component_from_segmentation"], '
                  '"postprocessing_kwargs": [{"labels_or_regions": [1, 2]}]}')
    rc = apply_postprocessing_main(["-i", str(src), "-o", str(out), "-pp_pkl_file", str(pp), "-np", "1",
                                    "-plans_json", str(REFERENCE_MODEL / "plans.json"),
                                    "-dataset_json", str(REFERENCE_MODEL / "dataset.json")])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 1 and "EROFS" in line and str(out) in line and "writable" in line


def test_evaluation_summary_on_a_full_disk(filesystems, tmp_path, capsys):
    gt = _one_segmentation(tmp_path / "gt")
    out = filesystems.tmpfs("summary_out", "64k")
    filesystems.fill(out)
    rc = evaluate_folder_main([str(gt), str(gt), "-o", str(out / "summary.json"), "-np", "1", "--no_pbar",
                               "-djfile", str(REFERENCE_MODEL / "dataset.json"),
                               "-pfile", str(REFERENCE_MODEL / "plans.json")])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 1 and "ENOSPC" in line and str(out / "summary.json") in line
    assert files_below(out) == []


def _model_zip(tmp_path):
    out = tmp_path / "model.zip"
    prefix = "Dataset251_InferTiny/nnUNetTrainer__nnUNetPlans__3d_fullres"
    with zipfile.ZipFile(out, "w") as zf:
        for name in ("plans.json", "dataset.json", "fold_0/checkpoint_final.pth"):
            zf.write(REFERENCE_MODEL / name, f"{prefix}/{name}")
    return out


def test_install_on_a_full_disk_installs_nothing(filesystems, tmp_path, monkeypatch, capsys):
    results = filesystems.tmpfs("results", "1m")
    (results / "Dataset251_InferTiny").mkdir()
    (results / "Dataset251_InferTiny" / "notes.txt").write_text("mine")
    filesystems.fill(results, leave_bytes=64 * 1024)  # the checkpoint is about 220 kB
    monkeypatch.setenv("nnUNet_results", str(results))
    rc = install_main([str(_model_zip(tmp_path))])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 1 and "ENOSPC" in line and "Nothing was installed" in line
    assert files_below(results) == ["Dataset251_InferTiny", "Dataset251_InferTiny/notes.txt"]


def test_export_to_a_full_disk_leaves_no_zip(nnunet_dirs, filesystems, capsys):
    shutil.copytree(REFERENCE_MODEL, nnunet_dirs["results"] / "Dataset251_InferTiny" /
                    "nnUNetTrainer__nnUNetPlans__3d_fullres")
    out = filesystems.tmpfs("exports", "1m")
    filesystems.fill(out, leave_bytes=64 * 1024)
    rc = export_main(["-d", "251", "-o", str(out / "model.zip"), "-c", "3d_fullres", "-f", "0"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 1 and "ENOSPC" in line and str(out / "model.zip") in line
    assert files_below(out) == []


def test_predict_into_a_read_only_folder(filesystems, capsys):
    out = filesystems.tmpfs("predictions", "1m")
    filesystems.read_only(out)
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), "-m", str(REFERENCE_MODEL), "-f", "0",
                                        "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 1 and "EROFS" in line and str(out) in line


@pytest.mark.slow
def test_plan_and_preprocess_into_a_read_only_preprocessed_folder(filesystems, tmp_path):
    from nnunet.demo.synthetic import SyntheticSpec, make_dataset

    dirs = make_dirs(tmp_path / "data")
    make_dataset(dirs["raw"], 933, "ReadOnly", SyntheticSpec(num_cases=2, shape=(12, 12, 12)))
    dirs["preprocessed"] = filesystems.tmpfs("preprocessed", "1m")
    filesystems.read_only(dirs["preprocessed"])
    result = subprocess.run([script("nnUNet_plan_and_preprocess"), "-d", "933", "-c", "3d_fullres", "-np", "1",
                             "-npfp", "1", "--no_pbar"], env=command_env(dirs), capture_output=True, text=True,
                            timeout=300)
    line = one_error_line(result.stderr)
    assert result.returncode == 1 and "EROFS" in line
    assert str(dirs["preprocessed"] / "Dataset933_ReadOnly" / "dataset_fingerprint.json") in line


def test_msd_conversion_on_a_full_disk_leaves_no_half_dataset(filesystems, tmp_path, monkeypatch, capsys):
    from nnunet.cli.convert import convert_msd_main
    from tests.io.msd_cases import write_msd_task

    task = write_msd_task(tmp_path, "Task05_Tiny", channels=2)
    raw = filesystems.tmpfs("raw", "1m")
    filesystems.fill(raw, leave_bytes=8 * 1024)
    monkeypatch.setenv("nnUNet_raw", str(raw))
    rc = convert_msd_main(["-i", str(task), "-np", "1", "--no_pbar"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 1 and ("ENOSPC" in line or errno.errorcode[errno.ENOSPC] in line)
    # the file being written is named: the dataset is assembled in a hidden folder, then renamed into place
    assert re.search(rf"{re.escape(str(raw))}/\.Dataset005_Tiny\.converting-\d+/(imagesTr|labelsTr)/tiny_\d+"
                     rf"(_\d{{4}})?\.nii\.gz: ENOSPC", line), line
    assert files_below(raw) == []
