"""PNG overlays of the training cases: one slice per case, with the labels painted over the image.

Meant for a quick visual check of a dataset (are the labels where they should be, is the right channel used,
did preprocessing do something odd?). Spacing is ignored: a voxel becomes a pixel.

For each case the slice along the first array axis that holds the largest share of foreground is chosen (each
class counted relative to its own size, so a small structure weighs as much as a big one). The image slice is
scaled to 0-255 and turned to grey RGB; every value present in the label slice, in increasing order, adds
``overlay_intensity`` times the next colour of :data:`COLOR_CYCLE` (whose first entry is black, so background
stays grey); the sum is scaled to 0-255 again. Works from the raw dataset or from a preprocessed configuration.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from nnunet.constants import default_num_processes
from nnunet.errors import ConfigurationError, DatasetError
from nnunet.io.dataset_json import load_dataset_json, training_cases
from nnunet.io.naming import preprocessed_dataset_folder, raw_dataset_folder
from nnunet.planning.plans import Plans
from nnunet.utils.files import publish

#: colours added per label value (by rank in the slice); the first (background) adds nothing
COLOR_CYCLE: tuple[str, ...] = (
    "000000", "4363d8", "f58231", "3cb44b", "e6194B", "911eb4", "ffe119", "bfef45",
    "42d4f4", "f032e6", "000075", "9A6324", "808000", "800000", "469990",
)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``"4363d8"`` -> ``(67, 99, 216)``."""
    if len(color) != 6:
        raise ValueError(f"Expected a 6-digit hex colour like '4363d8', got {color!r}.")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def select_slice(seg: np.ndarray) -> int:
    """Index along axis 0 of the slice with the largest (roughly class-balanced) share of foreground.

    Each foreground value's per-slice voxel counts are divided by a running total (that value's own count plus
    the already normalised shares of the smaller values) and the slice with the highest mean share wins. This is
    nnU-Net's rule; it is within a few voxels of dividing each class by its own count. Without foreground the
    first slice is returned.

    Args:
        seg: label array of shape (Z, Y, X); values below 1 (background, -1 outside the nonzero mask) ignored.
    """
    values = [v for v in np.unique(seg) if v > 0]
    if not values:
        return 0
    shares = np.zeros((seg.shape[0], len(values)))
    for i, value in enumerate(values):
        shares[:, i] = (seg == value).reshape(seg.shape[0], -1).sum(1)
        shares[:, i] /= shares.sum()
    return int(np.argmax(shares.mean(1)))


def _color_for_rank(rank: int, color_cycle: Sequence[str]) -> np.ndarray:
    if rank >= len(color_cycle):  # more values than colours: reuse the non-black ones
        rank = 1 + (rank - 1) % (len(color_cycle) - 1)
    return np.array(hex_to_rgb(color_cycle[rank]), dtype=np.float64)


def overlay_slice(image: np.ndarray, seg: np.ndarray, overlay_intensity: float = 0.6,
                  color_cycle: Sequence[str] = COLOR_CYCLE) -> np.ndarray:
    """Blend a 2-D label slice into a 2-D grey image.

    Args:
        image: (Y, X) intensities.
        seg: (Y, X) integer labels.
        overlay_intensity: weight of the label colours (0.6 by default; higher = more opaque).
        color_cycle: hex colours assigned to the slice's label values in increasing order.

    Returns:
        (Y, X, 3) uint8 RGB.
    """
    if image.ndim != 2 or image.shape != seg.shape:
        raise ValueError(f"overlay_slice needs a 2-D image and a label slice of the same shape, got {image.shape} "
                         f"and {seg.shape}.")
    # float32 arithmetic like nnU-Net, so the truncation to uint8 gives the same pixels
    rgb = np.repeat(np.asarray(image, dtype=np.float32)[..., None], 3, axis=2)
    rgb = _scale_to_255(rgb - rgb.min())
    for rank, value in enumerate(np.unique(seg)):
        rgb[seg == value] += overlay_intensity * _color_for_rank(rank, color_cycle)
    return _scale_to_255(rgb).astype(np.uint8)


def _scale_to_255(arr: np.ndarray) -> np.ndarray:
    peak = arr.max()
    return arr / peak * 255 if peak > 0 else np.zeros_like(arr)


def write_png(rgb: np.ndarray, path: str | os.PathLike) -> None:
    """Save (Y, X, 3) uint8 as an opaque RGBA PNG (rows top to bottom), complete or absent."""
    from PIL import Image

    path = Path(path)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, dtype=np.uint8)], axis=2)
    with publish(path) as tmp:
        Image.fromarray(rgba, mode="RGBA").save(tmp, format="PNG")


def plot_case(image: np.ndarray, seg: np.ndarray, output_file: str | os.PathLike, overlay_intensity: float = 0.6,
              name: str = "case") -> int:
    """Choose the slice of a 3-D case, write its overlay PNG and return the slice index."""
    if image.ndim != 3 or image.shape != seg.shape:
        raise DatasetError(f"{name}: overlays need a 3-D image and a label map of the same shape, got image "
                           f"{image.shape} and labels {seg.shape}.")
    index = select_slice(seg)
    labels = np.array(seg[index])
    labels[labels < 0] = 0
    write_png(overlay_slice(np.asarray(image[index]), labels, overlay_intensity), output_file)
    return index


def _plot_raw_case(image_file: str, seg_file: str, reader_name: str, output_file: str,
                   overlay_intensity: float) -> int:
    from nnunet.io.readers import reader_class

    reader = reader_class(reader_name)()
    image, _ = reader.read_images([image_file])
    seg, _ = reader.read_seg(seg_file)
    return plot_case(image[0], seg[0], output_file, overlay_intensity, name=Path(seg_file).name)


def _plot_preprocessed_case(folder: str, case_id: str, output_file: str, overlay_intensity: float,
                            channel_idx: int) -> int:
    # in a function: nnunet.training is declared torch code (documentation/layers.md), this module is torch-free
    from nnunet.training.data.dataset import PreprocessedDataset

    data, seg, _, _ = PreprocessedDataset(folder, [case_id]).load_case(case_id)
    if channel_idx >= data.shape[0]:
        raise DatasetError(f"{case_id}: -channel_idx {channel_idx} is out of range; the preprocessed data has "
                           f"{data.shape[0]} channel(s) (0..{data.shape[0] - 1}).")
    return plot_case(np.asarray(data[channel_idx]), np.asarray(seg[0]), output_file, overlay_intensity, name=case_id)


def _check_channel(channel_idx: int, num_channels: int, where: str) -> None:
    if not 0 <= channel_idx < num_channels:
        raise ConfigurationError(f"-channel_idx {channel_idx} is out of range: {where} has {num_channels} "
                                 f"channel(s) (0..{num_channels - 1}).")


def generate_overlays_from_raw(dataset_name_or_id: str | int, output_folder: str | os.PathLike,
                               num_processes: int | None = None, channel_idx: int = 0,
                               overlay_intensity: float = 0.6, show_progress: bool = True) -> list[Path]:
    """One ``{ID}.png`` per training case of the raw dataset; returns the written files."""
    from nnunet.io.readers import reader_for_dataset
    from nnunet.utils.pool import run_parallel

    folder = raw_dataset_folder(dataset_name_or_id)
    ds = load_dataset_json(folder / "dataset.json")
    _check_channel(channel_idx, len(ds["channel_names"]), f"{folder / 'dataset.json'} (channel_names)")
    cases = training_cases(folder, ds)
    if not cases:
        raise DatasetError(f"No training cases found in {folder}.")
    jobs = []
    output_folder = Path(output_folder)
    for case_id, entry in cases.items():
        images = entry["images"]
        if channel_idx >= len(images):
            raise DatasetError(f"Case {case_id} has {len(images)} image file(s); channel {channel_idx} is missing.")
        for f in (images[channel_idx], entry["label"]):
            if not Path(f).is_file():
                raise DatasetError(f"Case {case_id}: {f} does not exist.")
        jobs.append([str(images[channel_idx]), str(entry["label"]), "", str(output_folder / f"{case_id}.png"),
                     overlay_intensity])
    reader_name = reader_for_dataset(ds, jobs[0][0]).__name__
    for job in jobs:
        job[2] = reader_name
    output_folder.mkdir(parents=True, exist_ok=True)
    n = default_num_processes() if num_processes is None else num_processes
    run_parallel(_plot_raw_case, [tuple(j) for j in jobs], n, desc="Overlays", show_progress=show_progress)
    return [Path(j[3]) for j in jobs]


def generate_overlays_from_preprocessed(dataset_name_or_id: str | int, output_folder: str | os.PathLike,
                                        num_processes: int | None = None, channel_idx: int = 0,
                                        configuration: str | None = None, plans_identifier: str = "nnUNetPlans",
                                        overlay_intensity: float = 0.6, show_progress: bool = True) -> list[Path]:
    """One ``{ID}.png`` per case of a preprocessed configuration (default 3d_fullres, else 2d)."""
    from nnunet.training.data.dataset import case_identifiers
    from nnunet.utils.pool import run_parallel

    base = preprocessed_dataset_folder(dataset_name_or_id)
    if not base.is_dir():
        raise DatasetError(f"{base} does not exist: run nnUNet_plan_and_preprocess for this dataset first, or use "
                           f"--use_raw.")
    plans = Plans.load(base / f"{plans_identifier}.json")
    if configuration is None:
        configuration = "3d_fullres" if "3d_fullres" in plans.available_configurations else "2d"
    data_folder = base / plans.configuration(configuration).data_identifier
    if not data_folder.is_dir():
        raise DatasetError(f"No preprocessed data for configuration {configuration} of {plans_identifier} "
                           f"({data_folder} does not exist). Run nnUNet_preprocess -c {configuration} first.")
    ids = case_identifiers(data_folder)
    num_channels = len(plans.foreground_intensity_properties_per_channel)
    _check_channel(channel_idx, num_channels, f"{plans.source}")
    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    jobs = [(str(data_folder), case_id, str(output_folder / f"{case_id}.png"), overlay_intensity, channel_idx)
            for case_id in ids]
    n = default_num_processes() if num_processes is None else num_processes
    run_parallel(_plot_preprocessed_case, jobs, n, desc="Overlays", show_progress=show_progress)
    return [Path(j[2]) for j in jobs]
