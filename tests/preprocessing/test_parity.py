"""Preprocessed arrays and properties equal nnU-Net 2.8.1's (committed fixtures, see make_fixtures.py).

* with the reference's own plans file: our preprocessing alone, on every fixture dataset;
* end to end (fingerprint -> plans -> preprocessing) on two of them.
"""
from __future__ import annotations

import importlib.util
import json
import pickle
import shutil

import numpy as np
import pytest

from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main
from nnunet.cli.preprocess import preprocess_main
from nnunet.demo.synthetic import make_dataset
from nnunet.preprocessing.storage import case_ids, load_case
from tests.helpers import FIXTURES

HERE = FIXTURES / "preprocessing"
_spec = importlib.util.spec_from_file_location("pp_fixtures", HERE / "make_fixtures.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
FIXTURE_DATASETS, CASE = _mod.FIXTURE_DATASETS, _mod.CASE


def _assert_props_equal(ours: dict, ref: dict) -> None:
    assert set(ours) == set(ref)
    for key in ("shape_before_cropping", "shape_after_cropping_and_before_resampling"):
        assert tuple(ours[key]) == tuple(ref[key]), key
    assert [list(b) for b in ours["bbox_used_for_cropping"]] == [list(b) for b in ref["bbox_used_for_cropping"]]
    assert np.allclose(ours["spacing"], ref["spacing"])
    if "sitk_stuff" in ref:
        for k in ("spacing", "origin", "direction"):
            assert np.allclose(ours["sitk_stuff"][k], ref["sitk_stuff"][k]), k
    assert set(ours["class_locations"]) == set(ref["class_locations"])
    for k, v in ref["class_locations"].items():
        assert np.array_equal(np.asarray(ours["class_locations"][k]), np.asarray(v)), f"class_locations[{k}]"


def _check_against_fixture(pre, name: str, configs, num_cases: int) -> None:
    ref_arrays = np.load(HERE / f"{name}.npz")
    with open(HERE / f"{name}.pkl", "rb") as f:
        ref_props = pickle.load(f)
    for config in configs:
        folder = pre / f"nnUNetPlans_{config}"
        assert case_ids(folder) == [f"case_{i:03d}" for i in range(num_cases)]
        data, seg, props = load_case(folder, CASE)
        ref_data, ref_seg = ref_arrays[f"{config}_data"], ref_arrays[f"{config}_seg"]
        assert data.shape == ref_data.shape and data.dtype == np.float32
        assert np.abs(data[:] - ref_data).max() <= 1e-4
        assert seg.dtype == np.int16 and np.array_equal(seg[:], ref_seg)
        _assert_props_equal(props, ref_props[config])


def _setup_with_reference_plans(nnunet_dirs, name: str):
    """Raw dataset regenerated, plus the reference's plans and dataset.json in nnUNet_preprocessed."""
    dataset_id, preset, overrides, configs = FIXTURE_DATASETS[name]
    raw = make_dataset(nnunet_dirs["raw"], dataset_id, name, preset, **overrides)
    pre = nnunet_dirs["preprocessed"] / f"Dataset{dataset_id:03d}_{name}"
    pre.mkdir(parents=True)
    shutil.copy(raw / "dataset.json", pre / "dataset.json")
    shutil.copy(HERE / f"{name}_plans.json", pre / "nnUNetPlans.json")
    return dataset_id, overrides, configs, raw, pre


@pytest.mark.parametrize("name", list(FIXTURE_DATASETS))
def test_preprocess_with_reference_plans_equals_reference(name, nnunet_dirs):
    dataset_id, overrides, configs, raw, pre = _setup_with_reference_plans(nnunet_dirs, name)
    stale = pre / f"nnUNetPlans_{configs[0]}" / "case_999.pkl"  # left over from an older run: must go
    stale.parent.mkdir()
    stale.write_bytes(b"stale")
    assert preprocess_main(["-d", str(dataset_id), "-c", *configs, "-np", "1", "--no_pbar"]) == 0
    assert not stale.exists()
    _check_against_fixture(pre, name, configs, overrides["num_cases"])
    gt = sorted(p.name for p in (pre / "gt_segmentations").iterdir())
    assert gt == sorted(p.name for p in (raw / "labelsTr").iterdir())


@pytest.mark.parametrize("name", ["iso_jitter", "aniso_ct"])
def test_plan_and_preprocess_equals_reference(name, nnunet_dirs):
    dataset_id, preset, overrides, configs = FIXTURE_DATASETS[name]
    make_dataset(nnunet_dirs["raw"], dataset_id, name, preset, **overrides)
    rc = plan_and_preprocess_main(["-d", str(dataset_id), "-c", *configs, "-np", "1", "-npfp", "1", "--no_pbar"])
    assert rc == 0
    pre = nnunet_dirs["preprocessed"] / f"Dataset{dataset_id:03d}_{name}"
    assert json.loads((pre / "nnUNetPlans.json").read_text()) == json.loads((HERE / f"{name}_plans.json").read_text())
    _check_against_fixture(pre, name, configs, overrides["num_cases"])


def test_preprocess_np_must_match_configurations(nnunet_dirs, capsys):
    # checked before anything is read: no dataset needed
    assert preprocess_main(["-d", "7", "-c", "2d", "3d_fullres", "-np", "1", "2", "3", "--no_pbar"]) == 1
    err = capsys.readouterr().err
    assert "-np" in err and "Traceback" not in err


def test_missing_plans_gives_clear_error(nnunet_dirs, capsys):
    make_dataset(nnunet_dirs["raw"], 8, "NoPlans", "3d_iso", num_cases=2)
    (nnunet_dirs["preprocessed"] / "Dataset008_NoPlans").mkdir()
    assert preprocess_main(["-d", "8", "--no_pbar"]) == 1
    assert "Plans file not found" in capsys.readouterr().err


def test_configuration_missing_from_plans_is_skipped(nnunet_dirs, capsys):
    dataset_id, overrides, configs, raw, pre = _setup_with_reference_plans(nnunet_dirs, "png")
    assert preprocess_main(["-d", str(dataset_id), "-c", "3d_lowres", "2d", "-np", "1", "--no_pbar"]) == 0
    out = capsys.readouterr().out
    assert "3d_lowres" in out and "skipped" in out
    assert not (pre / "nnUNetPlans_3d_lowres").exists() and len(case_ids(pre / "nnUNetPlans_2d")) == 3


def test_corrupt_label_names_the_file_and_leaves_no_partial_case(nnunet_dirs, capsys):
    dataset_id, overrides, configs, raw, pre = _setup_with_reference_plans(nnunet_dirs, "aniso_ct")
    bad = raw / "labelsTr" / "case_001.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    assert preprocess_main(["-d", str(dataset_id), "-c", "3d_fullres", "-np", "1", "--no_pbar"]) == 1
    err = capsys.readouterr().err
    assert "case_001.nii.gz" in err and "Traceback" not in err
    # nothing is published: the cases written so far wait in the staging folder, case_001 is not among them
    assert not (pre / "nnUNetPlans_3d_fullres").exists()
    staging = pre / "nnUNetPlans_3d_fullres.staging"
    assert not any(p.name.startswith(("case_001", ".case_001")) for p in staging.iterdir())
    assert "case_001" not in case_ids(staging)
