"""Export: logits -> original geometry (resample, nonlinearity, label map, un-crop, un-transpose) and files."""
from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet.inference import export
from nnunet.inference.export import (PARTIAL_FOLDER, convert_predicted_logits_to_segmentation_with_correct_shape,
                                     export_prediction_from_logits, resample_logits)
from nnunet.io.labels import LabelManager
from nnunet.planning.plans import Plans
from tests.helpers import FIXTURES

torch.set_num_threads(1)

PLANS = Plans.load(FIXTURES / "inference" / "model" / "plans.json")  # transpose_forward [1, 0, 2]
CONFIG = PLANS.configuration("3d_fullres")
LABELS = LabelManager({"background": 0, "blob": 1, "core": 2})
DATASET_JSON = {"labels": {"background": 0, "blob": 1, "core": 2}, "file_ending": ".nii.gz",
                "channel_names": {"0": "MRI"}}


def _native_spacing_in_reader_order() -> list[float]:
    """Reader-order spacing whose transposed version equals the configuration spacing (no resampling)."""
    spacing = [0.0] * 3
    for i, axis in enumerate(PLANS.transpose_forward):
        spacing[axis] = CONFIG.spacing[i]
    return spacing


def _case(rng, shape_reader=(6, 9, 7), bbox=((1, 8), (0, 5), (2, 7))):
    labels = rng.integers(0, 3, shape_reader).astype(np.uint8)
    transposed = labels.transpose(PLANS.transpose_forward)
    crop = tuple(slice(a, b) for a, b in bbox)
    inside = np.zeros(transposed.shape, dtype=bool)
    inside[crop] = True
    expected = np.where(inside, transposed, 0).transpose(PLANS.transpose_backward)
    cropped = transposed[crop]
    logits = (np.eye(3, dtype=np.float32)[cropped].transpose(3, 0, 1, 2) * 5 - 2).astype(np.float16)
    properties = {"spacing": _native_spacing_in_reader_order(), "shape_before_cropping": transposed.shape,
                  "bbox_used_for_cropping": [list(b) for b in bbox],
                  "shape_after_cropping_and_before_resampling": cropped.shape}
    return logits, properties, expected, inside


def test_geometry_round_trip_labels_and_probabilities():
    rng = np.random.default_rng(0)
    logits, properties, expected, inside = _case(rng)
    seg = convert_predicted_logits_to_segmentation_with_correct_shape(logits, PLANS, CONFIG, LABELS, properties)
    assert seg.shape == expected.shape == (6, 9, 7) and seg.dtype == np.uint8
    np.testing.assert_array_equal(seg, expected)
    seg2, probs = convert_predicted_logits_to_segmentation_with_correct_shape(
        torch.from_numpy(logits), PLANS, CONFIG, LABELS, properties, return_probabilities=True)
    np.testing.assert_array_equal(seg2, expected)
    assert probs.shape == (3, 6, 9, 7) and probs.dtype == np.float32
    outside = ~inside.transpose(PLANS.transpose_backward)
    assert (probs[0][outside] == 1).all() and (probs[1:, outside] == 0).all()
    softmax = torch.softmax(torch.from_numpy(logits).float(), 0).numpy()
    np.testing.assert_allclose(probs[:, ~outside], _uncrop_back(softmax, properties)[:, ~outside], rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-6)


def _uncrop_back(values, properties):
    full = np.zeros((values.shape[0], *properties["shape_before_cropping"]), dtype=values.dtype)
    full[(slice(None), *[slice(a, b) for a, b in properties["bbox_used_for_cropping"]])] = values
    return full.transpose([0] + [a + 1 for a in PLANS.transpose_backward])


def test_regions_painting_order_and_zero_probabilities_outside():
    regions = LabelManager({"background": 0, "whole": [1, 2], "core": 2}, regions_class_order=[1, 2])
    rng = np.random.default_rng(1)
    _, properties, _, inside = _case(rng)
    shape = properties["shape_after_cropping_and_before_resampling"]
    logits = rng.normal(0, 3, (2, *shape)).astype(np.float16)
    seg, probs = convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, PLANS, CONFIG, regions, properties, return_probabilities=True)
    expected_cropped = np.zeros(shape, dtype=np.uint8)
    expected_cropped[logits[0].astype(np.float32) > 0] = 1
    expected_cropped[logits[1].astype(np.float32) > 0] = 2  # later regions overwrite earlier ones
    np.testing.assert_array_equal(seg, _uncrop_back(expected_cropped[None], properties)[0])
    outside = ~inside.transpose(PLANS.transpose_backward)
    assert (probs[:, outside] == 0).all()
    np.testing.assert_allclose(probs, _uncrop_back(torch.sigmoid(torch.from_numpy(logits).float()).numpy(),
                                                   properties), rtol=1e-6)
    seg_no_probs = convert_predicted_logits_to_segmentation_with_correct_shape(logits, PLANS, CONFIG, regions,
                                                                               properties)
    np.testing.assert_array_equal(seg_no_probs, seg)


@pytest.mark.parametrize("original_spacing", [(2.0, 0.7, 1.3), (0.5, 0.5, 3.6)])  # the second: separate z
def test_resample_logits_equals_plans_function_per_channel(original_spacing):
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, (3, 10, 12, 9)).astype(np.float16)
    transposed_spacing = [original_spacing[i] for i in PLANS.transpose_forward]
    target = [int(round(c / o * s)) for c, o, s in zip(CONFIG.spacing, transposed_spacing, logits.shape[1:])]
    properties = {"spacing": list(original_spacing), "shape_after_cropping_and_before_resampling": target}
    out = resample_logits(logits, properties, PLANS, CONFIG)
    assert out.dtype == np.float16 and list(out.shape[1:]) == target
    direct = CONFIG.resampling_fn("probabilities")(logits.astype(np.float32), target, CONFIG.spacing,
                                                   transposed_spacing)
    np.testing.assert_array_equal(out, direct.astype(np.float16))
    same = resample_logits(out, dict(properties), PLANS, CONFIG)
    assert same is out  # nothing to do, nothing copied


def test_resample_logits_allocates_no_full_size_float64():
    heads = 8  # per-channel temporaries of the resampler stay well below a float64 copy of all channels
    logits = np.random.default_rng(3).normal(0, 2, (heads, 40, 40, 40)).astype(np.float16)
    properties = {"spacing": [s / 2 for s in _native_spacing_in_reader_order()],
                  "shape_after_cropping_and_before_resampling": (80, 80, 80)}
    CONFIG.resampling_fn("probabilities")  # import the resampling module before measuring
    tracemalloc.start()
    out = resample_logits(logits, properties, PLANS, CONFIG)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.shape == (heads, 80, 80, 80) and out.dtype == np.float16
    float64_copy = heads * 80 ** 3 * 8
    assert peak < 0.75 * float64_copy, f"peak {peak / 2**20:.1f} MiB"


def test_export_writes_files_atomically_with_geometry(tmp_path):
    rng = np.random.default_rng(4)
    logits, properties, expected, _ = _case(rng)
    properties["sitk_stuff"] = {"spacing": tuple(properties["spacing"][::-1]), "origin": (1.0, 2.0, 3.0),
                                "direction": (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)}
    export_prediction_from_logits(logits, properties, CONFIG, PLANS, DATASET_JSON, tmp_path / "case", True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.nii.gz", "case.npz", "case.pkl"]
    image = sitk.ReadImage(str(tmp_path / "case.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), expected)
    assert image.GetOrigin() == (1.0, 2.0, 3.0)
    np.testing.assert_allclose(image.GetSpacing(), properties["spacing"][::-1])
    with np.load(tmp_path / "case.npz") as npz:
        assert list(npz.keys()) == ["probabilities"] and npz["probabilities"].dtype == np.float32
        assert npz["probabilities"].shape == (3, *expected.shape)
    with open(tmp_path / "case.pkl", "rb") as f:
        assert pickle.load(f) == properties


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    logits, properties, _, _ = _case(rng)
    properties["sitk_stuff"] = {"spacing": (1.0, 1.0, 1.0), "origin": (0.0, 0.0, 0.0),
                                "direction": (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)}

    class BrokenWriter:
        def write_seg(self, seg, path, props):
            with open(path, "wb") as f:
                f.write(b"half a file")
            raise OSError("disk full")

    monkeypatch.setattr(export, "reader_class", lambda name: BrokenWriter)
    from nnunet.utils.files import OutputError

    with pytest.raises(OutputError, match=r"case\.nii\.gz.*disk full"):
        export_prediction_from_logits(logits, properties, CONFIG, PLANS, DATASET_JSON, tmp_path / "case")
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path / PARTIAL_FOLDER).exists()
