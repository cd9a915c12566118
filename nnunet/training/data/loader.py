"""Patch sampling for training: case choice, foreground oversampling, crop window, padding.

A loader yields batches ``{"data": float32 (B, C, *patch), "target": tensor or list of tensors, "keys": ids}``;
the augmentation pipeline runs per sample inside it. Loaders follow the batchgenerators data-loader protocol
(``__next__``, ``set_thread_id``), so they run in background processes with batchgenerators' augmenters.

All randomness comes from numpy's and torch's global generators, which the worker processes seed.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Callable, Sequence

import numpy as np
import torch

from nnunet.errors import DatasetError
from nnunet.io.labels import LabelManager
from nnunet.training.data.dataset import PreprocessedDataset

logger = logging.getLogger(__name__)


def forced_foreground_positions(batch_size: int, oversample_foreground_percent: float) -> list[bool]:
    """Which positions of a batch must contain foreground: ``j >= round(batch_size * (1 - percent))``."""
    first_forced = round(batch_size * (1 - oversample_foreground_percent))
    return [j >= first_forced for j in range(batch_size)]


def crop_bounds(data_shape: Sequence[int], patch_size: Sequence[int],
                need_to_pad: Sequence[int]) -> tuple[list[int], list[int]]:
    """Lowest and highest allowed lower patch corner per axis (both inclusive).

    Cases smaller than the patch are padded up to it; the padding is split evenly, the odd voxel going to the
    upper side: ``lb = -ceil(pad / 2)`` (Python ``(-pad) // 2``), ``ub = S + ceil(pad / 2) - patch``.
    """
    lbs, ubs = [], []
    for s, p, pad in zip(data_shape, patch_size, need_to_pad):
        pad = int(pad)
        if pad + s < p:
            pad = p - s
        lbs.append(-pad // 2)
        ubs.append(s + pad // 2 + pad % 2 - p)
    return lbs, ubs


def choose_patch_corner(data_shape: Sequence[int], patch_size: Sequence[int], need_to_pad: Sequence[int],
                        force_fg: bool, class_locations: dict | None, has_ignore: bool,
                        annotated_key: tuple[int, ...] | None = None) -> list[int]:
    """Lower corner of the crop window for one sample.

    Forced samples (and, with an ignore label, all samples) are centred on a stored voxel of a class; the
    corner is only clamped from below. Otherwise the corner is uniform in the allowed bounds.
    """
    lbs, ubs = crop_bounds(data_shape, patch_size, need_to_pad)
    dim = len(data_shape)

    def random_corner() -> list[int]:
        return [int(np.random.randint(lbs[i], ubs[i] + 1)) for i in range(dim)]

    if not force_fg and not has_ignore:
        return random_corner()
    if class_locations is None:
        raise ValueError("Foreground sampling needs the case's class_locations (missing from its properties).")
    if not force_fg:  # ignore label: make sure the patch holds annotated voxels
        selected = annotated_key
        if len(class_locations.get(selected, [])) == 0:
            warnings.warn("A case has no annotated voxels; sampling a random patch.", stacklevel=2)
            selected = None
    else:
        eligible = [k for k, v in class_locations.items() if len(v) > 0]
        if annotated_key is not None and annotated_key in eligible and len(eligible) > 1:
            eligible.remove(annotated_key)
        selected = eligible[np.random.choice(len(eligible))] if eligible else None
    if selected is None:
        return random_corner()
    voxels = class_locations[selected]
    voxel = voxels[np.random.choice(len(voxels))]
    return [max(lbs[i], int(voxel[i + 1]) - patch_size[i] // 2) for i in range(dim)]


def crop_and_pad(array: Any, bbox: Sequence[Sequence[int]], pad_value: float, dtype: np.dtype) -> np.ndarray:
    """Read ``array[..., bbox]`` (only the part inside the array is read, so blosc2 decompresses few chunks) and
    pad the rest of the window with ``pad_value``. ``bbox`` covers the trailing axes, half-open. The result is
    always a new array: the augmentation writes into it."""
    lead = array.ndim - len(bbox)
    shape = array.shape[lead:]
    valid = [(max(0, lo), min(s, hi)) for (lo, hi), s in zip(bbox, shape)]
    slicer = (slice(None),) * lead + tuple(slice(lo, hi) for lo, hi in valid)
    cropped = np.asarray(array[slicer]).astype(dtype, copy=False)
    if isinstance(array, np.ndarray) and np.shares_memory(cropped, array):
        # a view of a numpy case (a read-only np.memmap of a legacy .npy): the transforms work in place
        cropped = cropped.copy()
    pads = [(0, 0)] * lead + [(lo_v - lo, hi - hi_v) for (lo, hi), (lo_v, hi_v) in zip(bbox, valid)]
    if any(p != (0, 0) for p in pads):
        cropped = np.pad(cropped, pads, mode="constant", constant_values=pad_value)
    return cropped


def check_label_values(batch: dict[str, Any], label_manager: LabelManager, folder: Any = None) -> None:
    """Refuse a batch whose targets hold a label that dataset.json does not declare, naming the case(s).

    Only label training is checked (region training maps labels to region channels before this point, where an
    undeclared label silently becomes background, as in nnU-Net). Without the check such a value crashes the loss
    with an index error (a device-side assert on CUDA) that names neither the case nor the label. Checked in the
    main process, per batch: one min/max pass over the full-resolution targets.
    """
    if label_manager.has_regions:
        return
    target = batch["target"][0] if isinstance(batch["target"], list) else batch["target"]
    allowed = set(label_manager.all_labels) | ({label_manager.ignore_label} if label_manager.has_ignore_label else set())
    low, high = torch.aminmax(target)  # one pass over the batch: this runs on every training step
    if int(low) >= 0 and int(high) <= max(allowed):
        return
    flat = target.reshape(target.shape[0], -1)
    bad = {}
    for key, sample in zip(batch.get("keys", [None] * target.shape[0]), flat):
        values = sorted(set(torch.unique(sample).tolist()) - allowed)
        if values:
            bad[str(key)] = values
    if not bad:
        return
    cases = "; ".join(f"{key}: {', '.join(str(int(v)) for v in values)}" for key, values in bad.items())
    where = f" in {folder}" if folder is not None else ""
    raise DatasetError(f"Segmentation values that dataset.json does not declare (labels: "
                       f"{sorted(label_manager.all_labels)}) in the preprocessed case(s){where}: {cases}. Fix the "
                       f"label files (nnUNet_plan_and_preprocess --verify_dataset_integrity lists them) or declare the "
                       f"labels in dataset.json, then preprocess again.")


class PatchLoader:
    """Infinite batches of (augmented) patches from a :class:`PreprocessedDataset`.

    Args:
        data: the cases to sample from.
        batch_size: samples per batch.
        patch_size: what is cropped from a case (training: the enlarged initial patch), 2-D or 3-D.
        final_patch_size: the network input size after the spatial transform.
        label_manager: labels/regions/ignore label of the dataset.
        oversample_foreground_percent: fraction of each batch forced to contain foreground.
        sampling_probabilities: optional per-case probabilities for choosing cases.
        probabilistic_oversampling: force each sample with that probability instead of by position.
        transforms: per-sample transform called as ``transforms(image=..., segmentation=...)``.
    """

    def __init__(self, data: PreprocessedDataset, batch_size: int, patch_size: Sequence[int],
                 final_patch_size: Sequence[int], label_manager: LabelManager,
                 oversample_foreground_percent: float = 0.0, sampling_probabilities: Sequence[float] | None = None,
                 probabilistic_oversampling: bool = False, transforms: Callable | None = None):
        self.data = data
        self.batch_size = int(batch_size)
        self.patch_size_was_2d = len(patch_size) == 2
        if self.patch_size_was_2d:
            patch_size, final_patch_size = (1, *patch_size), (1, *final_patch_size)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.final_patch_size = tuple(int(p) for p in final_patch_size)
        self.need_to_pad = [p - f for p, f in zip(self.patch_size, self.final_patch_size)]
        self.oversample_foreground_percent = oversample_foreground_percent
        self.probabilistic_oversampling = probabilistic_oversampling
        self.sampling_probabilities = sampling_probabilities
        self.has_ignore = label_manager.has_ignore_label
        self.annotated_key = tuple([-1] + label_manager.all_labels)
        self.transforms = transforms
        self.thread_id = 0

    # batchgenerators data-loader protocol
    def set_thread_id(self, thread_id: int) -> None:
        self.thread_id = thread_id

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, Any]:
        return self.generate_train_batch()

    def force_foreground(self, sample_idx: int) -> bool:
        if self.probabilistic_oversampling:
            return bool(np.random.uniform() < self.oversample_foreground_percent)
        return forced_foreground_positions(self.batch_size, self.oversample_foreground_percent)[sample_idx]

    def select_cases(self) -> list[str]:
        """``batch_size`` case identifiers, uniformly (or by ``sampling_probabilities``) with replacement."""
        return [str(k) for k in np.random.choice(self.data.identifiers, self.batch_size, replace=True,
                                                 p=self.sampling_probabilities)]

    def load_patch(self, identifier: str, force_fg: bool) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Crop window of one case: image float32 (C, *patch), seg int16 (1 or 2, *patch), 2-D axis removed, and
        the extra arguments of the transforms.

        A pipeline with ``draw_spatial`` (the fused one) draws its geometry once the window is chosen and names
        the part of the window it reads: only that part is cropped (outside the case it is padded as the window
        would be), and the draw goes to the transforms as ``spatial``.
        """
        data, seg, seg_prev, properties = self.data.load_case(identifier)
        shape = data.shape[1:]
        corner = choose_patch_corner(shape, self.patch_size, self.need_to_pad, force_fg,
                                     properties.get("class_locations"), self.has_ignore, self.annotated_key)
        box = [(0, p) for p in self.patch_size]
        extra = {}
        draw_spatial = getattr(self.transforms, "draw_spatial", None)
        if draw_spatial is not None:
            window = self.patch_size[1:] if self.patch_size_was_2d else self.patch_size
            extra["spatial"] = draw_spatial(window)
            box = box[:1] + list(extra["spatial"].box) if self.patch_size_was_2d else list(extra["spatial"].box)
        bbox = [[c + lo, c + hi] for c, (lo, hi) in zip(corner, box)]
        image = torch.from_numpy(crop_and_pad(data, bbox, 0, np.float32))
        target = torch.from_numpy(crop_and_pad(seg, bbox, -1, np.int16))
        if seg_prev is not None:
            prev = torch.from_numpy(crop_and_pad(seg_prev, bbox, -1, np.int16))
            target = torch.cat((target, prev[None]), dim=0)
        if self.patch_size_was_2d:
            image, target = image[:, 0], target[:, 0]
        return image, target, extra

    def generate_train_batch(self) -> dict[str, Any]:
        keys = self.select_cases()
        data_all = target_all = None
        with torch.no_grad():
            for j, key in enumerate(keys):
                image, seg, extra = self.load_patch(key, self.force_foreground(j))
                if self.transforms is not None:
                    out = self.transforms(image=image, segmentation=seg, **extra)
                    image, seg = out["image"], out["segmentation"]
                if data_all is None:
                    data_all = torch.empty((self.batch_size, *image.shape), dtype=torch.float32)
                    target_all = ([torch.empty((self.batch_size, *s.shape), dtype=s.dtype) for s in seg]
                                  if isinstance(seg, list) else
                                  torch.empty((self.batch_size, *seg.shape), dtype=seg.dtype))
                data_all[j] = image
                if isinstance(seg, list):
                    for level, s in enumerate(seg):
                        target_all[level][j] = s
                else:
                    target_all[j] = seg
        return {"data": data_all, "target": target_all, "keys": keys}
