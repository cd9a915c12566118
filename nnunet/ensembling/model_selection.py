"""Choosing the best configuration (or pair ensemble) from cross-validation results.

Pure helpers (identifiers, the choice rule, the inference instructions) plus :func:`find_best_configuration`,
which runs them over the trained model folders in ``nnUNet_results``.
"""
from __future__ import annotations

import logging
import math
import os
import shlex
from pathlib import Path
from typing import Any, Callable, Sequence

from nnunet import paths
from nnunet.constants import default_num_processes
from nnunet.errors import NnunetError
# a model's identifier is its folder's name (kept under these names for the nnunetv2 namespace and the tests)
from nnunet.io.dataset_json import label_manager
from nnunet.io.naming import resolve_dataset_name
from nnunet.models.folder import model_folder_name as model_identifier
from nnunet.models.folder import parse_model_folder_name as parse_model_identifier
from nnunet.planning.plans import Plans
from nnunet.utils.json import atomic_write_bytes, load_json, save_json

logger = logging.getLogger(__name__)


DEFAULT_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")
ENSEMBLE_PREFIX = "ensemble"


def ensemble_identifier(model_folder_1: str | os.PathLike, model_folder_2: str | os.PathLike,
                        folds: Sequence[int | str]) -> str:
    """``ensemble___{model1}___{model2}___{folds}`` (folds joined by ``_``)."""
    from nnunet.evaluation.accumulate_cv_results import folds_to_string

    return "___".join([ENSEMBLE_PREFIX, os.path.basename(str(model_folder_1).rstrip("/")),
                       os.path.basename(str(model_folder_2).rstrip("/")), folds_to_string(folds)])


def parse_ensemble_identifier(identifier: str) -> tuple[list[str], str]:
    """``([model identifiers], folds string)`` of an ensemble folder name."""
    prefix, *models, folds = os.path.basename(identifier).split("___")
    if prefix != ENSEMBLE_PREFIX or not models:
        raise NnunetError(f"{identifier!r} is not an ensemble folder name.")
    return models, folds


def candidate_models(trainers: Sequence[str], configurations: Sequence[str], plans: Sequence[str]
                     ) -> list[dict[str, str]]:
    """Every trainer x configuration x plans combination, in that nesting order."""
    return [{"plans": p, "configuration": c, "trainer": t} for t in trainers for c in configurations for p in plans]


def pick_best(results: dict[str, float]) -> str:
    """Identifier with the highest score; on an exact tie the first one (single models come before ensembles)."""
    if not results:
        raise NnunetError("No trained model to choose from.")
    scores = [s for s in results.values() if not math.isnan(s)]
    if not scores:
        raise NnunetError("Every candidate has a NaN cross-validation Dice (no foreground anywhere?); cannot choose.")
    best = max(scores)
    return next(k for k, v in results.items() if v == best)


def selected_models(best_identifier: str) -> list[dict[str, str]]:
    """The models making up the winner, as ``{configuration, trainer, plans_identifier}`` dicts."""
    ids = parse_ensemble_identifier(best_identifier)[0] if best_identifier.startswith(ENSEMBLE_PREFIX + "___") \
        else [best_identifier]
    out = []
    for identifier in ids:
        trainer, plans, configuration = parse_model_identifier(identifier)
        out.append({"configuration": configuration, "trainer": trainer, "plans_identifier": plans})
    return out


def predict_command(dataset: str | int, configuration: str, plans: str, trainer: str, folds: Sequence[int | str],
                    output_folder: str, input_folder: str = "INPUT_FOLDER", save_probabilities: bool = False,
                    prev_stage_folder: str | None = None) -> str:
    """One ``nnUNetv2_predict`` command line."""
    command = (f"nnUNetv2_predict -d {shlex.quote(str(dataset))} -i {input_folder} -o {output_folder} "
               f"-f {' '.join(map(str, folds))} -tr {trainer} -c {configuration} -p {plans}")
    if prev_stage_folder is not None:
        command += f" -prev_stage_predictions {prev_stage_folder}"
    if save_probabilities:
        command += " --save_probabilities"
    return command


def inference_instructions(info: dict[str, Any], previous_stage: Callable[[dict[str, str]], str | None],
                           num_processes: int = 8) -> str:
    """The text of inference_instructions.txt for an ``inference_information.json`` dict.

    Args:
        info: as written by :func:`find_best_configuration`.
        previous_stage: gives the configuration a selected model needs predictions of first (the low-resolution
            stage of a cascade), or None. nnU-Net forgets this step; we write it.
        num_processes: the ``-np`` printed for ensembling and postprocessing.
    """
    best = info["best_model_or_ensemble"]
    members = best["selected_model_or_models"]
    is_ensemble = len(members) > 1
    dataset, folds = info["dataset_name_or_id"], info["folds"]
    lines = ["***Run inference like this:***", ""]
    if is_ensemble:
        lines += ["An ensemble won! Predict with each of its members first:", ""]
    outputs = []
    for j, member in enumerate(members, start=1):
        output = f"OUTPUT_FOLDER_MODEL_{j}" if is_ensemble else "OUTPUT_FOLDER"
        outputs.append(output)
        prev_config = previous_stage(member)
        prev_folder = None
        if prev_config is not None:
            prev_folder = f"OUTPUT_FOLDER_PREV_STAGE_MODEL_{j}" if is_ensemble else "OUTPUT_FOLDER_PREV_STAGE"
            lines.append(predict_command(dataset, prev_config, member["plans_identifier"], member["trainer"], folds,
                                         prev_folder))
        lines.append(predict_command(dataset, member["configuration"], member["plans_identifier"], member["trainer"],
                                     folds, output, save_probabilities=is_ensemble, prev_stage_folder=prev_folder))
    if is_ensemble:
        lines += ["", "Then ensemble them:", "",
                  f"nnUNetv2_ensemble -i {' '.join(outputs)} -o OUTPUT_FOLDER -np {num_processes}"]
    lines += ["", "***Once inference is completed, run postprocessing like this:***", "",
              f"nnUNetv2_apply_postprocessing -i OUTPUT_FOLDER -o OUTPUT_FOLDER_PP -pp_pkl_file "
              f"{shlex.quote(best['postprocessing_file'])} -np {num_processes} "
              f"-plans_json {shlex.quote(best['some_plans_file'])}"]
    return "\n".join(lines) + "\n"


def find_best_configuration(dataset_name_or_id: str | int,
                            allowed_trained_models: Sequence[dict[str, str]] | None = None,
                            allow_ensembling: bool = True, num_processes: int | None = None,
                            overwrite: bool = True, folds: Sequence[int | str] = (0, 1, 2, 3, 4),
                            show_progress: bool = False) -> dict[str, Any]:
    """Evaluate each trained model's cross-validation (and each pair ensemble), pick the best, determine its
    postprocessing, and write ``inference_information.json`` and ``inference_instructions.txt`` into
    ``nnUNet_results/{dataset}``.

    Configurations absent from a plans file are skipped; a configuration present in the plans but never trained
    is an error.
    """
    from nnunet.utils.pool import shared_pool

    num_processes = default_num_processes() if num_processes is None else num_processes
    with shared_pool(num_processes):
        return _find_best(dataset_name_or_id, allowed_trained_models, allow_ensembling, num_processes, overwrite,
                          folds, show_progress)


def _find_best(dataset_name_or_id: str | int, allowed_trained_models: Sequence[dict[str, str]] | None,
               allow_ensembling: bool, num_processes: int, overwrite: bool, folds: Sequence[int | str],
               show_progress: bool) -> dict[str, Any]:
    from nnunet.ensembling.ensemble import ensemble_crossvalidations
    from nnunet.evaluation.accumulate_cv_results import accumulate_cv_results, default_merged_folder
    from nnunet.evaluation.evaluate import compute_metrics_on_folder, evaluated_labels, load_summary_json
    from nnunet.io.readers import reader_class
    from nnunet.postprocessing.postprocess import determine_postprocessing

    dataset = resolve_dataset_name(dataset_name_or_id)
    results_dir = paths.results_root() / dataset
    gt = paths.preprocessed_root() / dataset / "gt_segmentations"
    if allowed_trained_models is None:
        allowed_trained_models = candidate_models(["nnUNetTrainer"], DEFAULT_CONFIGURATIONS, ["nnUNetPlans"])

    models = []
    for m in allowed_trained_models:
        plans = Plans.load(paths.preprocessed_root() / dataset / f"{m['plans']}.json")
        if m["configuration"] not in plans.available_configurations:
            logger.info("Configuration %s is not in plans %s; skipping it.", m["configuration"], m["plans"])
            continue
        folder = results_dir / model_identifier(m["trainer"], m["plans"], m["configuration"])
        if not folder.is_dir():
            raise NnunetError(f"Trained model {m} has no output folder {folder}. Train it first (with --npz if "
                              f"configurations are to be ensembled).")
        models.append({**m, "folder": folder})
    if not models:
        raise NnunetError("None of the requested configurations exists in the plans.")

    all_results: dict[str, dict[str, Any]] = {}
    for m in models:
        merged = accumulate_cv_results(m["folder"], default_merged_folder(m["folder"], folds), folds, num_processes,
                                       overwrite, show_progress=show_progress)
        all_results[m["folder"].name] = {
            "source": merged, "result": load_summary_json(merged / "summary.json")["foreground_mean"]["Dice"]}

    if allow_ensembling:
        for i in range(len(models)):
            for j in range(i + 1, len(models)):
                m1, m2 = models[i]["folder"], models[j]["folder"]
                identifier = ensemble_identifier(m1, m2, folds)
                out = results_dir / "ensembles" / identifier
                ensemble_crossvalidations([m1, m2], out, folds, num_processes, overwrite, show_progress)
                ds = load_json(m1 / "dataset.json")
                lm = label_manager(ds)
                compute_metrics_on_folder(gt, out, out / "summary.json",
                                          reader_class(load_json(m1 / "plans.json")["image_reader_writer"])(),
                                          ds["file_ending"], evaluated_labels(lm), lm.ignore_label, num_processes,
                                          show_progress=show_progress)
                all_results[identifier] = {
                    "source": out, "result": load_summary_json(out / "summary.json")["foreground_mean"]["Dice"]}

    scores = {k: v["result"] for k, v in all_results.items()}
    best_key = pick_best(scores)
    logger.info("\n***All results:***")
    for k, v in scores.items():
        logger.info("%s: %s", k, v)
    logger.info("\n*Best*: %s: %s\n", best_key, scores[best_key])
    logger.info("***Determining postprocessing for the best model/ensemble***")
    source = Path(all_results[best_key]["source"])
    determine_postprocessing(source, gt, source / "plans.json", source / "dataset.json", num_processes,
                             keep_postprocessed_files=True, show_progress=show_progress)

    info = {
        "folds": list(folds),
        "dataset_name_or_id": dataset,
        "considered_models": [{k: v for k, v in m.items() if k != "folder"} for m in models],
        "ensembling_allowed": allow_ensembling,
        "all_results": scores,
        "best_model_or_ensemble": {
            "result_on_crossval_pre_pp": scores[best_key],
            "result_on_crossval_post_pp": load_json(source / "postprocessed" / "summary.json")["foreground_mean"][
                "Dice"],
            "postprocessing_file": str(source / "postprocessing.pkl"),
            "some_plans_file": str(source / "plans.json"),
            "selected_model_or_models": selected_models(best_key),
        },
    }
    save_json(info, results_dir / "inference_information.json", allow_nan=True)  # may hold NaN Dice, as nnU-Net

    def previous_stage(member: dict[str, str]) -> str | None:
        folder = results_dir / model_identifier(member["trainer"], member["plans_identifier"],
                                                member["configuration"])
        return Plans.load(folder / "plans.json").configuration(member["configuration"]).previous_stage_name

    text = inference_instructions(info, previous_stage, default_num_processes())
    logger.info("\n%s", text)
    atomic_write_bytes(results_dir / "inference_instructions.txt", text.encode("utf-8"))
    return info
