"""nnUNet_find_best_configuration with a single trained fold (issue 16, item 5).

Only fold 0 of each configuration is trained (the other folds' folders are missing, as after a quick experiment).
The default (-f 0 1 2 3 4) fails with one line that points to ``-f 0``; with ``-f 0`` the selection runs, and
the caveat that postprocessing is determined on part of the cases is one line, not a Python warning with its
source file and code line. Runs the installed console script: only a subprocess shows what a user sees on stderr
(pytest captures warnings in-process).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.ensembling.trained_models import CASES, DATASET, make_trained_models

SCRIPT = Path(sys.executable).parent / "nnUNet_find_best_configuration"


def _one_fold_trained(dirs) -> None:
    folders = make_trained_models(dirs, {"2d": 1.6, "3d_fullres": 0.5}, folds=(0, 1))
    for model in folders.values():
        shutil.rmtree(model / "fold_1")


def _run(dirs, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_raw=str(dirs["raw"]), nnUNet_preprocessed=str(dirs["preprocessed"]),
               nnUNet_results=str(dirs["results"]), OMP_NUM_THREADS="1")
    return subprocess.run([str(SCRIPT), "950", "-c", "2d", "3d_fullres", "-np", "1", "--no_pbar", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_missing_folds_error_points_to_the_folds_that_exist(nnunet_dirs):
    _one_fold_trained(nnunet_dirs)
    result = _run(nnunet_dirs)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnunet: error: Fold 1 of ")
    assert "-f 0 (folds with validation results in nnUNetTrainer__nnUNetPlans__2d)" in lines[0]
    assert not (nnunet_dirs["results"] / DATASET / "inference_information.json").exists()


def test_one_fold_selection_with_a_one_line_caveat(nnunet_dirs):
    _one_fold_trained(nnunet_dirs)
    result = _run(nnunet_dirs, "-f", "0")
    assert result.returncode == 0, result.stderr
    caveats = [line for line in result.stderr.splitlines() if "reference cases" in line]
    assert caveats == [f"nnunet: warning: only {len(CASES) // 2} of the {len(CASES)} reference cases in "
                       f"{nnunet_dirs['preprocessed'] / DATASET / 'gt_segmentations'} have a prediction in "
                       f"{nnunet_dirs['results'] / DATASET}/nnUNetTrainer__nnUNetPlans__3d_fullres/"
                       f"crossval_results_folds_0 (e.g. fewer than 5 cross-validation folds): the postprocessing is "
                       f"determined on those cases only."]
    assert ".py:" not in result.stderr and "warnings.warn" not in result.stderr  # no source location, no code line
    info = json.loads((nnunet_dirs["results"] / DATASET / "inference_information.json").read_text())
    assert info["folds"] == [0]
    text = (nnunet_dirs["results"] / DATASET / "inference_instructions.txt").read_text()
    assert "-f 0 -tr nnUNetTrainer" in text
