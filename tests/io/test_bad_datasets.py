"""Broken raw datasets: the integrity check must name every problem (case/file + what is wrong) in one error,
never show a traceback and never write into the raw folder."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.demo.synthetic import make_dataset
from nnunet.errors import DatasetError
from nnunet.io.integrity import verify_dataset_integrity

SMALL = {"num_cases": 3, "shape": (8, 10, 12), "shape_jitter": 0}


def _write(path: Path, arr: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing([float(s) for s in spacing[::-1]])
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path), True)


def _edit_json(folder: Path, **changes) -> None:
    ds = json.loads((folder / "dataset.json").read_text())
    for k, v in changes.items():
        if v is None:
            ds.pop(k, None)
        else:
            ds[k] = v
    (folder / "dataset.json").write_text(json.dumps(ds))


def _label(folder: Path, case: str, ending: str = ".nii.gz") -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / f"{case}{ending}")))


def _image(folder: Path, case: str, ending: str = ".nii.gz") -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "imagesTr" / f"{case}_0000{ending}")))


# --- the broken datasets: (preset, how to break it, phrases the error must contain) ---------------------------

def _rm(rel: str) -> Callable[[Path], None]:
    return lambda f: (f / rel).unlink()


def _with_label_value(f: Path) -> None:
    seg = _label(f, "case_001")
    seg[2, 3, 4] = 5
    _write(f / "labelsTr" / "case_001.nii.gz", seg)


def _shape_mismatch(f: Path) -> None:
    _write(f / "labelsTr" / "case_002.nii.gz", np.zeros((8, 10, 11), np.uint8))


def _spacing_mismatch(f: Path) -> None:
    _write(f / "labelsTr" / "case_000.nii.gz", _label(f, "case_000"), spacing=(2.0, 1.0, 1.0))


# SimpleITK reads NaN in NIfTI files as 0, so NaNs are planted in .nrrd datasets
def _nan_image(f: Path, ending: str = ".nrrd") -> None:
    img = _image(f, "case_001", ending)
    img[1, 1, 1] = np.nan
    _write(f / "imagesTr" / f"case_001_0000{ending}", img)


def _nan_label(f: Path) -> None:
    seg = _label(f, "case_000", ".nrrd").astype(np.float32)
    seg[0, 0, 0] = np.nan
    _write(f / "labelsTr" / "case_000.nrrd", seg)


def _not_consecutive(f: Path) -> None:
    _edit_json(f, labels={"background": 0, "blob": 1, "core": 3})


def _corrupt_image(f: Path) -> None:
    (f / "imagesTr" / "case_001_0000.nii.gz").write_bytes(b"definitely not a nifti file" * 20)


def _truncated_label(f: Path) -> None:
    path = f / "labelsTr" / "case_002.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _badly_named(f: Path) -> None:
    shutil.copy(f / "imagesTr" / "case_000_0000.nii.gz", f / "imagesTr" / "extra.nii.gz")


def _several(f: Path) -> None:
    _rm("labelsTr/case_000.nrrd")(f)
    _nan_image(f)
    seg = _label(f, "case_002", ".nrrd")
    seg[0, 0, 0] = 7
    _write(f / "labelsTr" / "case_002.nrrd", seg)


BROKEN: dict[str, tuple[str, Callable[[Path], None], list[str]]] = {
    "missing dataset.json": ("3d_iso", _rm("dataset.json"), ["has no dataset.json"]),
    "malformed json": ("3d_iso", lambda f: (f / "dataset.json").write_text('{"labels": {"background": 0,'),
                       ["dataset.json is not valid JSON", "line 1"]),
    "json not an object": ("3d_iso", lambda f: (f / "dataset.json").write_text("[1, 2]"), ["must be a JSON object"]),
    "missing required key": ("3d_iso", lambda f: _edit_json(f, file_ending=None),
                             ["missing required key(s) ['file_ending']", "present:"]),
    "numTraining wrong": ("3d_iso", lambda f: _edit_json(f, numTraining=5),
                          ["numTraining = 5", "3 training case(s)", "case_000"]),
    "numTraining not an int": ("3d_iso", lambda f: _edit_json(f, numTraining="3"), ["'numTraining' must be"]),
    "missing channel file": ("multichannel", _rm("imagesTr/case_001_0001.nii.gz"),
                             ["case case_001: missing channel file(s) imagesTr/case_001_0001.nii.gz"]),
    "missing label file": ("3d_iso", _rm("labelsTr/case_002.nii.gz"),
                           ["case case_002: label file labelsTr/case_002.nii.gz is missing"]),
    "missing imagesTr": ("3d_iso", lambda f: shutil.rmtree(f / "imagesTr"), ["imagesTr does not exist"]),
    "shape mismatch": ("3d_iso", _shape_mismatch,
                       ["case case_002: image shape (8, 10, 12)", "differs from label shape (8, 10, 11)",
                        "labelsTr/case_002.nii.gz"]),
    "spacing mismatch": ("3d_iso", _spacing_mismatch,
                         ["case case_000: image spacing [1.0, 1.0, 1.0]", "label spacing [2.0, 1.0, 1.0]"]),
    "unexpected label value": ("3d_iso", _with_label_value,
                               ["Unexpected labels found in file labelsTr/case_001.nii.gz: [5]", "[0, 1, 2]"]),
    "labels not consecutive": ("3d_iso", _not_consecutive,
                               ["must be consecutive", "missing [2]",
                                "Unexpected labels found in file labelsTr/case_000.nii.gz: [2]"]),
    "NaN in image": ("3d_nrrd", _nan_image, ["case case_001: image file imagesTr/case_001_0000.nrrd contains non-finite values (1 NaN)"]),
    "NaN in label": ("3d_nrrd", _nan_label, ["labelsTr/case_000.nrrd: the label file contains non-finite values (1 NaN)"]),
    "too many channel names": ("3d_iso", lambda f: _edit_json(f, channel_names={"0": "MRI", "1": "T2"}),
                               ["case case_000: 1 channel(s) read", "'channel_names' lists 2"]),
    "bad channel_names keys": ("3d_iso", lambda f: _edit_json(f, channel_names={"1": "MRI"}),
                               ["'channel_names' keys must be \"0\""]),
    "wrong file ending": ("3d_iso", lambda f: _edit_json(f, file_ending=".nrrd"),
                          ["imagesTr: none of its 3 files ends in file_ending '.nrrd'", "['.nii.gz']",
                           "labelsTr: none of its 3 files", "numTraining = 3, but 0 training case(s)"]),
    "region without regions_class_order": (
        "3d_iso", lambda f: _edit_json(f, labels={"background": 0, "whole": [1, 2], "core": 2}),
        ["regions", "regions_class_order"]),
    "ignore label not highest": ("3d_iso", lambda f: _edit_json(f, labels={"background": 0, "ignore": 1, "blob": 2,
                                                                           "core": 3}),
                                 ["ignore label must be the highest"]),
    "background not 0": ("3d_iso", lambda f: _edit_json(f, labels={"background": 3, "blob": 1, "core": 2}),
                         ["background label must be the integer 0"]),
    "no background": ("3d_iso", lambda f: _edit_json(f, labels={"blob": 1, "core": 2}),
                      ["must contain \"background\": 0"]),
    "labels not an object": ("3d_iso", lambda f: _edit_json(f, labels=["background", "blob"]),
                             ["'labels' must be a non-empty object"]),
    "corrupt image file": ("3d_iso", _corrupt_image,
                           ["case case_001: cannot read the image", "case_001_0000.nii.gz"]),
    "truncated label file": ("3d_iso", _truncated_label,
                             ["case case_002: cannot read the label", "case_002.nii.gz"]),
    "badly named image file": ("3d_iso", _badly_named, ["imagesTr/extra.nii.gz: the name does not follow"]),
    "several problems": ("3d_nrrd", _several,
                         ["3 problem(s)", "label file labelsTr/case_000.nrrd is missing",
                          "image file imagesTr/case_001_0000.nrrd contains non-finite values (1 NaN)",
                          "Unexpected labels found in file labelsTr/case_002.nrrd: [7]"]),
}


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


def _broken(raw: Path, case: str) -> Path:
    preset, breaker, _ = BROKEN[case]
    extra = {"file_ending": ".nrrd"} if preset == "3d_nrrd" else {}
    folder = make_dataset(raw, 1, "Broken", preset.replace("3d_nrrd", "3d_iso"), **SMALL, **extra)
    breaker(folder)
    return folder


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_dataset_is_reported_clearly(tmp_path, case):
    folder = _broken(tmp_path / "raw", case)
    before = _snapshot(tmp_path / "raw")
    with pytest.raises(DatasetError) as info:
        verify_dataset_integrity(folder, num_processes=1)
    message = str(info.value)
    for phrase in BROKEN[case][2]:
        assert phrase in message, f"{phrase!r} not in:\n{message}"
    assert "Traceback" not in message
    assert _snapshot(tmp_path / "raw") == before, "the check wrote into the raw folder"


def test_every_problem_is_listed_once_per_case(tmp_path):
    folder = make_dataset(tmp_path / "raw", 1, "Broken", "3d_iso", **SMALL)
    for case in ("case_000", "case_001", "case_002"):
        seg = _label(folder, case)
        seg[0, 0, 0] = 9
        _write(folder / "labelsTr" / f"{case}.nii.gz", seg)
    with pytest.raises(DatasetError) as info:
        verify_dataset_integrity(folder, num_processes=1)
    message = str(info.value)
    assert "3 problem(s)" in message
    for case in ("case_000", "case_001", "case_002"):
        assert message.count(f"labelsTr/{case}.nii.gz: [9]") == 1


def test_problems_from_worker_processes(tmp_path):
    folder = _broken(tmp_path / "raw", "several problems")
    with pytest.raises(DatasetError) as info:
        verify_dataset_integrity(folder, num_processes=2)
    assert "3 problem(s)" in str(info.value)


@pytest.mark.parametrize("preset", ["3d_iso", "multichannel", "2d_png"])
def test_good_dataset_passes(tmp_path, caplog, preset):
    folder = make_dataset(tmp_path / "raw", 1, "Good", preset, **{**SMALL, "shape": (8, 10, 12)[-2 if preset == "2d_png" else 0:]})
    before = _snapshot(tmp_path / "raw")
    caplog.set_level("INFO", logger="nnunet")
    report = verify_dataset_integrity(folder, num_processes=1)
    assert report.num_cases == 3
    assert report.reader == ("NaturalImage2DIO" if preset == "2d_png" else "SimpleITKIO")
    assert "passed" in caplog.text
    assert _snapshot(tmp_path / "raw") == before


def test_origin_mismatch_only_warns(tmp_path, caplog):
    folder = make_dataset(tmp_path / "raw", 1, "Shifted", "3d_iso", **SMALL)
    _write(folder / "labelsTr" / "case_001.nii.gz", _label(folder, "case_001"), origin=(5.0, 0.0, 0.0))
    caplog.set_level("INFO", logger="nnunet")
    report = verify_dataset_integrity(folder, num_processes=1)
    assert any("case case_001: the origin" in w for w in report.warnings)
    assert "Warning: case case_001: the origin" in caplog.text


def test_background_only_label_warns_but_passes(tmp_path):
    folder = make_dataset(tmp_path / "raw", 1, "Empty", "3d_iso", **SMALL)
    _write(folder / "labelsTr" / "case_002.nii.gz", np.zeros_like(_label(folder, "case_002")))
    report = verify_dataset_integrity(folder, num_processes=1)
    assert report.warnings == ["labelsTr/case_002.nii.gz: the label file contains only background (0)."]


def test_legacy_modality_key_warns_but_passes(tmp_path):
    folder = make_dataset(tmp_path / "raw", 1, "Legacy", "3d_iso", **SMALL)
    ds = json.loads((folder / "dataset.json").read_text())
    ds["modality"] = ds.pop("channel_names")
    (folder / "dataset.json").write_text(json.dumps(ds))
    report = verify_dataset_integrity(folder, num_processes=1)
    assert any("modality" in w for w in report.warnings)
    assert "modality" in json.loads((folder / "dataset.json").read_text())  # not rewritten


def test_dataset_key_with_missing_files(tmp_path):
    folder = make_dataset(tmp_path / "raw", 1, "Listed", "3d_iso", **SMALL)
    entries = {f"case_{i:03d}": {"images": [f"imagesTr/case_{i:03d}_0000.nii.gz"], "label": f"labelsTr/case_{i:03d}.nii.gz"}
               for i in range(3)}
    entries["case_002"]["label"] = "labelsTr/nowhere.nii.gz"
    _edit_json(folder, dataset=entries)
    with pytest.raises(DatasetError, match=r"case case_002: file\(s\) listed in dataset.json do not exist.*nowhere"):
        verify_dataset_integrity(folder, num_processes=1)
    entries["case_002"]["label"] = "labelsTr/case_002.nii.gz"
    _edit_json(folder, dataset=entries)
    assert verify_dataset_integrity(folder, num_processes=1).num_cases == 3


def test_cli_reports_problems_without_traceback(nnunet_dirs, capsys):
    from nnunet.cli.fingerprint import extract_fingerprint_main

    folder = _broken(nnunet_dirs["raw"], "several problems")
    before = _snapshot(nnunet_dirs["raw"])
    rc = extract_fingerprint_main(["-d", "1", "--verify_dataset_integrity", "-np", "1", "--no_pbar"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "3 problem(s)" in err and "case_001_0000.nrrd" in err and "Traceback" not in err
    assert _snapshot(nnunet_dirs["raw"]) == before
    assert not any(nnunet_dirs["preprocessed"].iterdir())
