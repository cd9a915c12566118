"""Bad inputs without --verify_dataset_integrity (issue 12, item 8): one clear line, no traceback, no abort.

An RGB PNG among grey ones, a 4-D NIfTI in a one-channel dataset, a file name that is not UTF-8 (ITK aborts the
whole process on it), a misspelled dataset name. The commands run as subprocesses where a native abort is the
fault (the exit status would be -6), in this process otherwise.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main
from nnunet.cli.train import train_main
from nnunet.demo.synthetic import PRESETS, SyntheticSpec, make_dataset
from tests.helpers import FIXTURES
from tests.reliability.helpers import TINY, TINY_ID, command_env, make_dirs, one_error_line, script

REFERENCE_MODEL = FIXTURES / "inference" / "model"
IMAGES = FIXTURES / "inference" / "imagesTs"


def _plan(dataset_id: int, capsys) -> tuple[int, str]:
    rc = plan_and_preprocess_main(["-d", str(dataset_id), "-c", "2d", "-np", "1", "-npfp", "1", "--no_pbar"])
    return rc, one_error_line(capsys.readouterr().err)


def _nothing_preprocessed(dirs, dataset: str) -> bool:
    folder = dirs["preprocessed"] / dataset
    return not (folder / "dataset_fingerprint.json").exists() and not list(folder.rglob("*.b2nd"))


@pytest.fixture
def dirs(nnunet_dirs):
    return nnunet_dirs


@pytest.mark.parametrize("which, expected", [
    ("imagesTr/case_002_0000.png", ["3 channels (an RGB image)", "dataset.json declares 1 channel", "grey values"]),
    ("labelsTr/case_001.png", ["a segmentation must have one channel", "an RGB image"]),
], ids=["image", "label"])
def test_rgb_png_among_grey_ones(dirs, capsys, which, expected):
    from skimage import io

    folder = make_dataset(dirs["raw"], 951, "Grey", PRESETS["2d_png"])
    bad = folder / which
    grey = io.imread(bad)
    io.imsave(bad, np.stack([grey] * 3, axis=-1), check_contrast=False)
    rc, line = _plan(951, capsys)
    assert rc == 1 and str(bad) in line and all(e in line for e in expected), line
    assert _nothing_preprocessed(dirs, "Dataset951_Grey")


def test_4d_nifti_in_a_one_channel_dataset(dirs, capsys):
    folder = make_dataset(dirs["raw"], 953, "FourD", SyntheticSpec(num_cases=3, shape=(10, 10, 10)))
    bad = folder / "imagesTr" / "case_001_0000.nii.gz"
    volume = sitk.GetArrayFromImage(sitk.ReadImage(str(bad)))
    sitk.WriteImage(sitk.GetImageFromArray(np.stack([volume, volume]), isVector=False), str(bad))
    rc = plan_and_preprocess_main(["-d", "953", "-c", "3d_fullres", "-np", "1", "-npfp", "1", "--no_pbar"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 1 and str(bad) in line and "4-D" in line and "its own file" in line
    assert _nothing_preprocessed(dirs, "Dataset953_FourD")


def _latin1_rename(path: Path) -> Path:
    """Rename ``case_...`` to ``caf\\xe9_...`` (the bytes of a Latin-1 name, not valid UTF-8)."""
    raw = os.fsencode(str(path))
    new = raw.replace(b"/case_001", b"/caf\xe9_001")
    os.rename(raw, new)
    return Path(os.fsdecode(new))


def test_non_utf8_case_name_is_an_error_not_an_abort(tmp_path):
    dirs = make_dirs(tmp_path)
    folder = make_dataset(dirs["raw"], 954, "Latin1", SyntheticSpec(num_cases=5, shape=(10, 10, 10)))
    _latin1_rename(folder / "imagesTr" / "case_001_0000.nii.gz")
    _latin1_rename(folder / "labelsTr" / "case_001.nii.gz")
    result = subprocess.run([script("nnUNet_plan_and_preprocess"), "-d", "954", "-c", "3d_fullres", "-np", "1",
                             "-npfp", "1", "--no_pbar"], env=command_env(dirs), capture_output=True, timeout=300)
    stderr = result.stderr.decode("utf-8", "backslashreplace")
    assert result.returncode == 1, stderr  # -6 (SIGABRT) before: ITK aborts on the name
    line = one_error_line(stderr)
    assert "not valid UTF-8" in line and "caf\\xe9_001_0000.nii.gz" in line
    assert not (dirs["preprocessed"] / "Dataset954_Latin1").exists()


def test_non_utf8_input_name_for_prediction_is_an_error_not_an_abort(tmp_path):
    images = tmp_path / "images"
    shutil.copytree(IMAGES, images)
    os.rename(os.fsencode(str(images / "ts_small_0000.nii.gz")), os.fsencode(str(images)) + b"/ts_sm\xe4ll_0000.nii.gz")
    out = tmp_path / "out"
    result = subprocess.run([script("nnUNet_predict_from_modelfolder"), "-i", str(images), "-o", str(out), "-m",
                             str(REFERENCE_MODEL), "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0",
                             "--disable_progress_bar"], env=command_env(), capture_output=True, timeout=300)
    stderr = result.stderr.decode("utf-8", "backslashreplace")
    assert result.returncode == 1, stderr
    line = one_error_line(stderr)
    assert "not valid UTF-8" in line and "ts_sm\\xe4ll_0000.nii.gz" in line


@pytest.mark.parametrize("typo", ["Dataset931_Tniy", "Dataset0931_Tiny", "Dataset932_Tiny"])
def test_misspelled_dataset_name_says_it_does_not_exist(tiny_dirs, capsys, typo):
    before = {k: sorted(p.name for p in v.iterdir()) for k, v in tiny_dirs.items()}
    rc = train_main([typo, "3d_fullres", "0", "-device", "cpu"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 1 and f"{typo} does not exist" in line and f"Did you mean {TINY}?" in line
    assert "plan_and_preprocess" not in line
    assert {k: sorted(p.name for p in v.iterdir()) for k, v in tiny_dirs.items()} == before


def test_misspelled_dataset_name_creates_no_folder_when_planning(tiny_dirs, capsys):
    rc = plan_and_preprocess_main(["-d", "Dataset931_tiny", "-c", "3d_fullres", "-np", "1", "-npfp", "1"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 1 and "Dataset931_tiny does not exist" in line and f"Did you mean {TINY}?" in line
    assert not (tiny_dirs["preprocessed"] / "Dataset931_tiny").exists()
    assert str(TINY_ID) in line
