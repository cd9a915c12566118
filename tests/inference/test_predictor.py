"""nnUNetPredictor: fold ensembling, resume, parts, numpy inputs, cascades, 2-D configurations."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet.errors import ConfigurationError, DatasetError, NnunetError
from nnunet.inference.data_iterators import append_previous_stage, preprocess_files
from nnunet.inference.export import PARTIAL_FOLDER
from nnunet.models import available_folds
from nnunet.networks.from_plans import build_network_for_configuration
from nnunet.io.labels import LabelManager
from nnunet.io.readers import SimpleITKIO
from tests.inference.helpers import CASES, IMAGES, add_fold, make_predictor, make_variant_model, preprocessed

SEQUENTIAL = {"num_processes_preprocessing": 0, "num_processes_segmentation_export": 0}


def test_fold_ensemble_averages_logits_in_half_precision(model_dir):
    add_fold(model_dir, 1)
    (model_dir / "fold_all").mkdir()  # not a numbered fold: ignored by auto-detection
    shutil.copy(model_dir / "fold_0" / "checkpoint_final.pth", model_dir / "fold_all")
    assert available_folds(model_dir) == [0, 1]
    both = make_predictor(model_dir, None)
    assert len(both.list_of_parameters) == 2
    data = preprocessed(both)
    ensemble = both.predict_logits_from_preprocessed_data(data)
    single = [make_predictor(model_dir, (f,)).predict_logits_from_preprocessed_data(data) for f in (0, 1)]
    assert not torch.equal(single[0], single[1])
    expected = single[0].clone()
    expected += single[1]
    expected /= 2
    assert ensemble.dtype == torch.float16
    assert torch.equal(ensemble, expected)
    assert torch.equal(make_predictor(model_dir, "all").predict_logits_from_preprocessed_data(data), single[0])


def test_missing_fold_is_reported_with_what_exists(model_dir):
    with pytest.raises(ConfigurationError, match=r"no fold_3/checkpoint_final\.pth.*fold_0 \(checkpoint_final\.pth\)"):
        make_predictor(model_dir, (0, 3))
    with pytest.raises(ConfigurationError, match="checkpoint_best.pth"):
        from nnunet.inference.predictor import nnUNetPredictor

        nnUNetPredictor(device="cpu").initialize_from_trained_model_folder(model_dir, (0,), "checkpoint_best.pth")


def test_continue_prediction_redoes_only_missing_cases(tmp_path):
    predictor = make_predictor()
    out = tmp_path / "out"
    predictor.predict_from_files(str(IMAGES), str(out), save_probabilities=True, **SEQUENTIAL)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    reference_seg = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ts_small.nii.gz")))
    (out / "ts_small.nii.gz").unlink()            # interrupted before the segmentation was written
    (out / "ts_aniso.npz").unlink()               # probabilities missing: redo too
    leftover = out / PARTIAL_FOLDER / "dead"      # a write that was killed half-way
    leftover.mkdir(parents=True)
    (leftover / "ts_small.nii.gz").write_bytes(b"half")
    predictor.predict_from_files(str(IMAGES), str(out), save_probabilities=True, overwrite=False, **SEQUENTIAL)
    for name in ("ts_regular.nii.gz", "ts_regular.npz", "ts_regular.pkl"):
        assert (out / name).stat().st_mtime_ns == stamps[name], f"{name} was redone"
    assert (out / "ts_aniso.nii.gz").stat().st_mtime_ns != stamps["ts_aniso.nii.gz"]
    assert (out / "ts_aniso.npz").is_file() and (out / "ts_small.npz").is_file()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ts_small.nii.gz"))),
                                  reference_seg)
    # without probabilities, existing segmentations are enough: nothing is redone
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert predictor.predict_from_files(str(IMAGES), str(out), overwrite=False, **SEQUENTIAL) == []
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert {n: t for n, t in after.items() if n.startswith("ts_")} == {n: t for n, t in before.items()
                                                                      if n.startswith("ts_")}


def test_parts_split_sorted_cases(tmp_path):
    predictor = make_predictor(use_mirroring=False)
    predictor.predict_from_files(str(IMAGES), str(tmp_path / "p1"), num_parts=2, part_id=1, **SEQUENTIAL)
    assert sorted(p.name for p in (tmp_path / "p1").glob("*.nii.gz")) == ["ts_regular.nii.gz"]
    predictor.predict_from_files(str(IMAGES), str(tmp_path / "p0"), num_parts=2, part_id=0, **SEQUENTIAL)
    assert sorted(p.name for p in (tmp_path / "p0").glob("*.nii.gz")) == ["ts_aniso.nii.gz", "ts_small.nii.gz"]
    args = json.loads((tmp_path / "p0" / "predict_from_raw_data_args.json").read_text())
    assert args["num_parts"] == 2 and args["part_id"] == 0
    assert json.loads((tmp_path / "p0" / "plans.json").read_text()) == predictor.plans.data
    with pytest.raises(NnunetError, match="part_id"):
        predictor.predict_from_files(str(IMAGES), str(tmp_path / "p2"), num_parts=2, part_id=2, **SEQUENTIAL)
    assert not (tmp_path / "p2").exists()


def test_numpy_entry_points_match_file_prediction(tmp_path):
    predictor = make_predictor(use_mirroring=False)
    predictor.predict_from_files(str(IMAGES), str(tmp_path), save_probabilities=True, **SEQUENTIAL)
    reader = SimpleITKIO()
    images, props = zip(*[reader.read_images([IMAGES / f"{c}_0000.nii.gz"]) for c in CASES])
    seg, probabilities = predictor.predict_single_npy_array(images[1], props[1], save_or_return_probabilities=True)
    np.testing.assert_array_equal(seg, sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "ts_regular.nii.gz"))))
    with np.load(tmp_path / "ts_regular.npz") as npz:
        np.testing.assert_array_equal(probabilities, npz["probabilities"])
    assert "shape_before_cropping" not in props[1]  # the caller's properties are not modified
    segs = predictor.predict_from_list_of_npy_arrays(list(images), None, list(props), None, num_processes=0,
                                                     num_processes_segmentation_export=0)
    for case, s in zip(CASES, segs):
        np.testing.assert_array_equal(s, sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"{case}.nii.gz"))))
    predictor.predict_single_npy_array(images[0], props[0], output_file_truncated=str(tmp_path / "single"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "single.nii.gz"))),
                                  sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "ts_aniso.nii.gz"))))
    with pytest.raises(NnunetError, match="2 channels but the model expects 1"):
        predictor.predict_single_npy_array(np.concatenate([images[0]] * 2), props[0])


def test_background_workers_give_the_same_files(tmp_path):
    predictor = make_predictor(use_mirroring=False)
    predictor.predict_from_files(str(IMAGES), str(tmp_path / "seq"), **SEQUENTIAL)
    predictor.predict_from_files(str(IMAGES), str(tmp_path / "par"), num_processes_preprocessing=1,
                                 num_processes_segmentation_export=1)
    for case in CASES:
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "seq" / f"{case}.nii.gz")))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "par" / f"{case}.nii.gz")))
        np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "par" / PARTIAL_FOLDER).exists()


def test_append_previous_stage_one_hot():
    labels = LabelManager({"background": 0, "a": 1, "b": 3})
    seg = np.array([[[[-1, 0, 1, 3, 1]]]], dtype=np.int8)
    data = np.ones((1, 1, 1, 5), dtype=np.float32)
    out = append_previous_stage(data, seg, labels)
    assert out.shape == (3, 1, 1, 5) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1, 0, 0], [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(out[2, 0, 0], [0, 0, 0, 1, 0])


def test_cascade_uses_previous_stage_predictions(model_dir, tmp_path):
    cascade = make_variant_model(model_dir, "3d_cascade_fullres",
                                  {"inherits_from": "3d_fullres", "previous_stage": "3d_fullres"}, in_channels=3)
    low = tmp_path / "low"
    make_predictor(model_dir, use_mirroring=False).predict_from_files(str(IMAGES), str(low), **SEQUENTIAL)
    predictor = make_predictor(cascade, use_mirroring=False)
    assert predictor.network.encoder.stages[0][0].convs[0].conv.in_channels == 3
    with pytest.raises(NnunetError, match="prev_stage_predictions"):
        predictor.predict_from_files(str(IMAGES), str(tmp_path / "x"), **SEQUENTIAL)
    assert not (tmp_path / "x").exists()
    seen = []
    original_forward = predictor.network.forward
    predictor.network.forward = lambda x: (seen.append(x.clone()), original_forward(x))[1]
    predictor.predict_from_files([[str(IMAGES / "ts_regular_0000.nii.gz")]], [str(tmp_path / "casc" / "ts_regular")],
                                 folder_with_segs_from_prev_stage=str(low), **SEQUENTIAL)
    assert (tmp_path / "casc" / "ts_regular.nii.gz").is_file()
    data, _ = preprocess_files([str(IMAGES / "ts_regular_0000.nii.gz")], str(low / "ts_regular.nii.gz"),
                               predictor.plans, predictor.configuration, predictor.dataset_json)
    assert data.shape[0] == 3 and set(np.unique(data[1:])) <= {0.0, 1.0} and data[1:].sum() > 0
    first_tile = seen[0][0]
    np.testing.assert_array_equal(first_tile[1:].numpy(), data[1:, :16, :16, :16])
    (low / "ts_small.nii.gz").unlink()
    with pytest.raises(DatasetError, match="ts_small"):
        predictor.predict_from_files(str(IMAGES), str(tmp_path / "y"), folder_with_segs_from_prev_stage=str(low),
                                     **SEQUENTIAL)
    assert not (tmp_path / "y").exists()


def test_2d_configuration_on_3d_images(model_dir, tmp_path):
    folder = make_variant_model(model_dir, "2d_small", {"inherits_from": "2d"}, in_channels=1)
    predictor = make_predictor(folder)
    assert predictor.allowed_mirroring_axes == (0, 1)
    predictor.predict_from_files(str(IMAGES), str(tmp_path), save_probabilities=True, **SEQUENTIAL)
    for case in CASES:
        image = sitk.ReadImage(str(IMAGES / f"{case}_0000.nii.gz"))
        seg = sitk.ReadImage(str(tmp_path / f"{case}.nii.gz"))
        assert seg.GetSize() == image.GetSize()
        with np.load(tmp_path / f"{case}.npz") as npz:
            assert npz["probabilities"].shape == (3, *sitk.GetArrayFromImage(image).shape)
            np.testing.assert_allclose(npz["probabilities"].sum(0), 1, atol=1e-5)


def test_png_dataset_end_to_end(tmp_path):
    """2-D natural images: NaturalImage2DIO in and out, the fake 999 spacing, a 2-D network."""
    from nnunet.demo.synthetic import make_dataset
    from tests.helpers import FIXTURES

    raw = make_dataset(tmp_path / "raw", 7, "Png", "2d_png", num_cases=2, shape=(44, 52))
    model = tmp_path / "png_model"
    (model / "fold_0").mkdir(parents=True)
    shutil.copy(FIXTURES / "preprocessing" / "png_plans.json", model / "plans.json")
    shutil.copy(raw / "dataset.json", model / "dataset.json")
    plans = json.loads((model / "plans.json").read_text())
    arch = plans["configurations"]["2d"]["architecture"]
    arch["arch_kwargs"]["features_per_stage"] = [4, 8, 16, 32]  # small and fast; the plans' layout otherwise
    (model / "plans.json").write_text(json.dumps(plans))
    torch.manual_seed(0)
    from nnunet.planning.plans import Plans

    network = build_network_for_configuration(Plans(plans).configuration("2d"), 1, 3, enable_deep_supervision=False)
    torch.save({"network_weights": network.state_dict(), "trainer_name": "nnUNetTrainer",
                "init_args": {"configuration": "2d"}, "inference_allowed_mirroring_axes": (0, 1)},
               model / "fold_0" / "checkpoint_final.pth")
    out = tmp_path / "out"
    make_predictor(model).predict_from_files(str(raw / "imagesTr"), str(out), save_probabilities=True, **SEQUENTIAL)
    from skimage import io as skio

    for case in ("case_000", "case_001"):
        image = skio.imread(raw / "imagesTr" / f"{case}_0000.png")
        seg = skio.imread(out / f"{case}.png")
        assert seg.shape == image.shape and seg.dtype == np.uint8 and seg.max() <= 2
        with np.load(out / f"{case}.npz") as npz:
            assert npz["probabilities"].shape == (3, 1, *image.shape)
            np.testing.assert_array_equal(npz["probabilities"].argmax(0)[0], seg)
