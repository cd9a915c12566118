"""Dataset fingerprint: spacings, shapes after cropping and foreground intensity statistics per channel.

Written to ``nnUNet_preprocessed/DatasetXXX/dataset_fingerprint.json`` in the same format as nnU-Net, so a
fingerprint from either implementation can be planned by the other.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnunet.constants import FOREGROUND_SAMPLING_SEED, NUM_FOREGROUND_SAMPLES, default_num_processes
from nnunet.errors import DatasetError
from nnunet.io.case_checks import quick_case_check
from nnunet.io.channels import check_case_channels
from nnunet.io.dataset_json import load_dataset_json, training_cases
from nnunet.io.integrity import verify_dataset_integrity
from nnunet.io.naming import preprocessed_dataset_folder, raw_dataset_folder, resolve_dataset_name
from nnunet.io.readers import reader_class, reader_for_dataset
from nnunet.preprocessing.cropping import crop_to_nonzero
from nnunet.registry import FINGERPRINT_EXTRACTORS
from nnunet.utils.json import load_json, save_json
from nnunet.utils.pool import run_parallel

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = "dataset_fingerprint.json"


@dataclass
class CaseFingerprint:
    """What one case contributes to the fingerprint."""

    spacing: list[float]
    shape_after_crop: tuple[int, ...]
    relative_size_after_cropping: float
    foreground_samples: list[np.ndarray]  # one 1-D array per channel


def sample_foreground_intensities(data: np.ndarray, seg: np.ndarray, num_samples: int) -> list[np.ndarray]:
    """Intensities of ``num_samples`` foreground voxels (``seg > 0``) per channel, drawn with replacement.

    One RandomState with the fixed seed is created per case and shared by its channels in channel order, so
    every implementation that follows this rule draws the same samples.
    """
    foreground = seg[0] > 0
    rng = np.random.RandomState(FOREGROUND_SAMPLING_SEED)
    samples = []
    for channel in data:
        values = channel[foreground]
        samples.append(rng.choice(values, num_samples, replace=True) if values.size else values)
    return samples


def analyze_case(image_files: Sequence[str], seg_file: str, reader_name: str, num_samples: int,
                 channel_names: dict[str, str] | None = None, case_id: str = "?") -> CaseFingerprint:
    """Read one case, crop it to its nonzero region and collect its fingerprint contribution.

    ``channel_names`` (dataset.json's): when given, a file with other channels (an RGB PNG among grey ones, a 4-D
    NIfTI) is a clear error naming it. Images with NaN or +-Inf values and labels whose shape differs from the
    image are refused with one error naming the files (they would turn the intensity statistics, and then every
    preprocessed case, into NaN).
    """
    reader = reader_class(reader_name)()
    data, props = reader.read_images(image_files)
    seg, _ = reader.read_seg(seg_file)
    if channel_names is not None:
        check_case_channels(reader, data, image_files, channel_names, seg, seg_file)
    quick_case_check(case_id, data, seg, image_files, seg_file, None)
    shape_before = data.shape[1:]
    data, seg, _ = crop_to_nonzero(data, seg)
    shape_after = data.shape[1:]
    return CaseFingerprint(
        spacing=[float(s) for s in props["spacing"]],
        shape_after_crop=tuple(int(s) for s in shape_after),
        relative_size_after_cropping=float(np.prod(shape_after) / np.prod(shape_before)),
        foreground_samples=sample_foreground_intensities(data, seg, num_samples),
    )


def intensity_statistics(samples: np.ndarray, overwrite: bool = False) -> dict[str, float]:
    """Statistics of one channel's pooled foreground samples (population std, linear percentiles).

    Without any sample every statistic is NaN, as in nnU-Net; :meth:`DatasetFingerprintExtractor.run` refuses to
    write such a fingerprint (NaN is not standard JSON, and nothing could be normalized with it).

    ``overwrite=True`` lets the percentiles reorder ``samples`` in place instead of copying them (400 MB for
    nnU-Net's 10^8 samples); the other statistics are taken first, so every value is the same either way.
    """
    if samples.size == 0:
        nan = float("nan")
        return {k: nan for k in ("max", "mean", "median", "min", "percentile_00_5", "percentile_99_5", "std")}
    stats = {
        "max": float(np.max(samples)),
        "mean": float(np.mean(samples)),
        "min": float(np.min(samples)),
        "std": float(np.std(samples)),
    }
    p_low, median, p_high = np.percentile(samples, (0.5, 50.0, 99.5), overwrite_input=overwrite)
    stats.update(median=float(median), percentile_00_5=float(p_low), percentile_99_5=float(p_high))
    return stats


class PooledSamples:
    """Every case's foreground samples per channel, in case order: what the statistics are computed on.

    Cases are copied into one buffer as their results arrive, so the per-case arrays are freed right away
    instead of all being kept for a final concatenation (for 10^8 float32 samples: 400 MB less at the peak,
    and one 400 MB copy less).
    """

    def __init__(self, num_cases: int, num_channels: int, per_case: int):
        self.num_cases, self.num_channels, self.per_case = num_cases, num_channels, per_case
        self.counts = np.zeros(num_cases, dtype=np.int64)
        self._values: np.ndarray | None = None

    def add(self, index: int, samples: Sequence[np.ndarray]) -> None:
        """Store case ``index``'s samples (one array per channel, at most ``per_case`` long)."""
        if self._values is None:
            self._values = np.empty((self.num_channels, self.num_cases * self.per_case), dtype=samples[0].dtype)
        dtype = np.result_type(self._values.dtype, *[s.dtype for s in samples])
        if dtype != self._values.dtype:  # a reader that does not return float32: widen, as concatenation would
            self._values = self._values.astype(dtype)
        start = index * self.per_case
        for c, channel_samples in enumerate(samples):
            self._values[c, start:start + channel_samples.size] = channel_samples
        self.counts[index] = samples[0].size

    def channel(self, c: int) -> np.ndarray:
        """All samples of channel ``c`` in case order (a view of the buffer when every case filled its slot)."""
        if self._values is None:
            return np.zeros(0, dtype=np.float32)
        if np.all(self.counts == self.per_case):
            return self._values[c]
        return np.concatenate([self._values[c, i * self.per_case:i * self.per_case + n]
                               for i, n in enumerate(self.counts)])


def aggregate(cases: list[CaseFingerprint], num_channels: int,
              samples: PooledSamples | None = None) -> dict[str, Any]:
    """Combine per-case results into the fingerprint dictionary (same keys as nnU-Net).

    ``samples``: the pooled foreground samples when they were collected as the cases arrived; otherwise the
    cases' own ``foreground_samples`` are concatenated.
    """
    per_channel = {}
    for c in range(num_channels):
        if samples is not None:
            pooled = samples.channel(c)
        else:
            pooled = np.concatenate([case.foreground_samples[c] for case in cases])
        # pooled is ours (a buffer view or a fresh concatenation) and used once: it may be reordered in place
        per_channel[str(c)] = intensity_statistics(pooled, overwrite=True)
    return {
        "foreground_intensity_properties_per_channel": per_channel,
        "median_relative_size_after_cropping": float(np.median([c.relative_size_after_cropping for c in cases])),
        "shapes_after_crop": [list(c.shape_after_crop) for c in cases],
        "spacings": [c.spacing for c in cases],
    }


@FINGERPRINT_EXTRACTORS.register
class DatasetFingerprintExtractor:
    """Computes (or loads) the fingerprint of one raw dataset.

    Args:
        dataset_name_or_id: e.g. ``4`` or ``"Dataset004_Hippocampus"``.
        num_processes: worker processes reading cases in parallel.
        verbose: log per-stage information.
    """

    def __init__(self, dataset_name_or_id: str | int, num_processes: int | None = None, verbose: bool = False):
        self.dataset_name = resolve_dataset_name(dataset_name_or_id)
        self.raw_folder = raw_dataset_folder(self.dataset_name)
        self.num_processes = num_processes or default_num_processes()
        self.verbose = verbose
        self.dataset_json = load_dataset_json(self.raw_folder)
        self.cases = training_cases(self.raw_folder, self.dataset_json)
        if not self.cases:
            raise DatasetError(f"No training cases found in {self.raw_folder / 'imagesTr'} "
                               f"(expected files like CASE_0000{self.dataset_json['file_ending']}).")

    @property
    def output_file(self) -> Path:
        return preprocessed_dataset_folder(self.dataset_name) / FINGERPRINT_FILE

    def run(self, overwrite_existing: bool = False, show_progress: bool = True) -> dict[str, Any]:
        """Return the fingerprint, computing and saving it unless it exists (or ``overwrite_existing``)."""
        if self.output_file.is_file() and not overwrite_existing:
            logger.info("Using the existing fingerprint %s", self.output_file)
            return load_json(self.output_file)
        first_case = next(iter(self.cases.values()))
        reader = reader_for_dataset(self.dataset_json, first_case["images"][0])
        num_samples = int(NUM_FOREGROUND_SAMPLES // len(self.cases))
        jobs = [([str(f) for f in c["images"]], str(c["label"]), reader.__name__, num_samples,
                 self.dataset_json["channel_names"], case_id) for case_id, c in self.cases.items()]
        num_channels = len(self.dataset_json["channel_names"])
        samples = PooledSamples(len(jobs), num_channels, num_samples)

        def keep_samples_only_once(index: int, case: CaseFingerprint) -> CaseFingerprint:
            samples.add(index, case.foreground_samples)
            return dataclasses.replace(case, foreground_samples=[])

        results = run_parallel(analyze_case, jobs, self.num_processes, desc=f"Fingerprint {self.dataset_name}",
                               show_progress=show_progress, on_result=keep_samples_only_once)
        fingerprint = aggregate(results, num_channels, samples)
        self._refuse_empty_foreground(fingerprint)
        save_json(fingerprint, self.output_file, sort_keys=True, indent=4)
        return fingerprint


    def _refuse_empty_foreground(self, fingerprint: dict[str, Any]) -> None:
        stats = fingerprint["foreground_intensity_properties_per_channel"]
        empty = [c for c, values in stats.items() if not all(np.isfinite(v) for v in values.values())]
        if empty:
            raise DatasetError(f"{self.raw_folder / 'labelsTr'}: no label file of {self.dataset_name} has any "
                               f"foreground voxel (label > 0), so there are no intensity statistics (channels "
                               f"{', '.join(empty)}). Check the label files and their 'labels' in dataset.json.")


def extract_fingerprints(dataset_ids: Sequence[str | int], extractor_name: str = "DatasetFingerprintExtractor",
                         num_processes: int | None = None, check_integrity: bool = False, clean: bool = True,
                         verbose: bool = False, show_progress: bool = True) -> list[dict[str, Any]]:
    """Fingerprint each dataset (optionally verifying its integrity first). Returns the fingerprints."""
    extractor_cls = FINGERPRINT_EXTRACTORS.get(extractor_name)
    fingerprints = []
    for dataset in dataset_ids:
        name = resolve_dataset_name(dataset)
        if check_integrity:
            verify_dataset_integrity(raw_dataset_folder(name), num_processes or default_num_processes())
        extractor = extractor_cls(name, num_processes, verbose)
        fingerprints.append(extractor.run(overwrite_existing=clean, show_progress=show_progress))
    return fingerprints
