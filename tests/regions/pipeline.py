"""The whole pipeline on tiny region / sparse-annotation datasets, through the console-script entry points.

``run_pipeline`` generates a dataset with :mod:`nnunet.demo.synthetic`, then runs plan_and_preprocess, a few
training iterations (``RegionsTinyTrainer``), prediction of a dense test set and evaluation, and returns where
everything is. Everything runs in this process (``-np 1``, ``-npp 0``, ``-nps 0``, no augmentation workers).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.demo.synthetic import PRESETS, make_dataset
from nnunet.io.labels import LabelManager
from nnunet.registry import TRAINERS
from nnunet.training.trainer import nnUNetTrainer
from tests.helpers import register_classes

#: preset name -> dataset id
KINDS = {"3d_regions": 811, "3d_sparse": 812, "3d_regions_sparse": 813}
TRAINER = "RegionsTinyTrainer"
CONFIG = "3d_fullres"


class RegionsTinyTrainer(nnUNetTrainer):
    """One epoch of three iterations: enough to exercise loss, pseudo Dice, checkpointing and final validation.

    Not registered at import: :func:`run_pipeline` registers it while it runs, the tests of this package by
    the ``register`` fixture (tests/regions/conftest.py)."""

    num_epochs = 1
    num_iterations_per_epoch = 3
    num_val_iterations_per_epoch = 1
    plot_progress = False


@dataclass
class Pipeline:
    kind: str
    dataset_id: int
    dataset_name: str
    root: Path
    raw: Path              # raw dataset folder (sparse labels for the *_sparse kinds)
    test_images: Path
    test_labels: Path      # dense reference labels of the test cases
    test_labels_sparse: Path | None  # the same labels sparsified (ignore kinds only)
    predictions: Path

    @property
    def preprocessed(self) -> Path:
        return self.root / "preprocessed" / self.dataset_name

    @property
    def model(self) -> Path:
        return self.root / "results" / self.dataset_name / f"{TRAINER}__nnUNetPlans__{CONFIG}"

    @property
    def label_manager(self) -> LabelManager:
        spec = PRESETS[self.kind]
        return LabelManager(spec.labels, list(spec.regions_class_order) if spec.regions_class_order else None)

    def set_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for var, sub in (("nnUNet_raw", "raw"), ("nnUNet_preprocessed", "preprocessed"),
                         ("nnUNet_results", "results")):
            monkeypatch.setenv(var, str(self.root / sub))
        monkeypatch.setenv("nnUNet_n_proc_DA", "0")
        monkeypatch.setenv("nnUNet_def_n_proc", "1")


def read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def run_pipeline(root: Path, kind: str) -> Pipeline:
    from nnunet.cli.evaluate import evaluate_folder_main
    from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main
    from nnunet.cli.predict import predict_main
    from nnunet.cli.train import train_main

    dataset_id = KINDS[kind]
    name = f"{kind.title().replace('_', '')}"
    sparse = PRESETS[kind].annotated_slice_step > 0
    p = Pipeline(kind, dataset_id, f"Dataset{dataset_id}_{name}", root, Path(), Path(), Path(), None,
                 root / "predictions")
    for sub in ("raw", "preprocessed", "results"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        p.set_env(mp)
        register_classes(mp, TRAINERS, RegionsTinyTrainer)  # -tr RegionsTinyTrainer, for this run only
        # the intensity statistics play no part here; 1e8 foreground samples would dominate the runtime
        mp.setattr("nnunet.fingerprint.extract.NUM_FOREGROUND_SAMPLES", 1e5)
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            p.raw = make_dataset(root / "raw", dataset_id, name, kind, num_cases=5)
            test = make_dataset(root / "test", dataset_id, name, kind, num_cases=2, seed=7, annotated_slice_step=0)
            p.test_images, p.test_labels = test / "imagesTr", test / "labelsTr"
            if sparse:  # same seed: same cases, labels sparsified
                p.test_labels_sparse = make_dataset(root / "test_sparse", dataset_id, name, kind, num_cases=2,
                                                    seed=7) / "labelsTr"
            _check(plan_and_preprocess_main(["-d", str(dataset_id), "-c", CONFIG, "-np", "1", "-npfp", "1",
                                             "--verify_dataset_integrity", "--no_pbar"]))
            _check(train_main([str(dataset_id), CONFIG, "0", "-tr", TRAINER, "-device", "cpu"]))
            _check(predict_main(["-i", str(p.test_images), "-o", str(p.predictions), "-d", str(dataset_id), "-c",
                                 CONFIG, "-f", "0", "-tr", TRAINER, "-device", "cpu", "--save_probabilities",
                                 "--disable_tta", "--disable_progress_bar", "-npp", "0", "-nps", "0"]))
            common = ["-djfile", str(p.preprocessed / "dataset.json"), "-pfile",
                      str(p.preprocessed / "nnUNetPlans.json"), "-np", "1", "--no_pbar"]
            _check(evaluate_folder_main([str(p.test_labels), str(p.predictions), *common]))
            if sparse:
                _check(evaluate_folder_main([str(p.test_labels_sparse), str(p.predictions), "-o",
                                             str(p.predictions / "summary_sparse.json"), *common]))
        finally:
            torch.set_num_threads(threads)
    return p


def _check(rc: int | None) -> None:
    if rc:
        raise AssertionError(f"command failed with exit code {rc}")
