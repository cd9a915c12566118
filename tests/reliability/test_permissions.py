"""Permissions follow the umask (issue 12, item 7): the whole pipeline under umask 022 writes only 0644 files.

plan_and_preprocess -> train (--npz) -> predict (--save_probabilities) -> evaluate -> export -> install, each an
installed console script run with umask 022; then every file any of them wrote (plans, dataset.json copies,
fingerprint, case files, splits, checkpoints, logs, summaries, predictions, probabilities, the zip, the installed
model) must be ``-rw-r--r--``. Files written through a private temporary file (mkstemp: 0600) were the bug.
"""
from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.reliability.helpers import command_env, make_dirs, script

TRAINER_SOURCE = '''
from nnunet.training.trainer import nnUNetTrainer


class nnUNetTrainerUmask(nnUNetTrainer):
    num_epochs = 1
    num_iterations_per_epoch = 2
    num_val_iterations_per_epoch = 1
'''


def _run(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, umask=0o022)
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


def _modes(*folders: Path) -> dict[str, str]:
    found = {}
    for folder in folders:
        for path in [folder] if folder.is_file() else folder.rglob("*"):
            if path.is_file():
                found[str(path)] = stat.filemode(path.stat().st_mode)
    return found


@pytest.mark.slow
def test_every_file_of_the_pipeline_follows_umask_022(tmp_path):
    from nnunet.demo.synthetic import SyntheticSpec, make_dataset

    dirs = make_dirs(tmp_path / "data")
    make_dataset(dirs["raw"], 961, "Umask", SyntheticSpec(num_cases=5, shape=(16, 16, 16), shape_jitter=0))
    trainers = tmp_path / "trainers"
    trainers.mkdir()
    (trainers / "umask_trainer.py").write_text(TRAINER_SOURCE)
    env = command_env(dirs, nnUNet_extTrainer=str(trainers), nnUNet_n_proc_DA="0")
    raw = dirs["raw"] / "Dataset961_Umask"
    predictions = tmp_path / "predictions"
    zip_file = tmp_path / "model.zip"
    installed = tmp_path / "installed_results"
    installed.mkdir()

    _run([script("nnUNet_plan_and_preprocess"), "-d", "961", "-c", "3d_fullres", "-np", "1", "-npfp", "1",
          "--no_pbar"], env)
    _run([script("nnUNet_train"), "961", "3d_fullres", "0", "-tr", "nnUNetTrainerUmask", "--npz", "-device", "cpu"],
         env)
    test_images = tmp_path / "test_images"  # one case keeps the prediction short
    test_images.mkdir()
    shutil.copy(raw / "imagesTr" / "case_000_0000.nii.gz", test_images)
    reference = tmp_path / "reference"
    reference.mkdir()
    shutil.copy(raw / "labelsTr" / "case_000.nii.gz", reference)
    _run([script("nnUNet_predict"), "-i", str(test_images), "-o", str(predictions), "-d", "961", "-c",
          "3d_fullres", "-f", "0", "-tr", "nnUNetTrainerUmask", "--save_probabilities", "-device", "cpu", "-npp", "1",
          "-nps", "1", "--disable_progress_bar"], env)
    _run([script("nnUNet_evaluate_folder"), str(reference), str(predictions), "-djfile",
          str(raw / "dataset.json"), "-pfile", str(dirs["preprocessed"] / "Dataset961_Umask" / "nnUNetPlans.json"),
          "-np", "1", "--no_pbar"], env)
    _run([script("nnUNet_export_model_to_zip"), "-d", "961", "-o", str(zip_file), "-c", "3d_fullres", "-f", "0",
          "-tr", "nnUNetTrainerUmask"], env)
    _run([script("nnUNet_install_pretrained_model_from_zip"), str(zip_file)], dict(env, nnUNet_results=str(installed)))

    modes = _modes(dirs["preprocessed"], dirs["results"], predictions, zip_file, installed)
    kinds = {Path(p).suffix for p in modes}
    # the walk saw every kind of output, so a missing stage cannot make the test pass
    assert {".json", ".b2nd", ".pkl", ".pth", ".txt", ".gz", ".npz", ".zip"} <= kinds, kinds
    assert any("/installed_results/" in p and p.endswith("checkpoint_final.pth") for p in modes)
    wrong = {p: m for p, m in modes.items() if m != "-rw-r--r--"}
    assert not wrong, wrong
