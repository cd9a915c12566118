"""Checkpoints move between nnU-Net 2.8.1 and this package in both directions."""
from __future__ import annotations

import json

import pytest
import torch

from nnunet.training.checkpoint import load_checkpoint_file
from nnunet.training.trainer import nnUNetTrainer
from tests.helpers import FIXTURES
from tests.training.helpers import REF_PYTHON, run_reference_trainer_script

torch.set_num_threads(1)
REF_MODEL = FIXTURES / "inference" / "model"


def _trainer(cls=nnUNetTrainer):
    plans = json.loads((REF_MODEL / "plans.json").read_text())
    ds = json.loads((REF_MODEL / "dataset.json").read_text())
    return cls(plans, "3d_fullres", 0, ds, torch.device("cpu"))


def test_reference_checkpoint_loads_into_our_trainer():
    path = REF_MODEL / "fold_0" / "checkpoint_final.pth"
    ref = load_checkpoint_file(path)
    trainer = _trainer()
    trainer.load_checkpoint(path)
    ours = trainer.network.state_dict()
    assert list(ours) == list(ref["network_weights"])
    assert all(torch.equal(ours[k], ref["network_weights"][k]) for k in ours)
    assert trainer.current_epoch == ref["current_epoch"] and trainer._best_ema == ref["_best_ema"]
    assert trainer.optimizer.state_dict()["param_groups"][0]["momentum"] == 0.99
    assert tuple(trainer.inference_allowed_mirroring_axes) == tuple(ref["inference_allowed_mirroring_axes"])
    # the checkpoint we would write has the reference's keys (plus our RNG state)
    assert set(ref) <= set(trainer.checkpoint_dict())


@pytest.mark.skipif(not REF_PYTHON.is_file(), reason="reference nnU-Net venv (/work/ref/.venv-ref) not installed")
def test_our_checkpoint_loads_into_reference_trainer(tmp_path):
    trainer = _trainer()
    trainer.initialize()
    trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    trainer.current_epoch = 3
    trainer._best_ema = 0.5
    trainer.logger.log("mean_fg_dice", 0.5, 0)
    from nnunet.training.checkpoint import save_checkpoint_file

    save_checkpoint_file(trainer.checkpoint_dict(), tmp_path / "ours.pth")
    script = f"""
import json, torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
plans = json.load(open({str(REF_MODEL / 'plans.json')!r})); ds = json.load(open({str(REF_MODEL / 'dataset.json')!r}))
plans['continue_training'] = False
t = nnUNetTrainer(plans, '3d_fullres', 0, ds, torch.device('cpu'))
t.load_checkpoint({str(tmp_path / 'ours.pth')!r})
sd = t.network.state_dict()
ours = torch.load({str(tmp_path / 'ours.pth')!r}, weights_only=False)['network_weights']
assert all(torch.equal(sd[k], ours[k]) for k in ours) and list(sd) == list(ours)
print('OK', t.current_epoch, t._best_ema)
"""
    res = run_reference_trainer_script(script, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "OK 4 0.5" in res.stdout  # our current_epoch 3 is stored as 4 (the next epoch to run)
