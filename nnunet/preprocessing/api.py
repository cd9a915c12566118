"""Python API of the preprocessing stage."""
from __future__ import annotations

import logging
import warnings
from typing import Sequence

from nnunet.errors import Interrupted, NnunetError
from nnunet.io.naming import preprocessed_dataset_folder, raw_dataset_folder, resolve_dataset_name
from nnunet.io.dataset_json import load_dataset_json, training_cases
from nnunet.planning.plans import PREPROCESSING_KEYS, Plans
from nnunet.planning.plans_rules import num_image_channels
from nnunet.preprocessing.staging import shard
from nnunet.registry import PREPROCESSORS

logger = logging.getLogger(__name__)

DEFAULT_NUM_PROCESSES = {"2d": 8, "3d_fullres": 4, "3d_lowres": 8}


def shared_data_conflicts(plans: Plans, configuration_name: str) -> list[str]:
    """Other configurations that use the same data_identifier but would preprocess differently.

    Typical cause: a configuration added by hand that changes ``spacing`` but inherits the parent's
    ``data_identifier``; preprocessing it replaces the parent's data with data the parent was not planned for.
    """
    own = plans.configuration(configuration_name)
    conflicts = []
    for other_name in plans.available_configurations:
        if other_name == configuration_name:
            continue
        try:
            other = plans.configuration(other_name)
        except NnunetError:
            continue  # broken configurations are reported when they are used
        if other.get("data_identifier") != own.data_identifier:
            continue
        differing = [k for k in PREPROCESSING_KEYS if other.get(k) != own.get(k)]
        if differing:
            conflicts.append(f"{other_name} (differs in {', '.join(differing)})")
    return conflicts


def processes_per_configuration(configurations: Sequence[str], num_processes: Sequence[int] | int | None) -> list[int]:
    """One process count per configuration: defaults, one value for all, or one value each."""
    if num_processes is None:
        return [DEFAULT_NUM_PROCESSES.get(c, 4) for c in configurations]
    if isinstance(num_processes, int):
        num_processes = [num_processes]
    if len(num_processes) == 1:
        return list(num_processes) * len(configurations)
    if len(num_processes) != len(configurations):
        raise NnunetError(f"-np needs one value or one per configuration ({len(configurations)} for "
                          f"{list(configurations)}), got {list(num_processes)}.")
    return list(num_processes)


def preprocess_dataset(dataset: str | int, plans_identifier: str = "nnUNetPlans",
                       configurations: Sequence[str] = ("2d", "3d_fullres", "3d_lowres"),
                       num_processes: Sequence[int] | int | None = None, verbose: bool = False,
                       show_progress: bool = True, num_parts: int = 1, part_id: int = 0) -> None:
    """Preprocess the configurations of one dataset (or part ``part_id`` of ``num_parts`` of its cases).

    Configurations that use the same preprocessor run in one pass over the cases (each case is read once), with
    the smallest of their process counts so that no configuration gets more workers than it was given.
    """
    name = resolve_dataset_name(dataset)
    folder = preprocessed_dataset_folder(name)
    plans = Plans.load(folder / f"{plans_identifier}.json", dataset_name=name)
    channels = num_image_channels(load_dataset_json(folder / "dataset.json"))
    counts = processes_per_configuration(configurations, num_processes)
    groups: dict[str, tuple[list[str], list[int]]] = {}
    for configuration_name, n in zip(configurations, counts):
        if configuration_name not in plans.available_configurations:
            logger.info(f"{name}: configuration {configuration_name} is not in {plans_identifier}; skipped.")
            continue
        configuration = plans.checked_configuration(configuration_name, "preprocess", channels)
        _warn_about_shared_data(name, plans, configuration_name)
        logger.info(f"{name}: preprocessing {configuration_name} -> {configuration.data_identifier}")
        names, ns = groups.setdefault(configuration.preprocessor_name, ([], []))
        names.append(configuration_name)
        ns.append(n)
    for preprocessor_name, (names, ns) in groups.items():
        preprocessor = PREPROCESSORS.get(preprocessor_name)(verbose=verbose)
        if _runs_one_configuration_at_a_time(preprocessor):
            for configuration_name, n in zip(names, ns):
                logger.info(f"{name}: {configuration_name} with {n} processes")
                kwargs = {"num_parts": num_parts, "part_id": part_id} if num_parts > 1 else {}
                preprocessor.run(name, configuration_name, plans_identifier, n, show_progress=show_progress, **kwargs)
        else:
            logger.info(f"{name}: {', '.join(names)} in one pass over the cases with {min(ns)} processes")
            preprocessor.run_configurations(name, names, plans_identifier, min(ns), show_progress=show_progress,
                                            num_parts=num_parts, part_id=part_id)
    _copy_gt_segmentations(name, num_parts, part_id)


def _copy_gt_segmentations(dataset_name: str, num_parts: int, part_id: int) -> None:
    """This part's share of gt_segmentations (parts running at once copy disjoint files)."""
    from nnunet.preprocessing.preprocessor import copy_gt_segmentations

    dataset_json = load_dataset_json(preprocessed_dataset_folder(dataset_name) / "dataset.json")
    cases = training_cases(raw_dataset_folder(dataset_name), dataset_json)
    copy_gt_segmentations(dataset_name, dataset_json, shard(list(cases), num_parts, part_id))


def _runs_one_configuration_at_a_time(preprocessor) -> bool:
    """A preprocessor that overrides ``run`` (the per-configuration entry point) is called through it."""
    from nnunet.preprocessing.preprocessor import DefaultPreprocessor

    return type(preprocessor).run is not DefaultPreprocessor.run


def _warn_about_shared_data(dataset_name: str, plans: Plans, configuration_name: str) -> None:
    conflicts = shared_data_conflicts(plans, configuration_name)
    if conflicts:
        data_identifier = plans.configuration(configuration_name).data_identifier
        warnings.warn(f"{dataset_name}: configuration {configuration_name} writes {data_identifier}, which "
                      f"{'; '.join(conflicts)} also use(s) with different preprocessing settings. Its data will "
                      f"replace theirs. Give {configuration_name} its own data_identifier in the plans.",
                      stacklevel=3)


def preprocess(dataset_ids: Sequence[str | int], plans_identifier: str = "nnUNetPlans",
               configurations: Sequence[str] = ("2d", "3d_fullres", "3d_lowres"),
               num_processes: Sequence[int] | int | None = None, verbose: bool = False,
               show_progress: bool = True, num_parts: int = 1, part_id: int = 0) -> None:
    """Preprocess the given configurations of each dataset (see :class:`DefaultPreprocessor`).

    Args:
        dataset_ids: dataset ids or names.
        plans_identifier: plans file name without ``.json``.
        configurations: configuration names; those missing from the plans are skipped with a message.
        num_processes: one count for all configurations, one per configuration, or None for the defaults
            (2d: 8, 3d_fullres: 4, 3d_lowres: 8, others: 4).
        verbose: passed to the preprocessor.
        show_progress: one progress bar per pass.
        num_parts, part_id: preprocess only every ``num_parts``-th case starting at ``part_id`` (sorted case
            ids), into the same staging folder as the other parts; the part that completes the last case swaps
            the new folders in (see :mod:`nnunet.preprocessing.staging`).
    """
    processes_per_configuration(configurations, num_processes)  # a bad -np fails before any work
    shard([], num_parts, part_id)  # and so does a bad -num_parts / -part_id
    try:
        for dataset in dataset_ids:
            preprocess_dataset(dataset, plans_identifier, configurations, num_processes, verbose, show_progress,
                               num_parts, part_id)
    except KeyboardInterrupt:
        raise Interrupted("The existing preprocessed data is untouched; the cases written so far are kept in the "
                          "staging folder(s) (<data_identifier>.staging) and reused when you run the same command "
                          "again.") from None
