"""Region-based training and the ignore label from raw data to summary.json, through the console scripts.

Each test would fail if regions or the ignore label were handled as plain labels: the number of network
outputs, the class-location keys, the conversion of sigmoid outputs back to a label map through
``regions_class_order``, the absence of the ignore label in predictions and the exclusion of ignored voxels
from the evaluation.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nnunet.evaluation.metrics import parse_label_key
from nnunet.preprocessing.storage import load_case
from tests.regions.pipeline import KINDS, read

REGIONS = [(1, 2), 2]
ANNOTATED = (-1, 0, 1, 2)
IGNORE = 3


def has_regions(kind: str) -> bool:
    return "regions" in kind


def has_ignore(kind: str) -> bool:
    return "sparse" in kind


def region_mask(seg: np.ndarray, region) -> np.ndarray:
    return np.isin(seg, region if isinstance(region, tuple) else (region,))


@pytest.fixture(params=list(KINDS))
def pipe(request, pipelines):
    return pipelines(request.param)


def test_raw_dataset_declares_regions_and_ignore(pipe):
    ds = json.loads((pipe.raw / "dataset.json").read_text())
    if has_regions(pipe.kind):
        assert ds["labels"]["whole"] == [1, 2] and ds["labels"]["core"] == 2
        assert ds["regions_class_order"] == [1, 2]
        assert list(ds["labels"])[:3] == ["background", "whole", "core"]  # declaration order kept
    if has_ignore(pipe.kind):
        assert ds["labels"]["ignore"] == IGNORE
        for f in sorted((pipe.raw / "labelsTr").iterdir()):
            seg = read(f)
            assert (seg == IGNORE).mean() > 0.7  # sparse: most voxels are unannotated
            assert np.isin(seg, (1, 2)).any()  # but the annotated slices hit the structure


def test_class_locations_are_keyed_by_regions_and_annotated_voxels(pipe):
    folder = pipe.preprocessed / "nnUNetPlans_3d_fullres"
    expected = (list(REGIONS) if has_regions(pipe.kind) else [1, 2]) + ([ANNOTATED] if has_ignore(pipe.kind) else [])
    for i in range(5):
        props = pickle.loads((folder / f"case_{i:03d}.pkl").read_bytes())
        locations = props["class_locations"]
        assert list(locations) == expected
        seg = np.asarray(load_case(folder, f"case_{i:03d}")[1][:])
        for key, coords in locations.items():
            assert len(coords) > 0, key
            values = seg[tuple(np.asarray(coords).T)]
            if key == ANNOTATED:
                assert not (values == IGNORE).any() and (values == 0).any()
            else:
                assert region_mask(values, key).all()


def test_network_has_one_output_per_region_and_no_ignore_output(pipe):
    ckpt = torch.load(pipe.model / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    seg_layers = sorted(k for k in ckpt["network_weights"] if "seg_layers" in k and k.endswith("weight"))
    heads = {ckpt["network_weights"][k].shape[0] for k in seg_layers}
    # regions: one sigmoid output per region (no background channel); labels: background + 2 (never the ignore)
    assert heads == ({2} if has_regions(pipe.kind) else {3})
    assert pipe.label_manager.num_segmentation_heads == heads.pop()
    pseudo_dice = ckpt["logging"]["dice_per_class_or_region"][-1]
    assert len(pseudo_dice) == 2  # regions (1, 2) and 2, or labels 1 and 2 (background dropped)


def test_predictions_are_label_maps_painted_in_regions_class_order(pipe):
    names = sorted(f.name for f in pipe.predictions.glob("*.nii.gz"))
    assert names == ["case_000.nii.gz", "case_001.nii.gz"]
    for name in names:
        seg = read(pipe.predictions / name)
        ref = read(pipe.test_labels / name)
        assert seg.shape == ref.shape
        assert set(np.unique(seg)) <= {0, 1, 2}  # the ignore label is never predicted
        probs = np.load(pipe.predictions / name.replace(".nii.gz", ".npz"))["probabilities"]
        corner = probs[(slice(None), 0, 0, 0)]  # outside the nonzero crop
        if has_regions(pipe.kind):
            assert probs.shape == (2, *seg.shape)
            assert probs.min() >= 0 and probs.max() <= 1
            assert not np.allclose(probs.sum(0), 1)  # independent sigmoids, not a softmax
            assert (corner == 0).all()
            painted = np.zeros(seg.shape, dtype=np.uint8)
            for channel, label in enumerate([1, 2]):
                painted[probs[channel] > 0.5] = label
            np.testing.assert_array_equal(seg, painted)
        else:
            assert probs.shape == (3, *seg.shape)
            np.testing.assert_allclose(probs.sum(0), 1, atol=1e-4)
            np.testing.assert_array_equal(corner, [1, 0, 0])
            np.testing.assert_array_equal(seg, probs.argmax(0))


def test_summaries_report_regions(pipe):
    keys = {"(1, 2)", "2"} if has_regions(pipe.kind) else {"1", "2"}
    for summary_file in (pipe.predictions / "summary.json", pipe.model / "fold_0" / "validation" / "summary.json"):
        summary = json.loads(summary_file.read_text())
        assert set(summary["mean"]) == keys
        for case in summary["metric_per_case"]:
            assert set(case["metrics"]) == keys


def test_region_metrics_are_computed_on_region_masks(pipe):
    """Dice of the region (1, 2) is the Dice of the union of labels 1 and 2, not of label 1 alone."""
    summary = json.loads((pipe.predictions / "summary.json").read_text())
    for case in summary["metric_per_case"]:
        ref = read(pipe.test_labels / case["reference_file"].rsplit("/", 1)[-1])
        pred = read(case["prediction_file"])
        for key, metrics in case["metrics"].items():
            region = parse_label_key(key)
            r, p = region_mask(ref, region), region_mask(pred, region)
            assert metrics["TP"] == int((r & p).sum()) and metrics["FP"] == int((~r & p).sum())
            assert metrics["FN"] == int((r & ~p).sum()) and metrics["n_ref"] == int(r.sum())


def test_evaluation_excludes_ignored_voxels(pipelines):
    for kind in ("3d_sparse", "3d_regions_sparse"):
        pipe = pipelines(kind)
        dense = json.loads((pipe.predictions / "summary.json").read_text())
        sparse = json.loads((pipe.predictions / "summary_sparse.json").read_text())
        for case_dense, case in zip(dense["metric_per_case"], sparse["metric_per_case"]):
            name = case["reference_file"].rsplit("/", 1)[-1]
            ref = read(pipe.test_labels_sparse / name)
            pred = read(pipe.predictions / name)
            keep = ref != IGNORE
            assert keep.mean() < 0.3
            for key, m in case["metrics"].items():
                region = parse_label_key(key)
                r, p = region_mask(ref, region) & keep, region_mask(pred, region) & keep
                assert m["TP"] + m["FP"] + m["FN"] + m["TN"] == int(keep.sum())  # only annotated voxels count
                assert (m["TP"], m["FP"], m["FN"]) == (int((r & p).sum()), int((~r & p).sum()), int((r & ~p).sum()))
                dense_m = case_dense["metrics"][key]
                assert dense_m["TP"] + dense_m["FP"] + dense_m["FN"] + dense_m["TN"] == ref.size


def test_final_validation_predictions_are_label_maps(pipe):
    """The training's final validation exports from logits (no probabilities): same label semantics."""
    files = sorted((pipe.model / "fold_0" / "validation").glob("*.nii.gz"))
    assert len(files) == 1
    seg = read(files[0])
    assert set(np.unique(seg)) <= {0, 1, 2} and (seg > 0).any()


def test_ensembling_averages_sigmoids_then_paints(pipe, tmp_path):
    """Ensemble the predictions with a copy whose two region channels are swapped: both averaged channels are
    equal, so painting in regions_class_order gives 2 wherever they exceed 0.5 (an argmax would give 0 or 1)."""
    import shutil

    from nnunet.cli.ensemble import ensemble_main

    swapped = tmp_path / "swapped"
    shutil.copytree(pipe.predictions, swapped)
    for npz in swapped.glob("*.npz"):
        probs = np.load(npz)["probabilities"]
        order = [1, 0] if has_regions(pipe.kind) else [0, 2, 1]  # swap the two regions / the two labels
        np.savez_compressed(npz, probabilities=probs[order])
    out = tmp_path / "ensemble"
    assert ensemble_main(["-i", str(pipe.predictions), str(swapped), "-o", str(out), "-np", "1", "--no_pbar"]) == 0
    for npz in sorted(pipe.predictions.glob("*.npz")):
        probs = np.load(npz)["probabilities"]
        seg = read(out / npz.name.replace(".npz", ".nii.gz"))
        if has_regions(pipe.kind):
            mean = (probs[0] + probs[1]) / 2
            np.testing.assert_array_equal(seg, np.where(mean > 0.5, 2, 0))
        else:
            mean = np.stack([probs[0], (probs[1] + probs[2]) / 2, (probs[1] + probs[2]) / 2])
            np.testing.assert_array_equal(seg, mean.argmax(0))


@pytest.mark.parametrize("kind", ["3d_regions", "3d_regions_sparse"])
def test_find_best_configuration_and_its_postprocessing_on_regions(pipelines, monkeypatch, kind, tmp_path):
    import shlex

    from nnunet.cli.ensemble import find_best_configuration_main
    from nnunet.cli.postprocess import apply_postprocessing_main
    from nnunet.postprocessing.pp_file import load_postprocessing

    pipe = pipelines(kind)
    pipe.set_env(monkeypatch)
    assert find_best_configuration_main([str(pipe.dataset_id), "-c", "3d_fullres", "-tr", "RegionsTinyTrainer",
                                         "-f", "0", "-np", "1"]) == 0
    info = json.loads((pipe.root / "results" / pipe.dataset_name / "inference_information.json").read_text())
    best = info["best_model_or_ensemble"]
    assert [m["trainer"] for m in best["selected_model_or_models"]] == ["RegionsTinyTrainer"]
    # the cross-validation summary it ranked on is keyed by regions, and ignored voxels played no part
    crossval = json.loads((Path(best["postprocessing_file"]).parent / "summary.json").read_text())
    assert {parse_label_key(k) for k in crossval["mean"]} == set(REGIONS)
    functions, kwargs = load_postprocessing(best["postprocessing_file"])
    for kw in kwargs:  # any component filtering chosen acts on foreground labels/regions, never the ignore label
        chosen = kw["labels_or_regions"]
        assert set(np.ravel(chosen).tolist()) <= {1, 2}

    # the printed postprocessing command, applied to the test predictions, still gives label maps
    text = (pipe.root / "results" / pipe.dataset_name / "inference_instructions.txt").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("nnUNetv2_apply_postprocessing"))
    argv = [str(pipe.predictions) if a == "OUTPUT_FOLDER" else str(tmp_path / "pp") if a == "OUTPUT_FOLDER_PP"
            else a for a in shlex.split(line)[1:]]
    assert apply_postprocessing_main(argv) == 0
    for case in sorted(pipe.predictions.glob("*.nii.gz")):
        assert set(np.unique(read(tmp_path / "pp" / case.name))) <= {0, 1, 2}
