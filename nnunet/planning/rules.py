"""The planner's rules as pure functions: target spacing, transpose, shapes, batch size, patch
shrinking order, 3d_lowres spacing steps and the normalization scheme of a channel.

No file access except :func:`copy_splits_file`; :class:`nnunet.planning.planner.ExperimentPlanner` combines them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnunet.constants import ANISO_THRESHOLD
from nnunet.errors import ConfigurationError, DatasetError
from nnunet.utils.files import copy_file
from nnunet.utils.json import load_json

#: channel name (casefolded) -> normalization class; every other name gets Z-score normalization
CHANNEL_NAME_TO_NORMALIZATION = {
    "ct": "CTNormalization",
    "nonorm": "NoNormalization",
    "zscore": "ZScoreNormalization",
    "rescale_to_0_1": "RescaleTo01Normalization",
    "rgb_to_0_1": "RGBTo01Normalization",
}
DEFAULT_NORMALIZATION = "ZScoreNormalization"
#: schemes that leave voxels outside the nonzero mask at 0 and may therefore be restricted to that mask
MASK_CAPABLE_NORMALIZATIONS = frozenset({"ZScoreNormalization"})
#: masked normalization is used only if cropping to nonzero removed a substantial part of the images
MASK_MAX_RELATIVE_SIZE = 0.75


def normalization_scheme_for_channel(channel_name: str) -> str:
    """Normalization class name for a ``channel_names`` entry (``CT`` -> CTNormalization, default Z-score)."""
    return CHANNEL_NAME_TO_NORMALIZATION.get(str(channel_name).casefold(), DEFAULT_NORMALIZATION)


def fullres_target_spacing(spacings: Sequence[Sequence[float]], shapes: Sequence[Sequence[int]],
                           anisotropy_threshold: float = ANISO_THRESHOLD) -> np.ndarray:
    """Median spacing, except along a strongly anisotropic axis.

    An axis counts as anisotropic when its median spacing exceeds ``threshold`` times the largest other median
    spacing *and* its median size times ``threshold`` is below the smallest other median size. Its target is
    then the 10th percentile of its spacings, kept just above the largest other spacing.
    """
    spacings = np.vstack(spacings).astype(np.float64)
    target = np.percentile(spacings, 50, 0)
    target_size = np.percentile(np.vstack(shapes), 50, 0)
    worst = int(np.argmax(target))
    others = [a for a in range(len(target)) if a != worst]
    max_other_spacing = max(target[a] for a in others)
    aniso_spacing = target[worst] > anisotropy_threshold * max_other_spacing
    aniso_voxels = target_size[worst] * anisotropy_threshold < min(target_size[a] for a in others)
    if aniso_spacing and aniso_voxels:
        value = np.percentile(spacings[:, worst], 10)
        if value < max_other_spacing:
            value = max(max_other_spacing, value) + 1e-5
        target[worst] = value
    return target


def transpose_for_spacing(target_spacing: Sequence[float]) -> tuple[list[int], list[int]]:
    """(forward, backward): the coarsest axis first, the others in ascending order."""
    worst = int(np.argmax(target_spacing))
    forward = [worst] + [a for a in range(len(target_spacing)) if a != worst]
    backward = [forward.index(a) for a in range(len(target_spacing))]
    return forward, backward


def resampled_shape(shape: Sequence[int], spacing: Sequence[float], target_spacing: Sequence[float]) -> list[int]:
    """Shape after resampling ``shape`` from ``spacing`` to ``target_spacing`` (round half to even)."""
    return [int(round(sp / tsp * sh)) for sp, tsp, sh in zip(spacing, target_spacing, shape)]


def batch_size_for(reference: float, estimate: int, reference_batch_size: int, approx_voxels_dataset: float,
                   max_dataset_covered: float, patch_size: Sequence[int], min_batch_size: int) -> int:
    """Batch size from the memory headroom, capped so one batch covers at most a fraction of the dataset."""
    batch_size = round((reference / estimate) * reference_batch_size)
    cap = round(approx_voxels_dataset * max_dataset_covered / np.prod(patch_size, dtype=np.float64))
    return int(max(min(batch_size, cap), min_batch_size))


def axis_to_shrink(patch_size: Sequence[int], median_shape: Sequence[float]) -> int:
    """Axis whose patch edge is largest relative to the median shape (the last one on ties)."""
    ratios = [p / m for p, m in zip(patch_size, median_shape)]
    return max(range(len(ratios)), key=lambda a: (ratios[a], a))


def lowres_spacing_step(spacing: np.ndarray, factor: float) -> np.ndarray:
    """One 3d_lowres coarsening step: axes more than 2x finer than the coarsest grow first, else all axes grow."""
    spacing = np.array(spacing, dtype=np.float64)
    ratio = max(spacing) / spacing
    if np.any(ratio > 2):
        spacing[ratio > 2] *= factor
    else:
        spacing *= factor
    return spacing


def copy_splits_file(source: Path, target: Path) -> None:
    """Copy the raw dataset's splits_final.json unless the target exists; then every source split must match it."""
    if not target.is_file():
        copy_file(source, target)
        return
    src, dst = load_json(source), load_json(target)
    for i, split in enumerate(src):
        if i >= len(dst) or set(split["train"]) != set(dst[i]["train"]) or set(split["val"]) != set(dst[i]["val"]):
            raise DatasetError(f"Split {i} of {source} differs from the existing {target}. Delete {target} to use "
                               f"the raw dataset's splits, or make the two files agree.")


def check_target_spacing(spacing: Sequence[float] | None) -> list[float] | None:
    if spacing is None:
        return None
    try:
        values = [float(s) for s in spacing]
    except (TypeError, ValueError):
        raise ConfigurationError(f"overwrite_target_spacing must be three numbers, got {spacing!r}.") from None
    if len(values) != 3 or not all(v > 0 for v in values):
        raise ConfigurationError(f"overwrite_target_spacing must be three positive numbers (one per axis, in the "
                                 f"untransposed array order), got {values}.")
    return values


def json_numbers(values: Sequence[Any]) -> list[Any]:
    """Python ints stay ints, numpy floats become floats (as nnU-Net writes median shapes)."""
    out = []
    for v in values:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            out.append(int(v))
        else:
            out.append(float(v))
    return out
