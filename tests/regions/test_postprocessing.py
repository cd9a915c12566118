"""Postprocessing of region predictions: the whole-foreground step uses the labels, the per-region steps use
the regions, through the determine/apply console-script entry points."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.postprocessing.pp_file import load_postprocessing
from tests.training.helpers import configuration, plans

REF_PYTHON = Path(os.environ.get("NNUNET_REF_VENV", "/work/ref/.venv-ref")) / "bin" / "python"
FIXTURE_DIR = Path(__file__).parents[1] / "fixtures" / "regions"
# "other" (label 3) lies outside the "whole" region, so keeping the largest foreground component and keeping the
# largest component of the region (1, 2) are different operations
LABELS = {"background": 0, "whole": [1, 2], "core": 2, "other": 3}
REGIONS_CLASS_ORDER = [1, 2, 3]


def ball(shape, center, radius) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"))
    return ((grid - np.reshape(center, (-1, 1, 1, 1))) ** 2).sum(0) <= radius ** 2


def reference_case(shift: int) -> np.ndarray:
    shape = (22, 22, 22)
    seg = np.zeros(shape, dtype=np.uint8)
    seg[ball(shape, (7 + shift, 7, 7), 5)] = 1
    seg[ball(shape, (7 + shift, 7, 7), 2)] = 2
    seg[ball(shape, (15, 15, 15 - shift), 3)] = 3  # smaller than the whole-tumour blob
    return seg


def write(seg: np.ndarray, path: Path) -> None:
    sitk.WriteImage(sitk.GetImageFromArray(seg), str(path))


@pytest.fixture
def region_predictions(tmp_path):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir()
    pred.mkdir()
    for i, shift in enumerate((0, 2)):
        seg = reference_case(shift)
        write(seg, ref / f"case_{i}.nii.gz")
        seg = seg.copy()
        seg[1:3, 18:20, 1:3] = 1  # a stray false-positive component of label 1 (so of the region (1, 2))
        write(seg, pred / f"case_{i}.nii.gz")
    ds = {"channel_names": {"0": "MRI"}, "labels": LABELS, "regions_class_order": REGIONS_CLASS_ORDER,
          "numTraining": 2, "file_ending": ".nii.gz"}
    (pred / "dataset.json").write_text(json.dumps(ds, indent=1))
    p = plans("Dataset814_PP", {"3d_fullres": configuration("3d_fullres", (16, 16, 16), 2, (4, 8))}, (22, 22, 22))
    (pred / "plans.json").write_text(json.dumps(p, indent=1))
    return ref, pred


def test_region_postprocessing_is_determined_and_applied_per_region(region_predictions, tmp_path):
    from nnunet.cli.postprocess import apply_postprocessing_main, determine_postprocessing_main

    ref, pred = region_predictions
    assert determine_postprocessing_main(["-i", str(pred), "-ref", str(ref), "-np", "1", "--no_pbar"]) == 0
    fns, kwargs = load_postprocessing(pred / "postprocessing.pkl")
    # the whole-foreground step (labels 1, 2, 3) would delete "other" and is rejected; keeping the largest
    # component of the region (1, 2) removes the stray blob and is accepted; plain labels would give 1 here
    assert [f.__name__ for f in fns] == ["remove_all_but_largest_component_from_segmentation"]
    assert kwargs == [{"labels_or_regions": (1, 2)}]
    content = json.loads((pred / "postprocessing.json").read_text())
    assert set(content["input_folder"]["mean"]) == {"(1, 2)", "2", "3"}
    assert content["postprocessed"]["mean"]["(1, 2)"]["Dice"] == 1.0
    assert content["input_folder"]["mean"]["(1, 2)"]["Dice"] < 1.0

    out = tmp_path / "applied"
    assert apply_postprocessing_main(["-i", str(pred), "-o", str(out), "-pp_pkl_file", str(pred / "postprocessing.pkl"),
                                      "-np", "1", "--no_pbar"]) == 0
    for i in range(2):
        applied = sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"case_{i}.nii.gz")))
        np.testing.assert_array_equal(applied, sitk.GetArrayFromImage(sitk.ReadImage(str(ref / f"case_{i}.nii.gz"))))
        np.testing.assert_array_equal(applied, sitk.GetArrayFromImage(
            sitk.ReadImage(str(pred / "postprocessed" / f"case_{i}.nii.gz"))))


def test_region_postprocessing_matches_nnunet(region_predictions):
    """nnU-Net 2.8.1's determine_postprocessing on the same folders (its postprocessing.json is the fixture, made
    with ``REGEN_REGION_FIXTURES=1`` and the reference venv) chooses the same steps with the same Dice values."""
    from nnunet.postprocessing.postprocess import determine_postprocessing

    ref, pred = region_predictions
    fixture = FIXTURE_DIR / "postprocessing_regions_reference.json"
    if os.environ.get("REGEN_REGION_FIXTURES") and REF_PYTHON.is_file():
        _run_reference(ref, pred, fixture)
    determine_postprocessing(pred, ref, num_processes=1)
    ours = json.loads((pred / "postprocessing.json").read_text())
    theirs = json.loads(fixture.read_text())
    assert ours["postprocessing_kwargs"] == theirs["postprocessing_kwargs"] == [{"labels_or_regions": [1, 2]}]
    assert ours["postprocessing_fns"] == theirs["postprocessing_fns"]
    for part in ("input_folder", "postprocessed"):
        assert ours[part]["foreground_mean"] == pytest.approx(theirs[part]["foreground_mean"])
        assert set(ours[part]["mean"]) == set(theirs[part]["mean"])
        for key, metrics in theirs[part]["mean"].items():
            assert ours[part]["mean"][key] == pytest.approx(metrics)


def _run_reference(ref: Path, pred: Path, fixture: Path) -> None:
    theirs = pred.parent / "pred_reference"
    theirs.mkdir()
    for f in pred.iterdir():
        (theirs / f.name).write_bytes(f.read_bytes())
    script = ("import sys\nfrom nnunetv2.postprocessing.remove_connected_components import determine_postprocessing\n"
              "f = sys.argv[1]\n"
              "determine_postprocessing(f, sys.argv[2], f + '/plans.json', f + '/dataset.json', num_processes=1)\n")
    env = {**os.environ, "nnUNet_raw": str(pred.parent), "nnUNet_preprocessed": str(pred.parent),
           "nnUNet_results": str(pred.parent)}
    subprocess.run([str(REF_PYTHON), "-c", script, str(theirs), str(ref)], check=True, env=env,
                   capture_output=True, timeout=300)
    fixture.parent.mkdir(parents=True, exist_ok=True)
    fixture.write_text((theirs / "postprocessing.json").read_text())
