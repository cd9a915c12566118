"""nnUNet_ensemble: averages equal nnU-Net 2.8.1's on the same probability files (fixtures), plus error cases."""
from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.cli.ensemble import ensemble_main
from nnunet.ensembling.ensemble import average_probabilities, ensemble_folders
from tests.evaluation.synthetic_cases import ENSEMBLE_DATASETS, SPACING_XYZ, ORIGIN, make_ensemble_inputs
from tests.helpers import FIXTURES

FIXTURE_DIR = FIXTURES / "ensembling"


@pytest.mark.parametrize("name", sorted(ENSEMBLE_DATASETS))
def test_ensemble_equals_reference(name, tmp_path):
    folders = make_ensemble_inputs(tmp_path, name)
    out = tmp_path / "out"
    assert ensemble_main(["-i", *map(str, folders), "-o", str(out), "-np", "1", "--save_npz", "--no_pbar"]) == 0
    ref = np.load(FIXTURE_DIR / f"{name}.npz")
    cases = sorted(k[:-len("_seg")] for k in ref.files if k.endswith("_seg"))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["dataset.json"] + [f"{c}{e}" for c in cases for e in (".nii.gz", ".npz", ".pkl")])
    for case in cases:
        img = sitk.ReadImage(str(out / f"{case}.nii.gz"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(img), ref[f"{case}_seg"])
        assert img.GetSpacing() == pytest.approx(SPACING_XYZ) and img.GetOrigin() == pytest.approx(ORIGIN)
        probs = np.load(out / f"{case}.npz")["probabilities"]
        assert probs.dtype == np.float32
        np.testing.assert_array_equal(probs, ref[f"{case}_probabilities"])  # bit-identical
        with open(out / f"{case}.pkl", "rb") as f, open(folders[0] / f"{case}.pkl", "rb") as g:
            assert pickle.load(f) == pickle.load(g)
    assert (out / "dataset.json").read_text() == (FIXTURE_DIR / f"{name}_dataset.json").read_text()


def test_average_is_float32_mean_in_order(tmp_path):
    a = np.array([[0.1, 0.7]], dtype=np.float32)
    b = np.array([[0.3, 0.2]], dtype=np.float16)
    np.savez(tmp_path / "a.npz", probabilities=a)
    np.savez(tmp_path / "b.npz", probabilities=b)
    avg = average_probabilities([tmp_path / "a.npz", tmp_path / "b.npz"])
    expected = (a + b.astype(np.float32)) / np.float32(2)
    assert avg.dtype == np.float32 and np.array_equal(avg, expected)
    # a single folder gives its own probabilities back (as float32)
    assert np.array_equal(average_probabilities([tmp_path / "b.npz"]), b.astype(np.float32))


def test_worker_pool_and_no_npz(tmp_path):
    folders = make_ensemble_inputs(tmp_path, "labels")
    cases = ensemble_folders(folders, tmp_path / "out", num_processes=2, show_progress=False)
    assert cases == ["case_000", "case_001", "case_002"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "case_000.nii.gz", "case_001.nii.gz", "case_002.nii.gz", "dataset.json"]
    ref = np.load(FIXTURE_DIR / "labels.npz")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "case_001.nii.gz"))),
                                  ref["case_001_seg"])


def test_mismatched_folders_name_the_missing_case(tmp_path, capsys):
    folders = make_ensemble_inputs(tmp_path, "labels")
    (folders[1] / "case_002.npz").unlink()
    assert ensemble_main(["-i", *map(str, folders), "-o", str(tmp_path / "out"), "-np", "1"]) == 1
    err = capsys.readouterr().err
    assert "case_002.npz" in err and "model_1" in err


def test_missing_pkl_and_missing_plans_are_clear_errors(tmp_path, capsys):
    folders = make_ensemble_inputs(tmp_path, "labels")
    (folders[0] / "case_001.pkl").unlink()
    assert ensemble_main(["-i", *map(str, folders), "-o", str(tmp_path / "out"), "-np", "1", "--no_pbar"]) == 1
    assert "case_001.pkl" in capsys.readouterr().err
    shutil.move(folders[0] / "plans.json", tmp_path / "plans.json")
    assert ensemble_main(["-i", *map(str, folders), "-o", str(tmp_path / "out"), "-np", "1"]) == 1
    assert "plans.json" in capsys.readouterr().err
    assert ensemble_main(["-i", str(tmp_path / "nope"), "-o", str(tmp_path / "out")]) == 1
    assert "not found" in capsys.readouterr().err


def test_no_partial_files_left_when_a_case_fails(tmp_path):
    folders = make_ensemble_inputs(tmp_path, "labels")
    np.savez(folders[1] / "case_002.npz", wrong_key=np.zeros(3))
    assert ensemble_main(["-i", *map(str, folders), "-o", str(tmp_path / "out"), "-np", "1", "--no_pbar"]) == 1
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert not (tmp_path / "out" / "case_002.nii.gz").exists()
