"""Every trainer class of nnU-Net 2.8.1 trains (1 epoch x 2 iterations) on tiny 2-D and 3-D data on the CPU,
validates, and predicts through its model folder with the network the trainer built.

The prediction check loads the trained fold with the predictor (which builds the network through the trainer
class named in the checkpoint) and compares its logits for a validation case with those of the trainer's own
network: equal logits mean inference rebuilt the same network (BatchNorm for nnUNetTrainerBN, Primus for the
Primus trainers, ...). The trainer names come from the reference fixture (``reference_trainers.json``).

Not trained here (their set-up is compared in test_trainer_registry.py): the abstract Primus base, set-ups that
fail in nnU-Net too (Primus on 2-D), and the Primus sizes B/M/L and the 96^3 / 48^3 ones, which need GBs of
memory and minutes per step on a CPU.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nnunet.inference.predictor import nnUNetPredictor
from nnunet.networks.from_plans import unwrap
from nnunet.training.data.dataset import PreprocessedDataset
from nnunet.training.run import get_trainer_from_args
from tests.helpers import FIXTURES
from tests.training.helpers import make_2d_dataset, make_3d_dataset
from tests.training.helpers import is_heavy

torch.set_num_threads(1)
REF = json.loads((FIXTURES / "training" / "reference_trainers.json").read_text())
DATASETS = {"2d": ("Dataset902_Tiny2d", "2d", "2d"), "3d": ("Dataset901_Tiny", "3d_fullres", "3d")}
CASES = [(name, dim) for name in sorted(REF["trainers"]) for dim in DATASETS
         if "error" not in REF["trainers"][name]["configurations"][DATASETS[dim][2]] and not is_heavy(name)]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry_training")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
            (root / var).mkdir()
            mp.setenv(var, str(root / var))
        mp.setenv("nnUNet_n_proc_DA", "0")
        mp.setenv("nnUNet_def_n_proc", "1")
        pre = root / "nnUNet_preprocessed"
        make_3d_dataset(pre, n_cases=3, shape=(16, 16, 16), patch=(16, 16, 16))
        make_2d_dataset(pre, n_cases=3, shape=(2, 20, 20), patch=(16, 16))
        for name, *_ in DATASETS.values():  # one validation case keeps the final validation short
            split = [{"train": ["case_000", "case_001"], "val": ["case_002"]}]
            (pre / name / "splits_final.json").write_text(json.dumps(split))
            ds = json.loads((pre / name / "dataset.json").read_text())
            (pre / name / "dataset.json").write_text(json.dumps({**ds, "numTraining": 3}))
        yield root


def _logits(predictor: nnUNetPredictor, data: np.ndarray) -> torch.Tensor:
    return predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data))


@pytest.mark.slow
@pytest.mark.parametrize("name, dim", CASES)
def test_trains_validates_and_predicts(tiny_data, name, dim):
    dataset, configuration, _ = DATASETS[dim]
    trainer = get_trainer_from_args(dataset, configuration, 0, name, device=torch.device("cpu"))
    trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch = 1, 2, 1
    trainer.plot_progress = False
    torch.manual_seed(0)
    trainer.run_training()
    fold = trainer.output_folder
    if name.startswith("nnUNetTrainerBenchmark"):  # no checkpoints, no validation: a timing instead
        assert json.loads((fold / "benchmark_result.json").read_text())
        return
    assert np.isfinite(trainer.logger.my_fantastic_logging["train_losses"]).all()
    summary = trainer.perform_actual_validation()
    assert summary["foreground_mean"]["Dice"] >= 0 and (fold / "validation" / "case_002.nii.gz").is_file()

    data = np.asarray(PreprocessedDataset(trainer.preprocessed_dataset_folder, ["case_002"])
                      .load_case("case_002")[0][:])
    from_folder = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    from_folder.initialize_from_trained_model_folder(trainer.output_folder_base, use_folds=(0,))
    in_memory = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    trainer.set_deep_supervision_enabled(False)
    network = unwrap(trainer.network).eval()
    in_memory.manual_initialization(network, trainer.plans_manager, trainer.configuration_manager, None,
                                    trainer.dataset_json, name, trainer.inference_allowed_mirroring_axes)
    assert [type(m).__name__ for m in from_folder.network.modules()] == \
        [type(m).__name__ for m in network.modules()]
    torch.testing.assert_close(_logits(from_folder, data), _logits(in_memory, data), rtol=1e-4, atol=1e-5)
