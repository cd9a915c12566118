"""determine/apply postprocessing: same decisions and files as nnU-Net 2.8.1 on crafted cases.

Fixtures: tests/fixtures/postprocessing/make_fixtures.py ran the reference on the PP_DATASETS of
tests/evaluation/synthetic_cases.py:
- stray_and_two_true: label 1 has a stray false-positive blob (per-class step accepted), label 2 has two true
  blobs (its step would delete one: rejected), so the whole-foreground step is rejected too;
- fg: a stray blob far from the touching labels 1/2 (whole-foreground step accepted), one case without label 2;
- regions: region dataset, whole-foreground step on the labels accepted;
- empty_class: label 3 never occurs (NaN means, so the whole-foreground step can never be accepted).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.cli.postprocess import apply_postprocessing_main, determine_postprocessing_main
from nnunet.postprocessing.components import remove_all_but_largest_component_from_segmentation
from nnunet.postprocessing.pp_file import load_postprocessing
from tests.evaluation.synthetic_cases import PP_DATASETS, make_pp_dataset
from tests.helpers import FIXTURES
from tests.json_equal import assert_json_equal

FIXTURE_DIR = FIXTURES / "postprocessing"
REF_VENV = Path(os.environ.get("NNUNET_REF_VENV", "/work/ref/.venv-ref"))


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def determined(tmp_path_factory):
    """Every crafted dataset with our determine_postprocessing already run on it."""
    root = tmp_path_factory.mktemp("pp")
    for name in PP_DATASETS:
        folder = make_pp_dataset(root, name)
        rc = determine_postprocessing_main(["-i", str(folder / "pred"), "-ref", str(folder / "ref"), "-np", "1",
                                            "--no_pbar"])
        assert rc == 0
    return root


@pytest.mark.parametrize("name", sorted(PP_DATASETS))
def test_decisions_and_json_equal_reference(name, determined):
    ours = json.loads((determined / name / "pred" / "postprocessing.json").read_text())
    ref = json.loads((FIXTURE_DIR / f"{name}.json").read_text())
    assert ours["postprocessing_kwargs"] == ref["postprocessing_kwargs"]
    assert_json_equal(ours, ref)


@pytest.mark.parametrize("name", sorted(PP_DATASETS))
def test_pkl_is_byte_identical_and_reference_pkl_loads(name, determined):
    ours = (determined / name / "pred" / "postprocessing.pkl").read_bytes()
    assert ours == (FIXTURE_DIR / f"{name}.pkl").read_bytes()
    fns, kwargs = load_postprocessing(FIXTURE_DIR / f"{name}.pkl")
    assert all(f is remove_all_but_largest_component_from_segmentation for f in fns)
    assert kwargs == [{"labels_or_regions": k["labels_or_regions"]} for k in kwargs] and len(kwargs) == len(fns)


def test_expected_decisions_on_crafted_cases():
    decisions = {name: json.loads((FIXTURE_DIR / f"{name}.json").read_text())["postprocessing_kwargs"]
                 for name in PP_DATASETS}
    assert decisions["stray_and_two_true"] == [{"labels_or_regions": 1}]
    assert decisions["fg"] == [{"labels_or_regions": [1, 2]}]
    assert decisions["regions"] == [{"labels_or_regions": [1, 2, 3]}]
    assert decisions["empty_class"] == [{"labels_or_regions": 1}]


def test_postprocessed_folder_holds_final_files(determined):
    folder = determined / "stray_and_two_true" / "pred"
    post = folder / "postprocessed"
    assert not (post / "temp").exists()
    assert (post / "summary.json").is_file()
    seg = _read(post / "case_000.nii.gz")
    # the stray label-1 blob is gone, both label-2 components are still there
    assert (seg[9:11, 10:12, 2:4] == 0).all()
    assert (seg[9:11, 2:4, 11:14] == 2).all() and (seg[2:6, 11:15, 10:15] == 2).all()


def test_apply_with_pkl_or_json_reproduces_postprocessed_folder(determined, tmp_path):
    folder = determined / "fg" / "pred"
    for i, pp_file in enumerate(("postprocessing.pkl", "postprocessing.json")):
        out = tmp_path / f"out{i}"
        rc = apply_postprocessing_main(["-i", str(folder), "-o", str(out), "-pp_pkl_file", str(folder / pp_file),
                                        "-np", "1", "--no_pbar"])
        assert rc == 0
        names = sorted(p.name for p in out.iterdir())
        assert names == ["case_000.nii.gz", "case_001.nii.gz", "case_002.nii.gz"]
        for n in names:
            np.testing.assert_array_equal(_read(out / n), _read(folder / "postprocessed" / n))


def test_apply_from_ensemble_like_folder_needs_plans(determined, tmp_path, capsys):
    src = tmp_path / "ens"
    src.mkdir()
    shutil.copy(determined / "fg" / "pred" / "case_000.nii.gz", src)
    pp = str(determined / "fg" / "pred" / "postprocessing.pkl")
    assert apply_postprocessing_main(["-i", str(src), "-o", str(tmp_path / "o"), "-pp_pkl_file", pp, "-np", "1"]) == 1
    assert "plans.json" in capsys.readouterr().err
    plans, ds = determined / "fg" / "pred" / "plans.json", determined / "fg" / "pred" / "dataset.json"
    assert apply_postprocessing_main(["-i", str(src), "-o", str(tmp_path / "o"), "-pp_pkl_file", pp, "-np", "1",
                                      "-plans_json", str(plans), "-dataset_json", str(ds), "--no_pbar"]) == 0
    assert (tmp_path / "o" / "case_000.nii.gz").is_file()


def test_remove_postprocessed_and_pool(tmp_path):
    folder = make_pp_dataset(tmp_path, "stray_and_two_true")
    assert determine_postprocessing_main(["-i", str(folder / "pred"), "-ref", str(folder / "ref"), "-np", "2",
                                          "--remove_postprocessed", "--no_pbar"]) == 0
    assert not (folder / "pred" / "postprocessed").exists()
    assert (folder / "pred" / "postprocessing.pkl").read_bytes() == (FIXTURE_DIR / "stray_and_two_true.pkl"
                                                                     ).read_bytes()


def test_bad_pp_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    assert apply_postprocessing_main(["-i", str(tmp_path), "-o", str(tmp_path / "o"), "-pp_pkl_file", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "refused to load os.system" in err and str(bad) in err


@pytest.mark.skipif(not (REF_VENV / "bin" / "python").is_file(), reason="reference venv not available")
def test_reference_applies_our_pkl(determined, tmp_path):
    """nnU-Net itself loads our postprocessing.pkl and, applied by it, gives our postprocessed files."""
    folder = determined / "stray_and_two_true" / "pred"
    env = dict(os.environ, nnUNet_raw=str(tmp_path), nnUNet_preprocessed=str(tmp_path), nnUNet_results=str(tmp_path))
    subprocess.run([str(REF_VENV / "bin" / "nnUNetv2_apply_postprocessing"), "-i", str(folder), "-o",
                    str(tmp_path / "ref_out"), "-pp_pkl_file", str(folder / "postprocessing.pkl"), "-np", "1"],
                   env=env, check=True, capture_output=True)
    for n in ("case_000.nii.gz", "case_001.nii.gz", "case_002.nii.gz"):
        np.testing.assert_array_equal(_read(tmp_path / "ref_out" / n), _read(folder / "postprocessed" / n))
