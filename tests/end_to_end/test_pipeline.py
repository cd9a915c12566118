"""The whole pipeline through the command line on a tiny generated dataset.

nnUNet_plan_and_preprocess -> nnUNet_train (2d and 3d_fullres x 5 folds x 1 short epoch, --npz) ->
nnUNet_find_best_configuration -> the commands of inference_instructions.txt as written (installed console
scripts, in subprocesses) -> nnUNet_evaluate_folder. Both kinds of winner are exercised: whichever wins is run
from the written instructions, the other kind (single model or pair ensemble) from instructions built the same
way for it after nnUNet_determine_postprocessing.

Planning, training and model selection run in this process through the console scripts' main functions (each
subprocess pays ~4 s of imports); only the instruction commands and the final evaluation run as installed
scripts.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet.cli.ensemble import find_best_configuration_main
from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main
from nnunet.cli.train import train_main
from nnunet.demo.instructions import instruction_commands, placeholder_folder
from nnunet.demo.synthetic import make_dataset
from nnunet.ensembling.model_selection import inference_instructions, selected_models
from nnunet.postprocessing.postprocess import apply_postprocessing
from nnunet.postprocessing.pp_file import load_postprocessing

DATASET_ID = 991
DATASET = f"Dataset{DATASET_ID}_EndToEnd"
TRAINER = "nnUNetTrainerEndToEnd"
CONFIGURATIONS = ("2d", "3d_fullres")
FOLDS = (0, 1, 2, 3, 4)
SCRIPTS = Path(sys.executable).parent
# found through nnUNet_extTrainer, in this process and in the prediction subprocesses alike
TRAINER_SOURCE = f'''
from nnunet.training.trainer import nnUNetTrainer


class {TRAINER}(nnUNetTrainer):
    num_epochs = 1
    num_iterations_per_epoch = 2
    num_val_iterations_per_epoch = 1
    plot_progress = False
'''


def _run_script(argv: list[str], env: dict[str, str]) -> str:
    """Run an installed console script by the name written in ``argv[0]``; fail with its output if it fails."""
    assert (SCRIPTS / argv[0]).is_file(), f"console script {argv[0]} is not installed in {SCRIPTS}"
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                                    f"{result.stderr[-3000:]}")
    return result.stdout


def _run_instructions(text: str, input_folder: Path, output_root: Path, env: dict[str, str]) -> list[list[str]]:
    # the instructions name no device (as nnU-Net's): nnUNetv2_predict then uses CUDA, absent on CI machines
    device = None if torch.cuda.is_available() else "cpu"
    commands = instruction_commands(text, input_folder, output_root, device=device)
    for argv in commands:
        _run_script(argv, env)
    return commands


def _cases(folder: Path, ending: str) -> list[str]:
    return sorted(p.name[: -len(ending)] for p in folder.glob(f"*{ending}"))


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _check_output(commands: list[list[str]], output_root: Path, images: Path, test_cases: list[str],
                  is_ensemble: bool) -> None:
    names = [argv[0] for argv in commands]
    out = placeholder_folder("OUTPUT_FOLDER", images, output_root)
    pp = placeholder_folder("OUTPUT_FOLDER_PP", images, output_root)
    assert names == (["nnUNetv2_predict"] * 2 + ["nnUNetv2_ensemble"] if is_ensemble else ["nnUNetv2_predict"]) + [
        "nnUNetv2_apply_postprocessing"]
    assert _cases(out, ".nii.gz") == test_cases and _cases(pp, ".nii.gz") == test_cases
    pp_fns, pp_kwargs = load_postprocessing(commands[-1][commands[-1].index("-pp_pkl_file") + 1])
    for case in test_cases:
        image = sitk.ReadImage(str(images / f"{case}_0000.nii.gz"))
        seg = sitk.ReadImage(str(out / f"{case}.nii.gz"))
        assert seg.GetSize() == image.GetSize() and np.allclose(seg.GetSpacing(), image.GetSpacing())
        seg = sitk.GetArrayFromImage(seg)
        assert set(np.unique(seg)) <= {0, 1, 2}
        np.testing.assert_array_equal(_read(pp / f"{case}.nii.gz"), apply_postprocessing(seg, pp_fns, pp_kwargs))
        if is_ensemble:  # the ensemble is the argmax of the members' averaged probabilities
            members = [placeholder_folder(f"OUTPUT_FOLDER_MODEL_{j}", images, output_root) for j in (1, 2)]
            probabilities = np.mean([np.load(m / f"{case}.npz")["probabilities"] for m in members], axis=0)
            assert probabilities.shape[1:] == seg.shape
            assert np.mean(probabilities.argmax(0) == seg) > 0.999


@pytest.mark.slow
def test_plan_train_select_predict_evaluate(nnunet_dirs, tmp_path, monkeypatch, capsys):
    ext = tmp_path / "trainers"
    ext.mkdir()
    (ext / "end_to_end_trainer.py").write_text(TRAINER_SOURCE)
    for var, value in {"nnUNet_extTrainer": str(ext), "nnUNet_n_proc_DA": "0", "nnUNet_npp": "0",
                       "nnUNet_nps": "0", "nnUNet_def_n_proc": "1", "nnUNet_compile": "false"}.items():
        monkeypatch.setenv(var, value)
    env = {**os.environ, "PATH": f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}"}
    raw = make_dataset(nnunet_dirs["raw"], DATASET_ID, "EndToEnd", "3d_iso", num_cases=8, shape=(24, 24, 24))
    test = make_dataset(tmp_path / "test_raw", DATASET_ID, "EndToEnd", "3d_iso", num_cases=2, shape=(24, 24, 24),
                        seed=7)
    images, test_cases = test / "imagesTr", ["case_000", "case_001"]
    results = nnunet_dirs["results"] / DATASET
    gt = nnunet_dirs["preprocessed"] / DATASET / "gt_segmentations"

    assert plan_and_preprocess_main(["-d", str(DATASET_ID), "-c", *CONFIGURATIONS, "-np", "1", "-npfp", "1",
                                     "--verify_dataset_integrity", "--no_pbar"]) == 0
    # nnUNet_train -device cpu gives torch every core: on a shared 2-core machine that oversubscribes the CPU and
    # slows these tiny networks down many times over (and would leak into the tests run after this one)
    monkeypatch.setattr("nnunet.cli.train._set_threads", lambda device: None)
    for configuration in CONFIGURATIONS:
        for fold in FOLDS:
            assert train_main([str(DATASET_ID), configuration, str(fold), "-tr", TRAINER, "-device", "cpu",
                               "--npz"]) == 0
    models = {c: results / f"{TRAINER}__nnUNetPlans__{c}" for c in CONFIGURATIONS}
    for folder in models.values():
        validated = []
        for fold in FOLDS:
            assert (folder / f"fold_{fold}" / "checkpoint_final.pth").is_file()
            validated += _cases(folder / f"fold_{fold}" / "validation", ".npz")
        assert sorted(validated) == _cases(raw / "labelsTr", ".nii.gz")  # the 5 folds cover every case once
    capsys.readouterr()

    assert find_best_configuration_main([str(DATASET_ID), "-c", *CONFIGURATIONS, "-tr", TRAINER, "-np", "1",
                                         "--no_pbar"]) == 0
    printed = capsys.readouterr().out
    crossval = {c: folder / "crossval_results_folds_0_1_2_3_4" for c, folder in models.items()}
    ensemble_id = f"ensemble___{models['2d'].name}___{models['3d_fullres'].name}___0_1_2_3_4"
    ensemble = results / "ensembles" / ensemble_id
    for folder in (*crossval.values(), ensemble):
        assert _cases(folder, ".nii.gz") == _cases(gt, ".nii.gz")
        summary = json.loads((folder / "summary.json").read_text())
        assert len(summary["metric_per_case"]) == 8
    info = json.loads((results / "inference_information.json").read_text())
    scores = info["all_results"]
    assert sorted(scores) == sorted([models["2d"].name, models["3d_fullres"].name, ensemble_id])  # pair evaluated
    assert scores[ensemble_id] == json.loads((ensemble / "summary.json").read_text())["foreground_mean"]["Dice"]
    assert all(0 <= s <= 1 for s in scores.values())
    best = info["best_model_or_ensemble"]
    winner = max(scores, key=scores.get)
    assert best["result_on_crossval_pre_pp"] == scores[winner]
    assert best["selected_model_or_models"] == selected_models(winner)
    source = ensemble if winner == ensemble_id else crossval[winner.rsplit("__", 1)[1]]
    assert Path(best["postprocessing_file"]) == source / "postprocessing.pkl"
    assert (source / "postprocessing.pkl").is_file() and (source / "postprocessing.json").is_file()
    text = (results / "inference_instructions.txt").read_text()
    assert text in printed

    # the winner, from the instructions exactly as written
    ensemble_won = winner == ensemble_id
    commands = _run_instructions(text, images, tmp_path / "winner", env)
    _check_output(commands, tmp_path / "winner", images, test_cases, ensemble_won)

    # the other kind of winner: its postprocessing, then instructions written the same way
    if ensemble_won:
        other = max((k for k in scores if k != ensemble_id), key=scores.get)
        other_source = crossval[other.rsplit("__", 1)[1]]
    else:
        other, other_source = ensemble_id, ensemble
    _run_script(["nnUNetv2_determine_postprocessing", "-i", str(other_source), "-ref", str(gt), "-np", "1"], env)
    other_info = {**info, "best_model_or_ensemble": {
        "postprocessing_file": str(other_source / "postprocessing.pkl"),
        "some_plans_file": str(other_source / "plans.json"), "selected_model_or_models": selected_models(other)}}
    commands = _run_instructions(inference_instructions(other_info, lambda member: None, 1), images,
                                 tmp_path / "other", env)
    _check_output(commands, tmp_path / "other", images, test_cases, not ensemble_won)

    # evaluation of the final, postprocessed predictions
    summary_file = tmp_path / "test_summary.json"
    _run_script(["nnUNetv2_evaluate_folder", str(test / "labelsTr"),
                 str(placeholder_folder("OUTPUT_FOLDER_PP", images, tmp_path / "winner")),
                 "-djfile", str(source / "dataset.json"), "-pfile", str(source / "plans.json"),
                 "-o", str(summary_file), "-np", "1"], env)
    summary = json.loads(summary_file.read_text())
    assert [Path(c["reference_file"]).name for c in summary["metric_per_case"]] == [f"{c}.nii.gz"
                                                                                    for c in test_cases]
    assert sorted(summary["mean"]) == ["1", "2"]
    for case in summary["metric_per_case"]:
        for label, metrics in case["metrics"].items():
            assert metrics["n_ref"] > 0 and metrics["TP"] + metrics["FN"] == metrics["n_ref"]
            assert 0 <= metrics["Dice"] <= 1
