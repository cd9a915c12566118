"""Small synthetic datasets in the nnU-Net raw format, for the demo, the tests and the benchmarks.

Each case is a volume with a zero border (so cropping to nonzero does something), a noisy body and one or two
ellipsoid structures that carry labels 1 and 2. Everything is seeded, so a dataset is the same on every machine.

Label declarations may use regions (``"whole": [1, 2]`` plus ``regions_class_order``) and an ``"ignore"`` label; with
``annotated_slice_step`` the label files become sparse annotations: only every n-th slice along the first array axis
keeps its labels and all other voxels carry the ignore label (the images stay the same).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunet.io.dataset_json import generate_dataset_json


@dataclass
class SyntheticSpec:
    """What to generate. ``shape`` is in array order (z, y, x) for 3-D and (y, x) for 2-D."""

    num_cases: int = 6
    shape: tuple[int, ...] = (32, 32, 32)
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0)
    channel_names: dict[str, str] = field(default_factory=lambda: {"0": "MRI"})
    labels: dict[str, int | list[int]] = field(default_factory=lambda: {"background": 0, "blob": 1, "core": 2})
    regions_class_order: tuple[int, ...] | None = None  # required when a label value is a list (a region)
    annotated_slice_step: int = 0  # > 0: keep labels on every n-th slice of axis 0, the rest becomes "ignore"
    file_ending: str = ".nii.gz"
    shape_jitter: int = 2
    intensity_offset: float = 100.0
    spacing_jitter: float = 0.0  # relative per-case spacing variation, so that cases need resampling
    seed: int = 0


PRESETS: dict[str, SyntheticSpec] = {
    "3d_iso": SyntheticSpec(),
    "3d_aniso_ct": SyntheticSpec(shape=(12, 40, 40), spacing=(4.0, 0.9, 0.9), channel_names={"0": "CT"},
                                 intensity_offset=-300.0),
    "multichannel": SyntheticSpec(shape=(24, 28, 32), spacing=(1.5, 1.0, 1.0), channel_names={"0": "T1", "1": "T2"}),
    "2d_png": SyntheticSpec(shape=(64, 64), spacing=(1.0, 1.0), file_ending=".png", intensity_offset=60.0),
    # region-based training: "whole" = labels 1 and 2, "core" = label 2; painting order whole, then core
    "3d_regions": SyntheticSpec(labels={"background": 0, "whole": [1, 2], "core": 2}, regions_class_order=(1, 2)),
    # sparse annotation: 3 of every 4 axial slices are "ignore" (label 3)
    "3d_sparse": SyntheticSpec(labels={"background": 0, "blob": 1, "core": 2, "ignore": 3}, annotated_slice_step=4),
    "3d_regions_sparse": SyntheticSpec(labels={"background": 0, "whole": [1, 2], "core": 2, "ignore": 3},
                                       regions_class_order=(1, 2), annotated_slice_step=4),
}


def sparsify(seg: np.ndarray, ignore_label: int, step: int, offset: int = 0) -> np.ndarray:
    """Keep the labels of every ``step``-th slice along axis 0 (starting at ``offset``); all other voxels become
    ``ignore_label``."""
    out = np.full_like(seg, ignore_label)
    out[offset::step] = seg[offset::step]
    return out


def _case(rng: np.random.Generator, shape: tuple[int, ...], n_channels: int, offset: float,
          integer_intensities: bool) -> tuple[list[np.ndarray], np.ndarray]:
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij"))
    margin = [max(1, s // 8) for s in shape]
    body = np.zeros(shape, dtype=bool)
    body[tuple(slice(m, s - m) for m, s in zip(margin, shape))] = True
    seg = np.zeros(shape, dtype=np.uint8)
    center = np.array([rng.uniform(0.4 * s, 0.6 * s) for s in shape])
    radii = np.array([rng.uniform(0.15 * s, 0.25 * s) for s in shape])
    dist = np.sqrt((((grid - center.reshape(-1, *[1] * len(shape))) / radii.reshape(-1, *[1] * len(shape))) ** 2).sum(0))
    seg[(dist < 1) & body] = 1
    seg[(dist < 0.5) & body] = 2
    images = []
    for c in range(n_channels):
        img = offset * (1 + 0.3 * c) + 40.0 * seg + rng.normal(0, 10, shape)
        img[~body] = 0
        if integer_intensities:
            img = np.clip(np.round(img), 0, 255)
        images.append(img.astype(np.float32))
    return images, seg


def make_dataset(raw_root: str | os.PathLike, dataset_id: int, name: str, spec: SyntheticSpec | str = "3d_iso",
                 **overrides) -> Path:
    """Write ``Dataset{id:03d}_{name}`` into ``raw_root`` and return its folder.

    Args:
        raw_root: the nnUNet_raw folder.
        spec: a :class:`SyntheticSpec` or the name of a preset in :data:`PRESETS`.
        **overrides: fields of the spec to replace (e.g. ``num_cases=3``).
    """
    if isinstance(spec, str):
        spec = PRESETS[spec]
    spec = SyntheticSpec(**{**spec.__dict__, **overrides})
    folder = Path(raw_root) / f"Dataset{dataset_id:03d}_{name}"
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    ignore_label = spec.labels.get("ignore")
    if spec.annotated_slice_step and ignore_label is None:
        raise ValueError("annotated_slice_step needs an 'ignore' entry in the labels.")
    rng = np.random.default_rng(spec.seed)
    is_png = spec.file_ending == ".png"
    for i in range(spec.num_cases):
        shape = tuple(int(s + rng.integers(-spec.shape_jitter, spec.shape_jitter + 1)) for s in spec.shape)
        images, seg = _case(rng, shape, len(spec.channel_names), spec.intensity_offset, is_png)
        if spec.annotated_slice_step:
            # the annotated slices pass through the structure centre, so every case has labelled foreground
            step = spec.annotated_slice_step
            seg = sparsify(seg, int(ignore_label), step, offset=(shape[0] // 2) % step)
        spacing = spec.spacing
        if spec.spacing_jitter:
            spacing = tuple(round(s * (1 + rng.uniform(-spec.spacing_jitter, spec.spacing_jitter)), 3)
                            for s in spec.spacing)
        case_id = f"case_{i:03d}"
        for c, img in enumerate(images):
            _write(img, folder / "imagesTr" / f"{case_id}_{c:04d}{spec.file_ending}", spacing, is_png)
        _write(seg, folder / "labelsTr" / f"{case_id}{spec.file_ending}", spacing, is_png)
    generate_dataset_json(folder, spec.channel_names, spec.labels, spec.num_cases, spec.file_ending,
                          regions_class_order=list(spec.regions_class_order) if spec.regions_class_order else None,
                          dataset_name=name, description="synthetic dataset generated by nnunet.demo.synthetic")
    return folder


def _write(arr: np.ndarray, path: Path, spacing: tuple[float, ...], is_png: bool) -> None:
    if is_png:
        from skimage import io as skio

        skio.imsave(str(path), arr.astype(np.uint8), check_contrast=False)
        return
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing([float(s) for s in spacing[::-1]])
    sitk.WriteImage(img, str(path), True)
