"""Supervised pre-training and fine-tuning (documentation/pretraining_and_finetuning.md), end to end on CPU:

plans of the fine-tuning dataset moved to the pre-training dataset -> preprocess and train there -> fine-tune with
``-pretrained_weights`` (weights compared tensor by tensor) -> an incompatible checkpoint is refused with its keys.
"""
from __future__ import annotations

import json

import pytest
import torch

from nnunet.cli.preprocess import preprocess_main
from nnunet.cli.sharing import move_plans_main
from nnunet.cli.train import train_main
from nnunet.demo.synthetic import make_dataset
from nnunet.registry import TRAINERS
from nnunet.training.checkpoint import load_checkpoint_file
from nnunet.training.run import run_training
from tests.training.helpers import TinyTestTrainer, configuration, plans

torch.set_num_threads(1)
FINETUNE = "Dataset931_Finetune"
PRETRAIN = "Dataset932_Pretrain"


class FinetuneProbeTrainer(TinyTestTrainer):
    """Records the network weights at the start of training (after -pretrained_weights was applied)."""

    num_epochs = 1
    num_iterations_per_epoch = 3
    num_val_iterations_per_epoch = 1
    start_weights: dict[str, torch.Tensor] = {}

    def on_train_start(self) -> None:
        super().on_train_start()
        FinetuneProbeTrainer.start_weights = {k: v.detach().clone() for k, v in self.network.state_dict().items()}


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(TRAINERS, TinyTestTrainer, FinetuneProbeTrainer)


@pytest.fixture
def pretrained(nnunet_dirs, monkeypatch):
    """Fine-tuning dataset with its plans; pre-training dataset (other labels) trained with the moved plans."""
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    raw, pre = nnunet_dirs["raw"], nnunet_dirs["preprocessed"]
    make_dataset(raw, 931, "Finetune", num_cases=3, shape=(16, 16, 16), shape_jitter=1)
    make_dataset(raw, 932, "Pretrain", num_cases=3, shape=(16, 16, 16), shape_jitter=1, seed=1,
                 labels={"background": 0, "blob": 1, "core": 2, "rare": 3})
    (pre / FINETUNE).mkdir()
    (pre / FINETUNE / "nnUNetPlans.json").write_text(json.dumps(
        plans(FINETUNE, {"3d_fullres": configuration("3d_fullres", (16, 16, 16), 2, (4, 8, 16))}, (16, 16, 16))))
    (pre / FINETUNE / "dataset.json").write_text((raw / FINETUNE / "dataset.json").read_text())
    assert move_plans_main(["-s", "931", "-t", "932", "-sp", "nnUNetPlans", "-tp", "nnUNetPlans_ft931"]) == 0
    for dataset, plans_name in (("932", "nnUNetPlans_ft931"), ("931", "nnUNetPlans")):
        assert preprocess_main(["-d", dataset, "-plans_name", plans_name, "-c", "3d_fullres", "-np", "1",
                                "--no_pbar"]) == 0
    assert (pre / PRETRAIN / "nnUNetPlans_ft931_3d_fullres").is_dir()
    run_training(932, "3d_fullres", "all", "TinyTestTrainer", "nnUNetPlans_ft931", device="cpu",
                 run_validation=False)
    checkpoint = (nnunet_dirs["results"] / PRETRAIN / "TinyTestTrainer__nnUNetPlans_ft931__3d_fullres" / "fold_all"
                  / "checkpoint_final.pth")
    assert checkpoint.is_file()
    return checkpoint


def test_finetune_loads_all_but_the_segmentation_heads(pretrained, nnunet_dirs):
    source = load_checkpoint_file(pretrained)["network_weights"]
    run_training(931, "3d_fullres", "all", "FinetuneProbeTrainer", device="cpu", pretrained_weights=str(pretrained),
                 run_validation=False)
    start = FinetuneProbeTrainer.start_weights
    seg_keys = [k for k in start if ".seg_layers." in k]
    assert seg_keys and len(start) > len(seg_keys) + 10
    for key, value in start.items():
        if ".seg_layers." in key:
            # 3 classes here, 4 in the pre-training data: the heads cannot be transferred and are fresh
            assert value.shape[0] == 3 and source[key].shape[0] == 4, key
        else:
            assert torch.equal(value, source[key]), key
    fold = nnunet_dirs["results"] / FINETUNE / "FinetuneProbeTrainer__nnUNetPlans__3d_fullres" / "fold_all"
    final = load_checkpoint_file(fold / "checkpoint_final.pth")["network_weights"]
    assert any(not torch.equal(final[k], source[k]) for k in start if ".seg_layers." not in k)  # it did train
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert f"Pretrained weights from {pretrained}" in log and "encoder.stages.0" in log


def test_incompatible_checkpoint_is_refused_with_its_keys(pretrained, nnunet_dirs, tmp_path, capsys):
    checkpoint = load_checkpoint_file(pretrained)
    weights = checkpoint["network_weights"]
    conv = next(k for k in weights if k.endswith("encoder.stages.1.0.convs.0.conv.weight"))
    norm = next(k for k in weights if k.endswith("encoder.stages.0.0.convs.0.norm.weight"))
    weights[conv] = torch.zeros(5, *weights[conv].shape[1:])
    del weights[norm]
    weights["decoder.seg_layers.9.weight"] = torch.zeros(1)  # extra and seg-layer keys do not matter
    bad = tmp_path / "bad.pth"
    torch.save(checkpoint, bad)
    rc = train_main(["931", "3d_fullres", "all", "-tr", "FinetuneProbeTrainer", "-device", "cpu",
                     "-pretrained_weights", str(bad)])
    err = capsys.readouterr().err
    assert rc == 1 and "do not fit this network" in err
    assert f"{conv}: checkpoint (5, 4, 3, 3, 3), network (8, 4, 3, 3, 3)" in err
    assert f"{norm} (4,): missing in the checkpoint" in err
    assert "seg_layers" not in err.replace("'.seg_layers.' are exempt", "")
    fold = nnunet_dirs["results"] / FINETUNE / "FinetuneProbeTrainer__nnUNetPlans__3d_fullres" / "fold_all"
    assert not (fold / "checkpoint_final.pth").exists()
    assert train_main(["931", "3d_fullres", "all", "-tr", "FinetuneProbeTrainer", "-device", "cpu", "--c",
                       "-pretrained_weights", str(pretrained)]) == 1
    assert "Cannot both continue" in capsys.readouterr().err
