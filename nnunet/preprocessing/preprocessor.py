"""The default preprocessor: transpose -> crop to nonzero -> normalize -> resample, per case."""
from __future__ import annotations

import copy
import functools
import json
import logging
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnunet.errors import NnunetError
from nnunet.io.case_checks import allowed_label_values, quick_case_check
from nnunet.io.dataset_json import label_manager, load_dataset_json, training_cases
from nnunet.io.channels import check_case_channels
from nnunet.io.readers import reader_class
from nnunet.io.naming import preprocessed_dataset_folder, raw_dataset_folder, resolve_dataset_name
from nnunet.planning.plans import PREPROCESSING_KEYS, Configuration, Plans
from nnunet.planning.plans_rules import num_image_channels
from nnunet.preprocessing.class_locations import class_location_keys, sample_class_locations
from nnunet.preprocessing.cropping import crop_to_nonzero
from nnunet.preprocessing.resampling import compute_new_shape
from nnunet.preprocessing.staging import StagedBuild, build_signature, shard
from nnunet.preprocessing.storage import save_case
from nnunet.registry import NORMALIZERS, PREPROCESSORS
from nnunet.utils.files import publish
from nnunet.utils.pool import run_parallel

logger = logging.getLogger(__name__)


def transpose_case(data: np.ndarray, seg: np.ndarray | None, transpose_forward: Sequence[int]):
    axes = [0] + [a + 1 for a in transpose_forward]
    return data.transpose(axes), (seg.transpose(axes) if seg is not None else None)


def normalize(data: np.ndarray, seg: np.ndarray, configuration: Configuration,
              intensity_properties: dict[str, dict[str, float]]) -> np.ndarray:
    """Normalize each channel in place with the scheme the plans name for it."""
    schemes = configuration.normalization_schemes
    if len(schemes) != data.shape[0]:
        raise NnunetError(f"The plans list {len(schemes)} normalization schemes but the image has "
                          f"{data.shape[0]} channels.")
    for c, scheme in enumerate(schemes):
        normalizer = NORMALIZERS.get(scheme)(use_mask_for_norm=configuration.use_mask_for_norm[c],
                                             intensityproperties=intensity_properties.get(str(c)))
        data[c] = normalizer.run(data[c], seg[0])
    return data


def target_spacing(configuration: Configuration, original_spacing: Sequence[float]) -> list[float]:
    """The spacing a case is resampled to. 2-D configurations keep the case's own spacing across slices."""
    spacing = [float(s) for s in configuration.spacing]
    if len(spacing) < len(original_spacing):
        spacing = [float(original_spacing[0])] + spacing
    return spacing


@PREPROCESSORS.register
class DefaultPreprocessor:
    """Turns raw cases into the arrays the network is trained on.

    Subclass it and override :meth:`modify_seg_fn` (or any step) for experiments; register the subclass in
    :data:`nnunet.registry.PREPROCESSORS` and name it in the plans (``-preprocessor_name``).
    """

    def __init__(self, verbose: bool = False):
        self.verbose = verbose

    def run_case_npy(self, data: np.ndarray, seg: np.ndarray | None, properties: dict[str, Any], plans: Plans,
                     configuration: Configuration, dataset_json: dict[str, Any]):
        """Preprocess arrays already read: returns (data float32, seg int8/int16, properties)."""
        data = data.astype(np.float32, copy=False)
        has_seg = seg is not None
        data, seg = transpose_case(data, seg, plans.transpose_forward)
        original_spacing = [properties["spacing"][i] for i in plans.transpose_forward]
        properties["shape_before_cropping"] = data.shape[1:]
        data, seg, bbox = crop_to_nonzero(data, seg)
        properties["bbox_used_for_cropping"] = bbox
        properties["shape_after_cropping_and_before_resampling"] = data.shape[1:]
        new_spacing = target_spacing(configuration, original_spacing)
        new_shape = compute_new_shape(data.shape[1:], original_spacing, new_spacing)
        data = normalize(np.ascontiguousarray(data), seg, configuration,
                         plans.foreground_intensity_properties_per_channel)
        data = configuration.resampling_fn("data")(data, new_shape, original_spacing, new_spacing)
        seg = configuration.resampling_fn("seg")(seg, new_shape, original_spacing, new_spacing)
        if has_seg:
            labels = label_manager(dataset_json)
            properties["class_locations"] = sample_class_locations(seg, class_location_keys(labels))
            seg = self.modify_seg_fn(seg, plans, dataset_json, configuration)
        seg = seg.astype(np.int16 if np.max(seg) > 127 else np.int8)
        return data, seg, properties

    def read_case(self, image_files: Sequence[str | os.PathLike], seg_file: str | os.PathLike | None,
                  plans: Plans) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
        """Read one case with the plans' reader: (data, seg or None, properties)."""
        reader = reader_class(plans.image_reader_writer)()
        data, properties = reader.read_images(image_files)
        seg = reader.read_seg(seg_file)[0] if seg_file is not None else None
        return data, seg, properties

    def run_case(self, image_files: Sequence[str | os.PathLike], seg_file: str | os.PathLike | None, plans: Plans,
                 configuration: Configuration, dataset_json: dict[str, Any]):
        """Read and preprocess one case: returns (data, seg, properties)."""
        data, seg, properties = self.read_case(image_files, seg_file, plans)
        check_case_channels(reader_class(plans.image_reader_writer)(), data, image_files,
                            dataset_json["channel_names"], seg, seg_file)
        return self.run_case_npy(data, seg, properties, plans, configuration, dataset_json)

    def modify_seg_fn(self, seg: np.ndarray, plans: Plans, dataset_json: dict[str, Any],
                      configuration: Configuration) -> np.ndarray:
        """Hook to alter training segmentations (e.g. to simulate sparse annotation). Identity by default."""
        return seg

    def shared_output_key(self, plans: Plans, configuration: Configuration,
                          properties: dict[str, Any]) -> str | None:
        """What :meth:`run_case_npy`'s output depends on besides the case, or None if that is not known.

        Configurations of one case with equal keys get the same arrays, so the arrays are computed once and
        written to each configuration's folder (e.g. 2d and 3d_fullres of an isotropic dataset). A subclass that
        overrides a processing step returns None unless it overrides this method too: its step may read any
        part of the configuration.
        """
        cls = type(self)
        if any(getattr(cls, name) is not getattr(DefaultPreprocessor, name)
               for name in ("run_case_npy", "modify_seg_fn")):
            return None
        original_spacing = [properties["spacing"][i] for i in plans.transpose_forward]
        settings = {key: configuration.get(key) for key in PREPROCESSING_KEYS if key != "spacing"}
        settings["target_spacing"] = target_spacing(configuration, original_spacing)
        return json.dumps(settings, sort_keys=True, default=str)

    def run(self, dataset_name_or_id: str | int, configuration_name: str, plans_identifier: str,
            num_processes: int, show_progress: bool = True, num_parts: int = 1, part_id: int = 0) -> None:
        """Preprocess every training case of a dataset for one configuration."""
        self.run_configurations(dataset_name_or_id, [configuration_name], plans_identifier, num_processes,
                                show_progress, num_parts, part_id)

    def run_configurations(self, dataset_name_or_id: str | int, configuration_names: Sequence[str],
                           plans_identifier: str, num_processes: int, show_progress: bool = True,
                           num_parts: int = 1, part_id: int = 0) -> None:
        """Preprocess the training cases (part ``part_id`` of ``num_parts``) for several configurations in one pass.

        Each case is read once and written to every configuration's staging folder; configurations sharing a
        data_identifier write it once, with the settings of the last of them (what separate runs would leave).
        Cases already complete in a matching staging folder are skipped. A configuration's folder is swapped
        in when all of its cases are complete (see :mod:`nnunet.preprocessing.staging`).
        """
        dataset_name = resolve_dataset_name(dataset_name_or_id)
        pre_folder = preprocessed_dataset_folder(dataset_name)
        plans = Plans.load(pre_folder / f"{plans_identifier}.json", dataset_name=dataset_name)
        dataset_json = load_dataset_json(pre_folder / "dataset.json")
        cases = training_cases(raw_dataset_folder(dataset_name), dataset_json)
        mine = shard(list(cases), num_parts, part_id)
        builds = self._open_builds(plans, configuration_names, dataset_json, cases, pre_folder)
        jobs = []
        allowed = allowed_label_values(dataset_json)
        for case_id in mine:
            targets = [(b.configuration, str(b.staging)) for b in builds if case_id not in b.done]
            if targets:
                c = cases[case_id]
                jobs.append((type(self).__name__, self.verbose, case_id, [str(f) for f in c["images"]],
                             str(c["label"]), str(plans.source), targets, dataset_json, allowed))
        part = f" (part {part_id + 1} of {num_parts}: {len(mine)} cases)" if num_parts > 1 else ""
        if num_parts > 1:
            logger.info(f"{dataset_name}: part {part_id + 1} of {num_parts}: {len(mine)} of {len(cases)} cases")
        if len(jobs) < len(mine):
            logger.info(f"{dataset_name}: {len(mine) - len(jobs)} case(s) already complete in the staging folder")
        run_parallel(_preprocess_and_save, jobs, num_processes,
                     desc=f"Preprocessing {', '.join(b.configuration for b in builds)}{part}",
                     show_progress=show_progress)
        for build in builds:
            _report(dataset_name, build, build.publish_if_complete(list(cases)), len(cases))

    def _open_builds(self, plans: Plans, configuration_names: Sequence[str], dataset_json: dict[str, Any],
                     cases: dict[str, dict[str, Any]], pre_folder: Path) -> list[StagedBuild]:
        channels = num_image_channels(dataset_json)
        checked = {n: plans.checked_configuration(n, "preprocess", channels) for n in configuration_names}
        last_per_folder = {checked[n].data_identifier: n for n in configuration_names}
        builds = []
        for data_identifier, name in last_per_folder.items():
            configuration = checked[name]
            signature = build_signature(plans, configuration, dataset_json, type(self).__name__)
            builds.append(StagedBuild.open(pre_folder / data_identifier, signature, plans.source, cases))
        return builds


def _report(dataset_name: str, build: StagedBuild, swapped: bool, num_cases: int) -> None:
    if swapped:
        logger.info(f"{dataset_name}: {build.configuration} complete ({num_cases} cases) in {build.final}")
    elif build.staging.is_dir():
        logger.info(f"{dataset_name}: {build.configuration}: this part is done; {build.final.name} is swapped in by the "
              f"part that completes the last case (staging: {build.staging})")


def _preprocess_and_save(preprocessor_name: str, verbose: bool, case_id: str, image_files: list[str], seg_file: str,
                         plans_file: str, targets: list[tuple[str, str]], dataset_json: dict[str, Any],
                         allowed_labels: list[int] | None = None) -> None:
    """Worker: preprocess one case for each (configuration, output folder) target and write it.

    Returns nothing so no array crosses process boundaries. The case is read once unless the preprocessor
    overrides :meth:`~DefaultPreprocessor.run_case`; arrays are shared between configurations with equal
    :meth:`~DefaultPreprocessor.shared_output_key`.
    """
    in_pool = multiprocessing.parent_process() is not None
    if in_pool:
        _limit_blas_threads()
    preprocessor = PREPROCESSORS.get(preprocessor_name)(verbose)
    mtime = os.stat(plans_file).st_mtime_ns
    plans = _cached_plans(plans_file, mtime)
    configurations = [_cached_configuration(plans_file, mtime, name) for name, _ in targets]
    if type(preprocessor).run_case is not DefaultPreprocessor.run_case:
        for configuration, (_, out_folder) in zip(configurations, targets):
            result = preprocessor.run_case(image_files, seg_file, plans, configuration, dataset_json)
            save_case(out_folder, case_id, *result, configuration.patch_size)
        return
    raw = preprocessor.read_case(image_files, seg_file, plans)
    check_case_channels(reader_class(plans.image_reader_writer)(), raw[0], image_files, dataset_json["channel_names"],
                        raw[1], seg_file)
    quick_case_check(case_id, raw[0], raw[1], image_files, seg_file, allowed_labels)
    keys = [preprocessor.shared_output_key(plans, c, raw[2]) for c in configurations]
    done: dict[str, tuple] = {}
    for i, (configuration, (_, out_folder)) in enumerate(zip(configurations, targets)):
        key = keys[i]
        if key is not None and key in done:
            result = done[key]
        else:
            # the raw case is needed again only by a later configuration that computes its own arrays
            last_use = all(k is not None and (k in done or k == key) for k in keys[i + 1:])
            data, seg, properties = raw if last_use else _copy_case(*raw)
            result = preprocessor.run_case_npy(data, seg, properties, plans, configuration, dataset_json)
            if key is not None and key in keys[i + 1:]:
                done[key] = result
        save_case(out_folder, case_id, *result, configuration.patch_size)


def _copy_case(data: np.ndarray, seg: np.ndarray | None, properties: dict[str, Any]):
    """A copy for one configuration (preprocessing works in place where it can)."""
    return data.copy(), (seg.copy() if seg is not None else None), copy.deepcopy(properties)


@functools.lru_cache(maxsize=4)
def _cached_plans(plans_file: str, mtime_ns: int) -> Plans:
    """Plans parsed once per worker process (keyed by file and modification time), not once per case."""
    return Plans.load(plans_file)


@functools.lru_cache(maxsize=16)
def _cached_configuration(plans_file: str, mtime_ns: int, configuration_name: str) -> Configuration:
    return _cached_plans(plans_file, mtime_ns).configuration(configuration_name)


_blas_limit: list[Any] = []


def _limit_blas_threads() -> None:
    """In a pool worker: one BLAS thread (the processes already use the cores; more threads only contend)."""
    if _blas_limit:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS keeps its default thread count
        _blas_limit.append(None)
        return
    _blas_limit.append(threadpool_limits(limits=1, user_api="blas"))


def copy_gt_segmentations(dataset_name: str, dataset_json: dict[str, Any],
                          case_ids: Sequence[str] | None = None) -> None:
    """Copy raw label files to nnUNet_preprocessed/DatasetXXX/gt_segmentations (only new or changed ones; only
    ``case_ids`` when given, so that parallel parts copy disjoint shares)."""
    raw_folder = raw_dataset_folder(dataset_name)
    target = preprocessed_dataset_folder(dataset_name) / "gt_segmentations"
    target.mkdir(parents=True, exist_ok=True)
    ending = dataset_json["file_ending"]
    for case_id, case in training_cases(raw_folder, dataset_json).items():
        if case_ids is not None and case_id not in case_ids:
            continue
        dst = target / f"{case_id}{ending}"
        src = Path(case["label"])
        if not dst.exists() or src.stat().st_mtime > dst.stat().st_mtime:
            with publish(dst) as tmp:
                shutil.copy2(src, tmp)
