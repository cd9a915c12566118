"""A 3-D MRI-like raw dataset with a chosen number of foreground labels, for the data pipeline benchmark.

    python bench/synthetic_labels.py --out /tmp/bench_dl/raw --labels 30 [--cases 6] [--size 176]

Each case is a 1 mm isotropic volume of ``--size``^3 voxels: a smooth noisy "head" ellipsoid holding ``--labels``
compact ellipsoidal structures of different sizes (like the organs of TotalSegmentator), each with its own mean
intensity. The dataset id is 900 + labels (``Dataset930_SynthLabels30`` for 30 labels), in nnU-Net's raw format.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter


def dataset_name(labels: int) -> str:
    return f"Dataset{900 + labels:03d}_SynthLabels{labels}"


def make_case(rng: np.random.Generator, size: int, labels: int) -> tuple[np.ndarray, np.ndarray]:
    grid = np.stack(np.meshgrid(*[np.arange(size, dtype=np.float32)] * 3, indexing="ij"))
    centre = size / 2 + rng.normal(0, size * 0.03, 3)
    head = (((grid - centre[:, None, None, None]) / (size * np.array([0.42, 0.38, 0.4]))[:, None, None, None]) ** 2
            ).sum(0) < 1
    seg = np.zeros((size,) * 3, np.uint8)
    # structures placed inside the head; later ones may cover earlier ones (overlaps make multi-label boundaries)
    for label in range(1, labels + 1):
        radius = rng.uniform(0.04, 0.16, 3) * size
        where = centre + rng.uniform(-0.22, 0.22, 3) * size
        inside = (((grid - where[:, None, None, None]) / radius[:, None, None, None]) ** 2).sum(0) < 1
        seg[inside & head] = label
    image = gaussian_filter(rng.normal(0, 1, seg.shape).astype(np.float32), 2) * 20 + head * 300
    means = rng.uniform(100, 900, labels + 1)
    image += np.where(seg > 0, means[seg], 0).astype(np.float32)
    image += rng.normal(0, 10, seg.shape).astype(np.float32)
    return image.astype(np.float32), seg


def write_dataset(out: Path, labels: int, cases: int, size: int, seed: int = 0) -> Path:
    folder = out / dataset_name(labels)
    if (folder / "dataset.json").is_file():
        return folder
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    for i in range(cases):
        image, seg = make_case(rng, size, labels)
        nib.save(nib.Nifti1Image(image, affine), folder / "imagesTr" / f"case_{i:03d}_0000.nii.gz")
        nib.save(nib.Nifti1Image(seg, affine), folder / "labelsTr" / f"case_{i:03d}.nii.gz")
    label_names = {"background": 0, **{f"structure{k}": k for k in range(1, labels + 1)}}
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "MRI"}, "labels": label_names, "numTraining": cases, "file_ending": ".nii.gz",
        "name": dataset_name(labels), "description": "synthetic benchmark data (bench/synthetic_labels.py)"},
        indent=2))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--labels", type=int, nargs="+", default=[2, 30])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--size", type=int, default=176)
    args = parser.parse_args()
    for labels in args.labels:
        print(write_dataset(args.out, labels, args.cases, args.size))


if __name__ == "__main__":
    main()
