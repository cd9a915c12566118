"""Normalization, resampling decisions, class locations and storage robustness."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import resize

from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main
from nnunet.demo.synthetic import make_dataset
from nnunet.io.labels import LabelManager
from nnunet.preprocessing.class_locations import class_location_keys, sample_class_locations
from nnunet.preprocessing.normalization import CTNormalization, RescaleTo01Normalization, ZScoreNormalization
from nnunet.preprocessing.resampling import (compute_new_shape, resample_data_or_seg_to_shape, separate_z_axis)
from nnunet.preprocessing.storage import case_ids, load_case, save_case


def test_zscore_with_mask_only_touches_the_mask():
    img = np.array([[0, 0, 2, 4, 6]], np.float32)
    seg = np.array([[-1, -1, 0, 1, 0]])
    out = ZScoreNormalization(use_mask_for_norm=True).run(img.copy(), seg)
    values = np.array([2, 4, 6], np.float32)
    assert np.allclose(out[0, 2:], (values - 4) / values.std())
    assert np.all(out[0, :2] == 0)


def test_ct_clips_then_uses_fingerprint_statistics():
    props = {"mean": 10.0, "std": 2.0, "percentile_00_5": 0.0, "percentile_99_5": 20.0}
    out = CTNormalization(intensityproperties=props).run(np.array([-100, 10, 100], np.float32))
    assert np.allclose(out, [-5, 0, 5])


def test_rescale_to_01():
    out = RescaleTo01Normalization().run(np.array([2, 4, 6], np.float32))
    assert np.allclose(out, [0, 0.5, 1])


@pytest.mark.parametrize("current,new,force,expected", [
    ((1, 1, 1), (1, 1, 1), None, None),
    ((4, 1, 1), (4, 1, 1), None, 0),          # anisotropic input: slice axis 0
    ((1, 1, 1), (1, 1, 5), None, 2),          # anisotropic target decides when the input is not
    ((0.24, 1.25, 1.25), (0.24, 1.25, 1.25), None, None),  # two coarse axes: no separate axis
    ((4, 1, 1), (4, 1, 1), False, None),
    ((1, 2, 1), (1, 2, 1), True, 1),
])
def test_separate_z_decision(current, new, force, expected):
    assert separate_z_axis(current, new, force) == expected


def test_cubic_resampling_matches_skimage_and_keeps_range():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(1, 9, 10, 11)).astype(np.float32)
    out = resample_data_or_seg_to_shape(img, (13, 7, 11), (1, 1, 1), (1, 1, 1), order=3, force_separate_z=None)
    expected = resize(img[0].astype(float), (13, 7, 11), 3, mode="edge", anti_aliasing=False)
    assert out.dtype == np.float32 and np.abs(out[0] - expected).max() < 1e-6
    assert out.min() >= img.min() and out.max() <= img.max()


def test_separate_z_uses_nearest_across_slices():
    img = np.zeros((1, 3, 4, 4), np.float32)
    img[0, 1] = 5
    out = resample_data_or_seg_to_shape(img, (6, 4, 4), (4, 1, 1), (2, 1, 1), order=3, force_separate_z=None)
    assert set(np.unique(out).tolist()) == {0.0, 5.0}  # no interpolated values between slices


def test_compute_new_shape_rounds_half_to_even():
    assert compute_new_shape((5, 10, 3), (1, 1, 1), (2, 1, 2)) == [2, 10, 2]


def test_class_locations_keys_and_counts():
    seg = np.zeros((1, 30, 30, 30), np.int16)
    seg[0, :10] = 1
    seg[0, 20:, :2, :2] = 2
    lm = LabelManager({"background": 0, "a": 1, "b": 2, "ignore": 3})
    keys = class_location_keys(lm)
    assert keys == [1, 2, (-1, 0, 1, 2)]
    locs = sample_class_locations(seg, keys)
    assert locs[1].shape == (9000, 4) and np.all(seg[tuple(locs[1].T)] == 1)
    assert locs[2].shape == (40, 4) and np.all(locs[2][:, 0] == 0)
    again = sample_class_locations(seg, keys)
    assert np.array_equal(locs[1], again[1])  # fixed seed


def test_save_case_is_complete_or_absent(tmp_path, monkeypatch):
    data = np.ones((1, 4, 4, 4), np.float32)
    seg = np.zeros((1, 4, 4, 4), np.int8)
    save_case(tmp_path, "good", data, seg, {"spacing": [1, 1, 1]}, [4, 4, 4])
    import nnunet.preprocessing.storage as storage

    write = storage._write_file

    def crash_on_properties(path, content):
        if path.suffix == ".pkl":  # written last
            raise KeyboardInterrupt
        write(path, content)

    monkeypatch.setattr(storage, "_write_file", crash_on_properties)
    with pytest.raises(KeyboardInterrupt):
        save_case(tmp_path, "bad", data, seg, {}, [4, 4, 4])
    assert case_ids(tmp_path) == ["good"]  # the interrupted case is not listed as a case
    d, s, p = load_case(tmp_path, "good")
    assert np.array_equal(d[:], data) and p["spacing"] == [1, 1, 1]


def test_corrupt_image_names_the_file(nnunet_dirs, capsys):
    raw = make_dataset(nnunet_dirs["raw"], 9, "Corrupt", "3d_iso", num_cases=2)
    bad = raw / "imagesTr" / "case_001_0000.nii.gz"
    bad.write_bytes(b"not a nifti file")
    assert plan_and_preprocess_main(["-d", "9", "-npfp", "1", "-np", "1", "--no_pbar"]) == 1
    err = capsys.readouterr().err
    assert "case_001_0000.nii.gz" in err and "Traceback" not in err
    assert bad.read_bytes() == b"not a nifti file"  # raw data untouched


def test_worker_pool_path_gives_the_same_arrays(nnunet_dirs):
    """-np 2 runs fingerprint and preprocessing in one shared spawn pool; output equals the in-process run."""
    make_dataset(nnunet_dirs["raw"], 10, "Pool", "3d_iso", num_cases=3, spacing_jitter=0.2)
    args = ["-d", "10", "-c", "3d_fullres", "--no_pbar"]
    assert plan_and_preprocess_main(args + ["-np", "2", "-npfp", "2"]) == 0
    folder = nnunet_dirs["preprocessed"] / "Dataset010_Pool" / "nnUNetPlans_3d_fullres"
    parallel = {c: load_case(folder, c)[0][:] for c in case_ids(folder)}
    assert plan_and_preprocess_main(args + ["-np", "1", "-npfp", "1", "--clean"]) == 0
    assert sorted(parallel) == case_ids(folder) == ["case_000", "case_001", "case_002"]
    for c, arr in parallel.items():
        assert np.array_equal(arr, load_case(folder, c)[0][:])
