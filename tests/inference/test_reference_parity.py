"""Agreement with nnU-Net 2.8.1: a model it trained (1 epoch, tiny data) predicts the same with our predictor.

Fixtures come from tests/fixtures/inference/make_fixtures.py (the reference's own predictions of the same
images, probabilities stored as float16, so differences below ~5e-4 are storage rounding).
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import SimpleITK as sitk

from tests.inference.helpers import CASES, IMAGES, INFERENCE_FIXTURES, make_predictor

SETTINGS = {"default": {}, "no_tta": {"use_mirroring": False}, "step075": {"tile_step_size": 0.75}}


@pytest.fixture(scope="module")
def reference():
    with np.load(INFERENCE_FIXTURES / "reference_predictions.npz") as npz:
        arrays = dict(npz)
    with open(INFERENCE_FIXTURES / "reference_properties.pkl", "rb") as f:
        properties = pickle.load(f)
    return arrays, properties


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_predictions_agree_with_reference(setting, reference, tmp_path):
    arrays, ref_properties = reference
    predictor = make_predictor(**SETTINGS[setting])
    predictor.predict_from_files(str(IMAGES), str(tmp_path), save_probabilities=True,
                                 num_processes_preprocessing=0, num_processes_segmentation_export=0)
    for case in CASES:
        image = sitk.ReadImage(str(IMAGES / f"{case}_0000.nii.gz"))
        out = sitk.ReadImage(str(tmp_path / f"{case}.nii.gz"))
        seg = sitk.GetArrayFromImage(out)
        ref_seg = arrays[f"{setting}/{case}/seg"]
        assert seg.shape == ref_seg.shape
        differing = int((seg != ref_seg).sum())  # the README claims 100 % agreement: not one voxel may differ
        assert differing == 0, f"{case}: {differing} of {seg.size} voxels differ from nnU-Net's prediction"
        assert (ref_seg > 0).mean() > 0.01  # the model does segment something: the comparison is not vacuous
        with np.load(tmp_path / f"{case}.npz") as npz:
            probabilities = npz["probabilities"]
        ref_probabilities = arrays[f"{setting}/{case}/probabilities"].astype(np.float32)
        assert probabilities.shape == ref_probabilities.shape
        max_diff = np.abs(probabilities - ref_probabilities).max()
        assert max_diff < 2e-3, f"{case}: probabilities differ by up to {max_diff}"
        with open(tmp_path / f"{case}.pkl", "rb") as f:
            properties = pickle.load(f)
        expected = ref_properties[f"{setting}/{case}"]
        assert properties.keys() == expected.keys()
        for key in ("shape_before_cropping", "bbox_used_for_cropping", "shape_after_cropping_and_before_resampling"):
            assert np.array_equal(np.asarray(properties[key]), np.asarray(expected[key])), key
        np.testing.assert_allclose(properties["spacing"], expected["spacing"])
        assert out.GetSpacing() == image.GetSpacing() and out.GetOrigin() == image.GetOrigin()
        assert out.GetDirection() == image.GetDirection()
