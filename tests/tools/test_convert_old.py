"""nnUNet_convert_old_nnUNet_dataset: an nnU-Net v1 task becomes a raw dataset, as nnU-Net 2.8.1 converts it."""
from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.cli.convert import convert_old_main
from nnunet.errors import DatasetError
from nnunet.io.v1_conversion import convert_v1_dataset, convert_v1_dataset_json
from tests.helpers import FIXTURES

V1_JSON = FIXTURES / "tools" / "v1_dataset.json"
EXPECTED_JSON = FIXTURES / "tools" / "v1_converted_dataset.json"


def make_v1_task(root: Path, name: str = "Task017_Tiny") -> Path:
    """Two training cases with two channels, one test case, and the v1 dataset.json of the fixture."""
    task = root / name
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (task / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)

    def write(arr, path):
        sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))

    for i in range(2):
        for c in range(2):
            write(rng.normal(size=(4, 5, 6)).astype(np.float32), task / "imagesTr" / f"liver_{i}_{c:04d}.nii.gz")
        write((rng.random((4, 5, 6)) * 3).astype(np.uint8), task / "labelsTr" / f"liver_{i}.nii.gz")
    for c in range(2):
        write(rng.normal(size=(4, 5, 6)).astype(np.float32), task / "imagesTs" / f"liver_9_{c:04d}.nii.gz")
    shutil.copy(V1_JSON, task / "dataset.json")
    return task


def test_conversion_equals_nnunet(nnunet_dirs, tmp_path):
    task = make_v1_task(tmp_path)
    assert convert_old_main([str(task), "Dataset017_Tiny"]) == 0
    target = nnunet_dirs["raw"] / "Dataset017_Tiny"
    assert (target / "dataset.json").read_bytes() == EXPECTED_JSON.read_bytes()
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        cmp = filecmp.dircmp(task / sub, target / sub)
        assert not (cmp.left_only or cmp.right_only or cmp.diff_files), sub
        assert filecmp.cmpfiles(task / sub, target / sub, cmp.common_files, shallow=False)[0] == cmp.common_files
    assert sorted(p.name for p in nnunet_dirs["raw"].iterdir()) == ["Dataset017_Tiny"]  # no staging folder left
    from nnunet.io.integrity import verify_dataset_integrity

    verify_dataset_integrity(target, num_processes=1)  # usable as is


def test_optional_folders_copied(nnunet_dirs, tmp_path):
    task = make_v1_task(tmp_path)
    for sub in ("labelsTs", "imagesVal", "labelsVal"):
        (task / sub).mkdir()
        (task / sub / "x.nii.gz").write_bytes(b"data")
    (task / "unrelated_folder").mkdir()
    target = convert_v1_dataset(task, "Dataset017_Tiny")
    assert sorted(p.name for p in target.iterdir()) == ["dataset.json", "imagesTr", "imagesTs", "imagesVal",
                                                        "labelsTr", "labelsTs", "labelsVal"]


def test_json_conversion_rules():
    v1 = {"name": "X", "modality": {"0": "MRI"}, "labels": {"0": "background", " 2 ": "b", "1": "a"},
          "numTraining": 3, "tensorImageSize": "3D", "training": [], "extra": {"k": 1}}
    out = convert_v1_dataset_json(v1)
    assert list(out) == ["name", "labels", "numTraining", "extra", "channel_names", "file_ending"]
    assert out["labels"] == {"background": 0, "b": 2, "a": 1}
    assert out["channel_names"] == {"0": "MRI"} and out["file_ending"] == ".nii.gz"
    with pytest.raises(DatasetError, match="new format"):
        convert_v1_dataset_json({"channel_names": {"0": "CT"}, "labels": {"background": 0}}, "d.json")
    with pytest.raises(DatasetError, match="label values"):
        convert_v1_dataset_json({"modality": {"0": "CT"}, "labels": {"background": 0}}, "d.json")


def test_existing_target_is_refused(nnunet_dirs, tmp_path, capsys):
    task = make_v1_task(tmp_path)
    existing = nnunet_dirs["raw"] / "Dataset017_Tiny"
    existing.mkdir()
    (existing / "keep.txt").write_text("user data")
    assert convert_old_main([str(task), "Dataset017_Tiny"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    # another dataset with the same id would make the id ambiguous
    shutil.rmtree(existing)
    (nnunet_dirs["preprocessed"] / "Dataset017_Other").mkdir()
    assert convert_old_main([str(task), "Dataset017_Tiny"]) == 1
    assert "Dataset017_Other" in capsys.readouterr().err
    # the same name in nnUNet_results (e.g. an installed pretrained model) is fine
    shutil.rmtree(nnunet_dirs["preprocessed"] / "Dataset017_Other")
    (nnunet_dirs["results"] / "Dataset017_Tiny").mkdir()
    assert convert_old_main([str(task), "Dataset017_Tiny"]) == 0


@pytest.mark.parametrize("problem,message", [
    ("no_labels", "labelsTr"), ("bad_name", "not a valid dataset name"), ("path_name", "not a path"),
    ("missing", "does not exist"), ("bad_json", "dataset.json"),
])
def test_bad_input_gives_clear_errors(nnunet_dirs, tmp_path, capsys, problem, message):
    task = make_v1_task(tmp_path)
    name = "Dataset017_Tiny"
    if problem == "no_labels":
        shutil.rmtree(task / "labelsTr")
    elif problem == "bad_name":
        name = "Task017_Tiny"
    elif problem == "path_name":
        name = str(tmp_path / "Dataset017_Tiny")
    elif problem == "missing":
        task = tmp_path / "Task018_Nope"
    elif problem == "bad_json":
        (task / "dataset.json").write_text("{not json")
    assert convert_old_main([str(task), name]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(nnunet_dirs["raw"].iterdir()) == []


def test_interrupted_copy_leaves_nothing(nnunet_dirs, tmp_path, monkeypatch):
    task = make_v1_task(tmp_path)
    real_copytree = shutil.copytree
    calls = []

    def failing_copytree(src, dst, *args, **kwargs):
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_copytree(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copytree", failing_copytree)
    with pytest.raises(OSError, match="disk full"):
        convert_v1_dataset(task, "Dataset017_Tiny")
    assert list(nnunet_dirs["raw"].iterdir()) == []
    assert json.loads((task / "dataset.json").read_text()) == json.loads(V1_JSON.read_text())  # source untouched


def test_staging_folder_of_a_killed_conversion_is_cleaned_up(nnunet_dirs, tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = nnunet_dirs["raw"] / f".Dataset017_Tiny.converting-{int(dead.stdout)}"  # left by a kill -9
    (stale / "imagesTr").mkdir(parents=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        running = nnunet_dirs["raw"] / f".Dataset017_Tiny.converting-{alive.pid}"  # a conversion still at work
        running.mkdir()
        assert convert_old_main([str(make_v1_task(tmp_path)), "Dataset017_Tiny"]) == 0
        assert not stale.exists() and running.is_dir()
        assert (nnunet_dirs["raw"] / "Dataset017_Tiny" / "dataset.json").is_file()
    finally:
        alive.kill()
        alive.wait()
