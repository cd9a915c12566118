"""3d_lowres -> 3d_cascade_fullres: the low-res validation writes next-stage segmentations, the cascade trains
on image + one-hot previous-stage channels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nnunet.registry import TRAINERS
from nnunet.training.data.dataset import PreprocessedDataset
from nnunet.training.run import get_trainer_from_args, run_training
from tests.training.helpers import TinyTestTrainer, configuration, dataset_json, plans, write_preprocessed

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(TRAINERS, TinyTestTrainer)


def test_lowres_then_cascade(nnunet_dirs, monkeypatch):
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setenv("nnUNet_def_n_proc", "1")
    name = "Dataset903_Cascade"
    lowres = configuration("3d_lowres", (8, 8, 8), 2, (4, 8))
    lowres["spacing"] = [1.6, 1.6, 1.6]
    lowres["next_stage"] = "3d_cascade_fullres"
    fullres = configuration("3d_fullres", (16, 16, 16), 2, (4, 8, 16))
    cascade = {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}
    p = plans(name, {"3d_lowres": lowres, "3d_fullres": fullres, "3d_cascade_fullres": cascade}, (20, 20, 20))
    pre = nnunet_dirs["preprocessed"]
    write_preprocessed(pre, name, p, dataset_json(), "3d_lowres", [(12, 12, 12)] * 5, original_shape=(20, 20, 20),
                       write_gt=False)
    write_preprocessed(pre, name, p, dataset_json(), "3d_fullres", [(20, 20, 20)] * 5)

    run_training(903, "3d_lowres", "all", "TinyTestTrainer", device="cpu")
    lowres_log = torch.load(nnunet_dirs["results"] / name / "TinyTestTrainer__nnUNetPlans__3d_lowres" / "fold_all"
                            / "checkpoint_final.pth", weights_only=False)["logging"]
    assert all(np.isfinite(lowres_log["train_losses"]))  # a 2-stage network has a single deep-supervision output
    base = nnunet_dirs["results"] / name
    next_stage = base / "TinyTestTrainer__nnUNetPlans__3d_lowres" / "predicted_next_stage" / "3d_cascade_fullres"
    files = sorted(f.name for f in next_stage.glob("*.b2nd"))
    assert files == [f"case_{i:03d}.b2nd" for i in range(5)]
    seg_prev = PreprocessedDataset(pre / name / "nnUNetPlans_3d_fullres", ["case_000"], next_stage) \
        .load_case("case_000")[2]
    assert seg_prev.shape == (20, 20, 20) and set(np.unique(seg_prev[:])) <= {0, 1, 2}

    trainer = get_trainer_from_args(903, "3d_cascade_fullres", 0, "TinyTestTrainer", device=torch.device("cpu"))
    assert trainer.is_cascaded and trainer.folder_with_segs_from_previous_stage == next_stage
    trainer.initialize()
    assert trainer.num_input_channels == 3  # image + one-hot of labels 1 and 2
    dl_tr, dl_val = trainer.get_plain_dataloaders()
    batch = next(dl_val)
    assert batch["data"].shape == (2, 3, 16, 16, 16)
    onehot = batch["data"][:, 1:]
    assert set(torch.unique(onehot).tolist()) <= {0.0, 1.0} and (onehot.sum(1) <= 1).all()
    assert batch["target"][0].shape == (2, 1, 16, 16, 16)  # previous-stage channel removed from the target
    assert next(dl_tr)["data"].shape == (2, 3, 16, 16, 16)
    trainer.run_training()
    assert all(np.isfinite(trainer.logger.my_fantastic_logging["train_losses"]))
    trainer.perform_actual_validation()
    assert (trainer.output_folder / "validation" / "summary.json").is_file()
