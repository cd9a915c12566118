"""Small, seeded folders of reference/predicted label maps and probability files.

Shared by the evaluation, postprocessing and ensembling tests and by the scripts that regenerate the reference
fixtures (tests/fixtures/{evaluation,postprocessing,ensembling}/make_fixtures.py), so both see identical data.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SPACING_XYZ = (0.8, 0.7, 1.5)
ORIGIN = (10.0, -4.0, 2.5)


def _write_nii(seg: np.ndarray, path: Path) -> None:
    img = sitk.GetImageFromArray(seg.astype(np.uint8))
    img.SetSpacing(SPACING_XYZ)
    img.SetOrigin(ORIGIN)
    sitk.WriteImage(img, str(path), True)


def _write_png(seg: np.ndarray, path: Path) -> None:
    from skimage.io import imsave

    imsave(str(path), seg.astype(np.uint8), check_contrast=False)


def _ellipsoid(shape: tuple[int, ...], center, radii) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"))
    c = np.asarray(center, dtype=np.float64).reshape(-1, *[1] * len(shape))
    r = np.asarray(radii, dtype=np.float64).reshape(-1, *[1] * len(shape))
    return (((grid - c) / r) ** 2).sum(0) < 1


def _perturb(rng: np.random.Generator, seg: np.ndarray, values: list[int], fraction: float) -> np.ndarray:
    out = np.roll(seg, shift=int(rng.integers(-1, 2)), axis=int(rng.integers(0, seg.ndim)))
    noise = rng.random(seg.shape) < fraction
    out[noise] = rng.choice(values, size=int(noise.sum()))
    return out


def _metadata(root: Path, labels: dict, file_ending: str, reader: str, regions_class_order=None) -> None:
    ds = {"channel_names": {"0": "MRI"}, "labels": labels, "numTraining": 0, "file_ending": file_ending}
    if regions_class_order is not None:
        ds["regions_class_order"] = regions_class_order
    (root / "dataset.json").write_text(json.dumps(ds, indent=4))
    plans = {"dataset_name": "Dataset900_Eval", "plans_name": "nnUNetPlans", "image_reader_writer": reader,
             "label_manager": "LabelManager", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
             "configurations": {}}
    (root / "plans.json").write_text(json.dumps(plans, indent=4))


#: evaluation datasets: name -> (labels, regions_class_order, file_ending, reader)
EVAL_DATASETS = {
    "labels": ({"background": 0, "liver": 1, "tumor": 2}, None, ".nii.gz", "SimpleITKIO"),
    "regions": ({"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": 3}, [1, 2, 3], ".nii.gz",
                "SimpleITKIO"),
    "ignore": ({"background": 0, "a": 1, "b": 2, "ignore": 3}, None, ".nii.gz", "SimpleITKIO"),
    "png": ({"background": 0, "vessel": 1}, None, ".png", "NaturalImage2DIO"),
}


def make_eval_dataset(root: str | Path, name: str) -> Path:
    """Write ``root/name/{ref,pred}/`` plus dataset.json and plans.json; return ``root/name``."""
    labels, rco, ending, reader = EVAL_DATASETS[name]
    folder = Path(root) / name
    (folder / "ref").mkdir(parents=True, exist_ok=True)
    (folder / "pred").mkdir(parents=True, exist_ok=True)
    _metadata(folder, labels, ending, reader, rco)
    rng = np.random.default_rng(sum(map(ord, name)))
    shape = (20, 24) if name == "png" else (9, 14, 12)
    write = _write_png if name == "png" else _write_nii
    for i in range(4):
        center = [s / 2 + rng.uniform(-1.5, 1.5) for s in shape]
        outer = _ellipsoid(shape, center, [s / 3 for s in shape])
        inner = _ellipsoid(shape, center, [s / 6 for s in shape])
        ref = np.zeros(shape, dtype=np.uint8)
        ref[outer] = 1
        if name != "png":
            ref[inner] = 2
        if name == "regions":
            ref[_ellipsoid(shape, center, [s / 10 for s in shape])] = 3
        values = [0, 1] if name == "png" else [0, 1, 2, 3] if name == "regions" else [0, 1, 2]
        pred = _perturb(rng, ref, values, 0.05)
        if name == "labels" and i == 2:  # tumor absent from both: NaN Dice for that case
            ref[ref == 2] = 1
            pred[pred == 2] = 1
        if name == "labels" and i == 3:  # tumor predicted but absent from the reference: Dice 0
            ref[ref == 2] = 1
        if name == "ignore":
            ref[:, 2:5] = 3  # a band of unannotated voxels
            if i == 1:
                ref[ref == 2] = 3  # the whole tumor unannotated
        write(ref, folder / "ref" / f"case_{i:03d}{ending}")
        write(pred, folder / "pred" / f"case_{i:03d}{ending}")
    return folder


# ----------------------------------------------------------------------------------------------------------------
# postprocessing: crafted cases whose right decisions are known
# ----------------------------------------------------------------------------------------------------------------

def _box(seg: np.ndarray, value: int, lo, hi) -> None:
    seg[tuple(slice(a, b) for a, b in zip(lo, hi))] = value


def _pp_case_stray_and_two_true(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Label 1: one true blob, the prediction adds a far stray blob. Label 2: two true blobs, both predicted."""
    shape = (12, 16, 16)
    ref = np.zeros(shape, dtype=np.uint8)
    _box(ref, 1, (2, 2, 2), (7, 8, 8))
    _box(ref, 2, (2, 11, 10), (6, 15, 15))        # big true component of label 2
    _box(ref, 2, (9, 2, 11), (11, 4, 14))          # small second true component of label 2
    pred = ref.copy()
    pred[2, 2, 2] = 0                               # small misses so that Dice is not 1
    pred[6, 7, 7] = 0
    _box(pred, 1, (9 - i % 2, 10, 2), (11, 12, 4))  # stray false-positive component of label 1
    return ref, pred


def _pp_case_fg(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels 1 and 2 touch (one foreground component); the prediction adds a far stray blob of label 2."""
    shape = (12, 16, 16)
    ref = np.zeros(shape, dtype=np.uint8)
    _box(ref, 1, (2, 2, 2), (8, 9, 9))
    _box(ref, 2, (3, 3, 3), (6, 6, 6 + i % 2))
    pred = ref.copy()
    pred[7, 8, 8] = 0
    _box(pred, 2, (9, 12, 12), (11, 15, 14))       # stray
    if i == 2:
        pred[pred == 2] = 1                         # label 2 not predicted at all in this case (empty class)
    return ref, pred


def _pp_case_regions(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Regions whole=(1,2,3), core=(2,3), enhancing=3; a stray enhancing blob outside the tumour."""
    shape = (12, 16, 16)
    ref = np.zeros(shape, dtype=np.uint8)
    _box(ref, 1, (1, 1, 1), (9, 10, 10))
    _box(ref, 2, (3, 3, 3), (7, 8, 8))
    _box(ref, 3, (4, 4, 4), (6, 6, 6 + i % 2))
    pred = ref.copy()
    pred[1, 1, 1] = 0
    _box(pred, 3, (10, 13, 13), (12, 15, 16))      # stray enhancing component
    if i == 1:
        _box(pred, 1, (10, 1, 13), (12, 3, 15))    # stray edema component too
    return ref, pred


#: postprocessing datasets: name -> (labels, regions_class_order, case builder, number of cases)
PP_DATASETS = {
    "stray_and_two_true": ({"background": 0, "organ": 1, "vessel": 2}, None, _pp_case_stray_and_two_true, 3),
    "fg": ({"background": 0, "organ": 1, "lesion": 2}, None, _pp_case_fg, 3),
    "regions": ({"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": 3}, [1, 2, 3],
                _pp_case_regions, 3),
    # label 3 never occurs: its mean Dice is NaN, and so is the foreground mean
    "empty_class": ({"background": 0, "organ": 1, "vessel": 2, "never": 3}, None, _pp_case_stray_and_two_true, 2),
}


def make_pp_dataset(root: str | Path, name: str) -> Path:
    """Write ``root/name/{ref,pred}/`` (pred also holds dataset.json and plans.json); return ``root/name``."""
    labels, rco, builder, n = PP_DATASETS[name]
    folder = Path(root) / name
    (folder / "ref").mkdir(parents=True, exist_ok=True)
    (folder / "pred").mkdir(parents=True, exist_ok=True)
    _metadata(folder / "pred", labels, ".nii.gz", "SimpleITKIO", rco)
    for i in range(n):
        ref, pred = builder(i)
        _write_nii(ref, folder / "ref" / f"case_{i:03d}.nii.gz")
        _write_nii(pred, folder / "pred" / f"case_{i:03d}.nii.gz")
    return folder


# ----------------------------------------------------------------------------------------------------------------
# ensembling: probability files as the predictor writes them with --save_probabilities
# ----------------------------------------------------------------------------------------------------------------

#: ensembling datasets: name -> (labels, regions_class_order)
ENSEMBLE_DATASETS = {
    "labels": ({"background": 0, "a": 1, "b": 2}, None),
    "regions": ({"background": 0, "whole": [1, 2], "core": 2}, [1, 2]),
}


def case_properties(shape: tuple[int, ...]) -> dict:
    return {
        "sitk_stuff": {"spacing": SPACING_XYZ, "origin": ORIGIN, "direction": (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)},
        "spacing": list(SPACING_XYZ[::-1]),
        "shape_before_cropping": shape,
        "bbox_used_for_cropping": [[0, s] for s in shape],
        "shape_after_cropping_and_before_resampling": shape,
    }


def make_ensemble_inputs(root: str | Path, name: str, num_folders: int = 2, num_cases: int = 3) -> list[Path]:
    """Write ``root/name/model_k/`` folders with ``case_i.npz`` (``probabilities``, float16 in the last folder)
    and ``case_i.pkl``; the first folder also gets dataset.json and plans.json. Returns the folders."""
    labels, rco = ENSEMBLE_DATASETS[name]
    rng = np.random.default_rng(7 + len(name))
    shape = (5, 7, 6)
    n_channels = 2 if rco else 3
    folders = []
    for k in range(num_folders):
        folder = Path(root) / name / f"model_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        folders.append(folder)
        if k == 0:
            _metadata(folder, labels, ".nii.gz", "SimpleITKIO", rco)
        for i in range(num_cases):
            logits = rng.normal(0, 2, (n_channels, *shape)).astype(np.float32)
            if rco:
                probs = 1 / (1 + np.exp(-logits))
            else:
                e = np.exp(logits - logits.max(0, keepdims=True))
                probs = e / e.sum(0, keepdims=True)
            dtype = np.float16 if k == num_folders - 1 else np.float32
            np.savez_compressed(folder / f"case_{i:03d}.npz", probabilities=probs.astype(dtype))
            with open(folder / f"case_{i:03d}.pkl", "wb") as f:
                pickle.dump(case_properties(shape), f)
    return folders
