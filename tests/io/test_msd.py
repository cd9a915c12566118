"""MSD conversion: output equal to nnU-Net 2.8.1's converter on synthetic tasks, refusals that lose no data."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.cli.convert import convert_msd_main
from nnunet.errors import DatasetError
from nnunet.io.integrity import verify_dataset_integrity
from nnunet.io.msd import convert_msd_dataset
from tests.helpers import FIXTURES
from tests.io.msd_cases import summarize_dataset, write_msd_task

REFERENCE = json.loads((FIXTURES / "io" / "msd_reference.json").read_text())


def _tree(root):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


@pytest.mark.parametrize("task,channels", [("Task05_Tiny", 2), ("Task09_Mono", 1)])
def test_conversion_matches_reference(nnunet_dirs, tmp_path, task, channels):
    source = write_msd_task(tmp_path / "src", task, channels)
    target = convert_msd_dataset(source, num_processes=1, show_progress=False)
    ref = REFERENCE[task]
    assert target == nnunet_dirs["raw"] / ref["target"]
    ours = summarize_dataset(target)
    assert ours["dataset_json"] == ref["dataset_json"]
    assert ours["dataset_json_keys"] == ref["dataset_json_keys"]  # key order, too
    assert ours["other_files"] == ref["other_files"]  # no junk ('._' files, .DS_Store) carried over
    assert list(ours["files"]) == list(ref["files"])
    for name, ref_file in ref["files"].items():
        for key, value in ref_file.items():
            assert ours["files"][name][key] == (pytest.approx(value, abs=1e-12) if key in ("spacing", "origin",
                                                "direction") else value), (name, key)
    assert not [p for p in nnunet_dirs["raw"].iterdir() if p.name.startswith(".")]  # no staging folder left


def test_4d_split_keeps_voxels_and_geometry(nnunet_dirs, tmp_path):
    source = write_msd_task(tmp_path / "src", "Task05_Tiny", 2)
    target = convert_msd_dataset(source, num_processes=1, show_progress=False)
    img4 = sitk.ReadImage(str(source / "imagesTr" / "tiny_004.nii.gz"))
    arr4 = sitk.GetArrayFromImage(img4)
    for c in range(2):
        img = sitk.ReadImage(str(target / "imagesTr" / f"tiny_004_{c:04d}.nii.gz"))
        assert np.array_equal(sitk.GetArrayFromImage(img), arr4[c])
        assert img.GetSpacing() == img4.GetSpacing()[:3]
        assert img.GetOrigin() == img4.GetOrigin()[:3]
        assert np.allclose(np.reshape(img.GetDirection(), (3, 3)), np.reshape(img4.GetDirection(), (4, 4))[:3, :3])
    assert (target / "labelsTr" / "tiny_004.nii.gz").read_bytes() == \
        (source / "labelsTr" / "tiny_004.nii.gz").read_bytes()
    assert verify_dataset_integrity(target, num_processes=1).num_cases == 3


def test_3d_images_are_copied_unchanged(nnunet_dirs, tmp_path):
    source = write_msd_task(tmp_path / "src", "Task09_Mono", 1)
    target = convert_msd_dataset(source, num_processes=1, show_progress=False)
    assert (target / "imagesTs" / "tiny_002_0000.nii.gz").read_bytes() == \
        (source / "imagesTs" / "tiny_002.nii.gz").read_bytes()


def test_overwrite_id(nnunet_dirs, tmp_path):
    source = write_msd_task(tmp_path / "src", "Task05_Tiny", 2)
    target = convert_msd_dataset(source, overwrite_id=123, num_processes=1, show_progress=False)
    assert target.name == "Dataset123_Tiny"


@pytest.mark.parametrize("where", ["raw", "preprocessed", "results"])
def test_refuses_a_taken_id_and_changes_nothing(nnunet_dirs, tmp_path, where):
    existing = nnunet_dirs[where] / "Dataset005_Other"
    existing.mkdir()
    (existing / "dataset.json").write_text("{}")
    before = {k: _tree(v) for k, v in nnunet_dirs.items()}
    source = write_msd_task(tmp_path / "src", "Task05_Tiny", 2)
    with pytest.raises(DatasetError, match=r"id 5 is already used by .*Dataset005_Other.*-overwrite_id"):
        convert_msd_dataset(source, num_processes=1, show_progress=False)
    assert {k: _tree(v) for k, v in nnunet_dirs.items()} == before


def test_refuses_to_overwrite_existing_dataset(nnunet_dirs, tmp_path):
    source = write_msd_task(tmp_path / "src", "Task05_Tiny", 2)
    first = convert_msd_dataset(source, num_processes=1, show_progress=False)
    (first / "my_notes.txt").write_text("keep me")
    before = _tree(nnunet_dirs["raw"])
    with pytest.raises(DatasetError, match="Dataset005_Tiny"):
        convert_msd_dataset(source, num_processes=1, show_progress=False)
    assert _tree(nnunet_dirs["raw"]) == before


def test_corrupt_source_file_leaves_no_partial_dataset(nnunet_dirs, tmp_path):
    source = write_msd_task(tmp_path / "src", "Task05_Tiny", 2)
    (source / "imagesTr" / "tiny_004.nii.gz").write_bytes(b"broken" * 50)
    with pytest.raises(DatasetError, match="tiny_004.nii.gz"):
        convert_msd_dataset(source, num_processes=1, show_progress=False)
    assert list(nnunet_dirs["raw"].iterdir()) == []


@pytest.mark.parametrize("breaker,phrase", [
    (lambda s: (s / "dataset.json").unlink(), "['dataset.json'] missing"),
    (lambda s: (s / "dataset.json").write_text("{not json"), "not valid JSON"),
    (lambda s: (s / "dataset.json").write_text('{"labels": {"0": "background"}}'), "needs 'modality'"),
    (lambda s: (s / "dataset.json").write_text('{"modality": {"0": "CT"}, "labels": {"bg": 0}}'),
     "'labels' keys must be label values"),
    (lambda s: os.rename(s / "labelsTr", s / "labels"), "['labelsTr'] missing"),
])
def test_bad_source_folders(nnunet_dirs, tmp_path, breaker, phrase):
    source = write_msd_task(tmp_path / "src", "Task05_Tiny", 2)
    breaker(source)
    with pytest.raises(DatasetError) as info:
        convert_msd_dataset(source, num_processes=1, show_progress=False)
    assert phrase in str(info.value)
    assert list(nnunet_dirs["raw"].iterdir()) == []


def test_folder_name_must_be_a_task_unless_id_given(nnunet_dirs, tmp_path):
    source = write_msd_task(tmp_path / "src", "Prostate", 2)
    with pytest.raises(DatasetError, match="TaskXX_Name"):
        convert_msd_dataset(source, num_processes=1, show_progress=False)
    assert convert_msd_dataset(source, overwrite_id=42, num_processes=1, show_progress=False).name == \
        "Dataset042_Prostate"


def test_cli(nnunet_dirs, tmp_path, capsys):
    source = write_msd_task(tmp_path / "src", "Task05_Tiny", 2)
    assert convert_msd_main(["-i", str(source), "-overwrite_id", "7", "-np", "2", "--no_pbar"]) == 0
    assert "Dataset007_Tiny" in capsys.readouterr().out
    assert len(list((nnunet_dirs["raw"] / "Dataset007_Tiny" / "imagesTr").iterdir())) == 6
    assert convert_msd_main(["-i", str(source), "-overwrite_id", "7", "-np", "1", "--no_pbar"]) == 1
    err = capsys.readouterr().err
    assert "id 7 is already used" in err and "Traceback" not in err


def test_cli_without_nnunet_raw(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("nnUNet_raw", raising=False)
    source = write_msd_task(tmp_path / "src", "Task05_Tiny", 2)
    assert convert_msd_main(["-i", str(source), "-np", "1"]) == 1
    assert "nnUNet_raw" in capsys.readouterr().err
