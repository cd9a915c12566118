"""Fabricated trained-model folders (validation segmentations + probabilities per fold) for model selection."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from tests.evaluation.synthetic_cases import ORIGIN, SPACING_XYZ, case_properties

DATASET = "Dataset950_Select"
LABELS = {"background": 0, "a": 1, "b": 2}
SHAPE = (6, 10, 9)
CASES = [f"case_{i:03d}" for i in range(6)]


def _write_nii(seg: np.ndarray, path: Path) -> None:
    img = sitk.GetImageFromArray(seg.astype(np.uint8))
    img.SetSpacing(SPACING_XYZ)
    img.SetOrigin(ORIGIN)
    sitk.WriteImage(img, str(path), True)


def _reference(i: int) -> np.ndarray:
    seg = np.zeros(SHAPE, dtype=np.uint8)
    seg[1:5, 2:8, 2:7] = 1
    seg[2:4, 3:6, 3:5 + i % 2] = 2
    return seg


def make_trained_models(dirs: dict[str, Path], noise: dict[str, float], cascade: bool = False,
                        folds: tuple[int, ...] = (0, 1)) -> dict[str, Path]:
    """Write plans/gt into nnUNet_preprocessed and one model folder per configuration in ``noise``.

    A configuration's validation probabilities are the one-hot reference plus Gaussian noise of the given
    strength, so a smaller noise gives a better model. Cases are split round-robin over ``folds``.
    """
    pre = dirs["preprocessed"] / DATASET
    (pre / "gt_segmentations").mkdir(parents=True, exist_ok=True)
    configurations = {c: {"data_identifier": f"nnUNetPlans_{c}"} for c in noise}
    if cascade:
        configurations["3d_lowres"] = {"data_identifier": "nnUNetPlans_3d_lowres", "next_stage": "3d_cascade_fullres"}
        configurations["3d_cascade_fullres"] = {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}
    plans = {"dataset_name": DATASET, "plans_name": "nnUNetPlans", "image_reader_writer": "SimpleITKIO",
             "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2], "configurations": configurations}
    dataset_json = {"channel_names": {"0": "MRI"}, "labels": LABELS, "numTraining": len(CASES),
                    "file_ending": ".nii.gz"}
    (pre / "nnUNetPlans.json").write_text(json.dumps(plans, indent=4))
    (pre / "dataset.json").write_text(json.dumps(dataset_json, indent=4))
    for i, case in enumerate(CASES):
        _write_nii(_reference(i), pre / "gt_segmentations" / f"{case}.nii.gz")
    rng = np.random.default_rng(5)
    folders = {}
    for configuration, strength in noise.items():
        model = dirs["results"] / DATASET / f"nnUNetTrainer__nnUNetPlans__{configuration}"
        folders[configuration] = model
        model.mkdir(parents=True, exist_ok=True)
        (model / "plans.json").write_text(json.dumps(plans, indent=4))
        (model / "dataset.json").write_text(json.dumps(dataset_json, indent=4))
        for i, case in enumerate(CASES):
            validation = model / f"fold_{folds[i % len(folds)]}" / "validation"
            validation.mkdir(parents=True, exist_ok=True)
            onehot = np.stack([_reference(i) == v for v in range(3)]).astype(np.float32)
            logits = onehot * 2 + rng.normal(0, strength, onehot.shape).astype(np.float32)
            e = np.exp(logits - logits.max(0, keepdims=True))
            probs = (e / e.sum(0, keepdims=True)).astype(np.float32)
            np.savez_compressed(validation / f"{case}.npz", probabilities=probs)
            with open(validation / f"{case}.pkl", "wb") as f:
                pickle.dump(case_properties(SHAPE), f)
            _write_nii(probs.argmax(0), validation / f"{case}.nii.gz")
    return folders
