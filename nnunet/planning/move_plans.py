"""Transfer a plans file from one dataset to another (``nnUNet_move_plans_between_datasets``).

Used for supervised pre-training: the pre-training dataset is preprocessed and trained with the plans of the
fine-tuning dataset, so that both networks have the same architecture and the weights can be transferred.

Only what identifies the dataset changes: ``dataset_name``, ``plans_name``, the ``data_identifier`` of every
configuration (when the plans identifier changes) and ``image_reader_writer`` (chosen for the target's raw
files). Topology, patch and batch size, spacing and the normalization (including the CT intensity statistics of
the source dataset) are kept, exactly as nnU-Net does.
"""
from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

from nnunet import paths
from nnunet.errors import ConfigurationError, DatasetError
from nnunet.io.dataset_json import load_dataset_json, training_cases
from nnunet.io.naming import resolve_dataset_name
from nnunet.registry import READERS
from nnunet.utils.json import atomic_write_bytes, load_json, save_json

logger = logging.getLogger(__name__)


def renamed_data_identifier(identifier: str, source_plans: str, target_plans: str) -> str:
    """``nnUNetPlans_3d_fullres`` -> ``{target}_3d_fullres``; identifiers without the source prefix get
    ``{target}_`` prepended."""
    if identifier.startswith(source_plans):
        return target_plans + identifier[len(source_plans):]
    return f"{target_plans}_{identifier}"


def reader_for_target(dataset_json: dict[str, Any], example_file: str | Path) -> str:
    """Name of the reader/writer for the target's raw files.

    As nnU-Net: ``overwrite_image_reader_writer`` wins if it names a known class; otherwise each reader in the
    auto-detection order tries to read ``example_file`` and the first that succeeds is taken, whether or not it
    claims the file ending.
    """
    from nnunet.io.readers import AUTO_ORDER

    name = dataset_json.get("overwrite_image_reader_writer")
    if name not in (None, "None") and name in READERS:
        return name
    errors = []
    for candidate in AUTO_ORDER:
        if candidate not in READERS:
            continue
        try:
            READERS.get(candidate)().read_images([example_file])
            return candidate
        except Exception as e:  # this reader cannot read the file: try the next one
            errors.append(f"{candidate}: {e}")
    raise DatasetError(f"No image reader/writer can read {example_file} (file_ending "
                       f"{dataset_json.get('file_ending')!r}). Tried: {'; '.join(errors)}")


def _check_channels(plans: dict[str, Any], n_channels: int, source_file: Path, target_json: Path) -> None:
    """The plans normalise one channel per entry of ``normalization_schemes``; the target must have as many."""
    found = {}
    props = plans.get("foreground_intensity_properties_per_channel")
    if props is None:
        props = plans.get("foreground_intensity_properties_by_modality")
    if props is not None:
        found["foreground_intensity_properties_per_channel"] = len(props)
    for name, config in plans.get("configurations", {}).items():
        schemes = config.get("normalization_schemes")
        if schemes is not None:
            found[f"configurations.{name}.normalization_schemes"] = len(schemes)
    wrong = {k: v for k, v in found.items() if v != n_channels}
    if wrong:
        detail = ", ".join(f"{k} has {v}" for k, v in wrong.items())
        raise ConfigurationError(
            f"Cannot move the plans {source_file}: they are made for a different number of input channels than the "
            f"target dataset ({target_json} has {n_channels} channel(s); {detail}). Plans can only be shared "
            f"between datasets with the same channels.")


def move_plans_between_datasets(source_dataset_name_or_id: int | str, target_dataset_name_or_id: int | str,
                                source_plans_identifier: str, target_plans_identifier: str | None = None) -> Path:
    """Copy ``{source_plans_identifier}.json`` of the source dataset to the target dataset.

    Args:
        source_dataset_name_or_id: dataset whose plans are copied (needs ``nnUNet_preprocessed/SOURCE/{sp}.json``).
        target_dataset_name_or_id: dataset that receives the plans (needs its raw folder with dataset.json and
            at least one training case, to pick the image reader).
        source_plans_identifier: plans file name without ``.json``, e.g. ``nnUNetPlans``.
        target_plans_identifier: name of the new plans file; default: the source identifier (not recommended for
            default names such as ``nnUNetPlans``, which would clash with the target's own plans).

    Returns:
        Path of the written plans file ``nnUNet_preprocessed/TARGET/{tp}.json``.

    Raises:
        ConfigurationError: missing source plans, channel-count mismatch, or a different plans file with the
            target name already exists (it is never overwritten).
        DatasetError: the target raw dataset is missing or has no readable training case.
    """
    source = resolve_dataset_name(source_dataset_name_or_id)
    target = resolve_dataset_name(target_dataset_name_or_id)
    target_plans_identifier = target_plans_identifier or source_plans_identifier
    source_folder = paths.preprocessed_root() / source
    if not source_folder.is_dir():
        raise ConfigurationError(f"Cannot move plans: the preprocessed folder of the source dataset ({source_folder}) "
                                 f"does not exist. Run nnUNet_plan_and_preprocess (or nnUNet_plan_experiment) for "
                                 f"{source} first.")
    source_file = source_folder / f"{source_plans_identifier}.json"
    if not source_file.is_file():
        available = sorted(p.stem for p in source_folder.glob("*.json")
                           if p.name not in ("dataset.json", "dataset_fingerprint.json", "splits_final.json"))
        raise ConfigurationError(f"Source plans {source_file} not found. Run the experiment planning for {source} "
                                 f"first, or check -sp. Plans files there: {', '.join(available) or 'none'}.")
    target_file = paths.preprocessed_root() / target / f"{target_plans_identifier}.json"
    if target_file.resolve() == source_file.resolve():
        raise ConfigurationError(f"Source and target are the same file ({source_file}); choose another target "
                                 f"dataset or a new -tp.")

    raw_folder = paths.raw_root() / target
    raw_json = raw_folder / "dataset.json"
    if not raw_json.is_file():
        raise DatasetError(f"Cannot move plans to {target}: {raw_json} not found. The target dataset must exist in "
                           f"nnUNet_raw (its files decide the image reader/writer).")
    dataset_json = load_dataset_json(raw_json)
    cases = training_cases(raw_folder, dataset_json)
    if not cases:
        raise DatasetError(f"Cannot move plans to {target}: no training cases found in {raw_folder} "
                           f"(file ending {dataset_json['file_ending']!r}).")
    first = next(iter(cases.values()))
    if not first["images"]:
        raise DatasetError(f"Cannot move plans to {target}: the first training case has no image files.")

    source_plans = load_json(source_file)
    _check_channels(source_plans, len(dataset_json["channel_names"]), source_file, raw_json)
    plans = copy.deepcopy(source_plans)
    plans["dataset_name"] = target
    if target_plans_identifier != source_plans_identifier:
        for config in plans.get("configurations", {}).values():
            if "data_identifier" in config:
                config["data_identifier"] = renamed_data_identifier(config["data_identifier"],
                                                                    source_plans_identifier, target_plans_identifier)
    plans["image_reader_writer"] = reader_for_target(dataset_json, first["images"][0])
    plans["plans_name"] = target_plans_identifier

    if target_file.is_file():
        try:
            existing = json.loads(target_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = None
        if existing != plans:
            raise ConfigurationError(f"{target_file} already exists and differs from the moved plans; it is not "
                                     f"overwritten. Choose another -tp or delete the file first.")
        logger.info("%s already holds these plans; nothing to do.", target_file)
        return target_file
    save_json(plans, target_file, sort_keys=False, indent=4)
    # planning copies dataset.json into the preprocessed folder; a dataset that only had its fingerprint extracted
    # lacks it, and preprocessing with the moved plans needs it
    preprocessed_json = target_file.parent / "dataset.json"
    if not preprocessed_json.is_file():
        atomic_write_bytes(preprocessed_json, raw_json.read_bytes())
    logger.info(f"Plans {source}/{source_plans_identifier} -> {target}/{target_plans_identifier}: {target_file} "
          f"(image reader {plans['image_reader_writer']}).")
    return target_file
