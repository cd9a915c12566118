"""Bounded-memory prediction: slab-wise sliding window and export agree with the in-memory path."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet.inference.export import resample_logits
from nnunet.inference.slab_export import ProbabilityFile, SlabResampler
from nnunet.inference.engine import predict_slabs
from nnunet.inference.tiling import tile_rows
from nnunet.planning.plans import Plans
from tests.inference.helpers import MODEL, add_fold, make_predictor, make_variant_model

SEQUENTIAL = {"num_processes_preprocessing": 0, "num_processes_segmentation_export": 0}
PLANS = Plans.load(MODEL / "plans.json")  # transpose_forward [1, 0, 2]
CONFIG = PLANS.configuration("3d_fullres")
TINY_BUDGET_GB = 1e-6  # below any case: forces the slab path with one row per slab


def _slab_logits(predictor, image):
    context = predictor.prediction_context()
    slabs = list(predict_slabs(context.slab_runners(), image, context.window))
    starts = [s for s, _ in slabs]
    assert starts == sorted(starts) and starts[0] == 0
    return torch.from_numpy(np.concatenate([rows for _, rows in slabs], axis=1)), len(slabs)


@pytest.mark.parametrize("shape", [(1, 34, 18, 21), (1, 37, 12, 20)])  # the second is padded on two axes
def test_slab_logits_are_bit_identical_to_in_memory_logits_with_two_folds(model_dir, shape):
    add_fold(model_dir, 1)
    predictor = make_predictor(model_dir, (0, 1))
    image = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    in_memory = predictor.predict_logits_from_preprocessed_data(image.copy())
    slabs, count = _slab_logits(predictor, image)
    assert count > 2
    assert slabs.dtype == in_memory.dtype == torch.float16
    assert torch.equal(slabs, in_memory)


def test_slab_logits_2d_configuration_one_slice_per_row(model_dir):
    folder = make_variant_model(model_dir, "2d_small", {"inherits_from": "2d"}, in_channels=1)
    predictor = make_predictor(folder)
    image = np.random.default_rng(1).normal(0, 1, (1, 5, 40, 22)).astype(np.float32)
    assert len(tile_rows(image.shape[1:], predictor.configuration.patch_size, 0.5)) == 5
    slabs, count = _slab_logits(predictor, image)
    assert count == 5
    assert torch.equal(slabs, predictor.predict_logits_from_preprocessed_data(image.copy()))


@pytest.mark.parametrize("spacing, shape", [
    ((2.0, 0.7, 1.3), (10, 12, 9)),   # isotropic enough: linear in 3-D
    ((0.5, 0.5, 3.6), (10, 12, 9)),   # separate z on an in-plane axis
    ((0.5, 3.6, 0.5), (17, 5, 9)),    # separate z on the slab axis (transposed axis 0)
    ((0.6, 0.6, 0.6), (20, 20, 20)),  # upsampling on every axis
])
@pytest.mark.parametrize("chunk, max_rows", [(1, 1), (3, 2), (7, 100)])
def test_slab_resampler_equals_whole_volume_resampling(spacing, shape, chunk, max_rows):
    logits = np.random.default_rng(2).normal(0, 2, (3, *shape)).astype(np.float16)
    transposed = [spacing[i] for i in PLANS.transpose_forward]
    target = [int(round(c / o * s)) for c, o, s in zip(CONFIG.spacing, transposed, shape)]
    properties = {"spacing": list(spacing), "shape_after_cropping_and_before_resampling": target}
    whole = resample_logits(logits, properties, PLANS, CONFIG)
    resampler = SlabResampler.for_case(shape, properties, PLANS, CONFIG)
    pieces = []
    for start in range(0, shape[0], chunk):
        for first, rows in resampler.push(logits[:, start:start + chunk], max_rows):
            assert first == sum(p.shape[1] for p in pieces) and rows.shape[1] <= max_rows
            pieces.append(rows)
    slabbed = np.concatenate(pieces, axis=1)
    assert slabbed.dtype == whole.dtype == np.float16
    np.testing.assert_array_equal(slabbed, whole)


def test_unsupported_resampling_is_reported():
    plans = json.loads((MODEL / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["resampling_fn_probabilities_kwargs"]["order"] = 3
    config = Plans(plans).configuration("3d_fullres")
    properties = {"spacing": [2.0, 2.0, 2.0], "shape_after_cropping_and_before_resampling": [20, 20, 20]}
    assert SlabResampler.for_case((10, 10, 10), properties, Plans(plans), config) is None


def _images(folder, specs):
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name, (size, spacing) in specs.items():
        volume = rng.normal(0, 1, size[::-1]).astype(np.float32)
        volume[2:-2, 3:-3, 2:-2] += 2.5 * (rng.random(tuple(s - w for s, w in zip(size[::-1], (4, 6, 4)))) > 0.6)
        volume[:, :2] = 0  # a zero border: cropping to the non-zero region must be undone
        image = sitk.GetImageFromArray(volume)
        image.SetSpacing(spacing)
        image.SetOrigin((3.0, -2.0, 1.0))
        sitk.WriteImage(image, str(folder / f"{name}_0000.nii.gz"))
    return folder


CASES = {"regular": ((30, 26, 33), (1.0, 1.0, 1.0)),
         "aniso_inplane": ((28, 24, 9), (0.9, 0.9, 3.5)),     # separate z on transposed axis 1
         "aniso_slab": ((24, 10, 26), (1.0, 3.6, 1.1)),       # separate z on transposed axis 0
         "fine": ((36, 30, 28), (0.7, 0.8, 0.75))}            # the network runs coarser: export upsamples


def _read(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _compare_outputs(a, b, names, regions=False):
    for name in names:
        np.testing.assert_array_equal(_read(a / f"{name}.nii.gz"), _read(b / f"{name}.nii.gz"))
        image_a, image_b = sitk.ReadImage(str(a / f"{name}.nii.gz")), sitk.ReadImage(str(b / f"{name}.nii.gz"))
        assert image_a.GetSpacing() == image_b.GetSpacing() and image_a.GetOrigin() == image_b.GetOrigin()
        with np.load(a / f"{name}.npz") as npz_a, np.load(b / f"{name}.npz") as npz_b:
            pa, pb = npz_a["probabilities"], npz_b["probabilities"]
        assert pa.dtype == pb.dtype == np.float32 and pa.shape == pb.shape
        np.testing.assert_array_equal(pa, pb)
        if not regions:
            assert (pa[0] == 1).sum() > 0  # background outside the crop


@pytest.mark.slow
def test_tiny_budget_predicts_in_several_slabs_with_identical_files(tmp_path, model_dir, caplog):
    add_fold(model_dir, 1)
    images = _images(tmp_path / "in", CASES)
    make_predictor(model_dir, (0, 1)).predict_from_files(str(images), str(tmp_path / "ram"),
                                                         save_probabilities=True, **SEQUENTIAL)
    slab_predictor = make_predictor(model_dir, (0, 1), max_ram_gb=TINY_BUDGET_GB, verbose=True)
    with caplog.at_level(logging.INFO, logger="nnunet.inference.cases"):
        slab_predictor.predict_from_files(str(images), str(tmp_path / "slabs"), save_probabilities=True,
                                          **SEQUENTIAL)
    slab_lines = [r.getMessage() for r in caplog.records if "slabs" in r.getMessage() and " s, " in r.getMessage()]
    assert len(slab_lines) == len(CASES)
    assert all(int(line.rsplit(", ", 1)[1].split()[0]) > 5 for line in slab_lines), slab_lines
    _compare_outputs(tmp_path / "ram", tmp_path / "slabs", CASES)
    assert not (tmp_path / "slabs" / ".nnunet_partial").exists()
    # returned arrays (no output files) agree too
    reader_image = [str(images / "aniso_slab_0000.nii.gz")]
    seg, probabilities = slab_predictor.predict_from_files([reader_image], None, save_probabilities=True,
                                                           **SEQUENTIAL)[0]
    np.testing.assert_array_equal(seg, _read(tmp_path / "ram" / "aniso_slab.nii.gz"))
    with np.load(tmp_path / "ram" / "aniso_slab.npz") as npz:
        np.testing.assert_array_equal(probabilities, npz["probabilities"])


@pytest.mark.slow
def test_regions_slab_path_matches_in_memory(tmp_path, model_dir):
    dataset = json.loads((model_dir / "dataset.json").read_text())
    dataset["labels"] = {"background": 0, "whole": [1, 2], "core": 2}
    dataset["regions_class_order"] = [1, 2]
    (model_dir / "dataset.json").write_text(json.dumps(dataset))
    checkpoint_file = model_dir / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(checkpoint_file, map_location="cpu", weights_only=False)
    for key in [k for k in checkpoint["network_weights"] if k.startswith("decoder.seg_layers")]:
        value = checkpoint["network_weights"][key]
        checkpoint["network_weights"][key] = value[:2] * 3  # two region heads, sharper sigmoids
    torch.save(checkpoint, checkpoint_file)
    images = _images(tmp_path / "in", {k: CASES[k] for k in ("regular", "aniso_slab")})
    make_predictor(model_dir).predict_from_files(str(images), str(tmp_path / "ram"), save_probabilities=True,
                                                 **SEQUENTIAL)
    make_predictor(model_dir, max_ram_gb=TINY_BUDGET_GB).predict_from_files(
        str(images), str(tmp_path / "slabs"), save_probabilities=True, **SEQUENTIAL)
    _compare_outputs(tmp_path / "ram", tmp_path / "slabs", ("regular", "aniso_slab"), regions=True)
    assert len(np.unique(_read(tmp_path / "ram" / "regular.nii.gz"))) == 3  # both regions and background occur


def test_probability_file_writes_the_npz_savez_compressed_would(tmp_path):
    rng = np.random.default_rng(4)
    full = (5, 7, 6)  # network (transposed) axis order
    values = rng.random((3, *full)).astype(np.float32)
    raw = ProbabilityFile(tmp_path / "p.raw", 3, full, PLANS.transpose_forward, background_channel=True)
    inside = (slice(1, 6), slice(2, 5))
    for row in range(1, 4):
        raw.write(slice(row, row + 1), values[:, row:row + 1, inside[0], inside[1]], inside)
    raw.save_npz(tmp_path / "chunked.npz", chunk_bytes=100)
    expected = np.zeros_like(values)
    expected[0] = 1
    expected[:, 1:4, 1:6, 2:5] = values[:, 1:4, 1:6, 2:5]
    expected = expected.transpose([0] + [a + 1 for a in PLANS.transpose_backward])
    with np.load(tmp_path / "chunked.npz") as npz:
        assert npz.files == ["probabilities"]
        np.testing.assert_array_equal(npz["probabilities"], expected)
    raw.remove()
    assert not (tmp_path / "p.raw").exists()


def test_cli_max_ram_gb_option(tmp_path, capsys):
    from nnunet.cli.predict import predict_from_modelfolder_main
    from tests.inference.helpers import IMAGES

    base = ["-i", str(IMAGES), "-m", str(MODEL), "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0",
            "--disable_progress_bar", "--disable_tta"]
    assert predict_from_modelfolder_main(base + ["-o", str(tmp_path / "a"), "--max_ram_gb", "0"]) == 1
    assert "--max_ram_gb must be a positive" in capsys.readouterr().err
    assert predict_from_modelfolder_main(base + ["-o", str(tmp_path / "ram")]) == 0
    assert predict_from_modelfolder_main(base + ["-o", str(tmp_path / "slabs"), "--max_ram_gb", "1e-6"]) == 0
    for case in ("ts_aniso", "ts_regular", "ts_small"):
        np.testing.assert_array_equal(_read(tmp_path / "ram" / f"{case}.nii.gz"),
                                      _read(tmp_path / "slabs" / f"{case}.nii.gz"))
    shutil.rmtree(tmp_path / "ram")
