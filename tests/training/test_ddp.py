"""DDP: two processes on the gloo backend (CPU) train one fold; only rank 0 writes; after --c every rank continues
its own random stream. (torchrun: test_torchrun.py; interruptions and elastic restarts: tests/reliability.)"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nnunet.training.checkpoint import (add_rng_states, capture_rng_state, derived_rng_state, load_checkpoint_file,
                                        restore_rng_state, rng_state_for_rank)
from nnunet.training.ddp import rank_oversample_percent, split_batch
from nnunet.training.run import run_training
from tests.training.helpers import REF_PYTHON, make_3d_dataset, run_reference_trainer_script
from tests.training.torchrun_helpers import events


def test_batch_split_and_oversampling():
    assert split_batch(5, 2) == [3, 2]
    assert split_batch(2, 2) == [1, 1]
    with pytest.raises(ValueError):
        split_batch(1, 2)
    # global batch 2, 33 %: position 1 forced -> rank 0 never, rank 1 always
    assert rank_oversample_percent(2, 2, 0, 0.33) == (1, 0.0)
    assert rank_oversample_percent(2, 2, 1, 0.33) == (1, 1.0)
    # global batch 12: positions 8..11 forced; 3 ranks of 4 -> 0, 0, 1
    assert [rank_oversample_percent(12, 3, r, 0.33)[1] for r in range(3)] == [0.0, 0.0, 1.0]


@pytest.mark.slow
def test_two_process_gloo_training(nnunet_dirs, monkeypatch):
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setenv("nnUNet_def_n_proc", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    make_3d_dataset(nnunet_dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    run_training(901, "3d_fullres", 0, "tests.training.helpers.TinyTestTrainer", num_gpus=2, device="cpu")
    fold = nnunet_dirs["results"] / "Dataset901_Tiny" / "TinyTestTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    ckpt = load_checkpoint_file(fold / "checkpoint_final.pth")
    assert ckpt["current_epoch"] == 2 and np.isfinite(ckpt["logging"]["train_losses"]).all()
    assert not any(k.startswith("module.") for k in ckpt["network_weights"])
    assert len(list(fold.glob("training_log_*.txt"))) == 1  # rank 1 writes no log
    assert (fold / "validation" / "summary.json").is_file()
    debug = json.loads((fold / "debug.json").read_text())
    assert debug["is_ddp"] == "True" and debug["batch_size"] == "1" and debug["oversample_foreground_percent"] == "0.0"
    torch.set_num_threads(1)


def _draws():
    import random

    return random.random(), float(np.random.random()), float(torch.rand(1))


def test_rng_state_per_rank_choice():
    restore_rng_state(None)  # no state (nnU-Net's checkpoints): generators stay as they are
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        np.random.seed(seed)
        states.append(capture_rng_state())
    draws = []
    for state in states:
        restore_rng_state(state)
        draws.append(_draws())
    checkpoint = add_rng_states({}, states)
    assert set(checkpoint) == {"rng_state", "rng_state_per_rank"}
    for rank in (0, 1):  # each rank continues its own stream
        restore_rng_state(rng_state_for_rank(checkpoint, rank))
        assert _draws() == draws[rank]
    # a rank the checkpoint has no state for (single-process checkpoint, grown group) gets a stream of its own,
    # the same on every resume
    single = add_rng_states({}, states[:1])
    assert set(single) == {"rng_state"}
    restore_rng_state(rng_state_for_rank(single, 0))
    assert _draws() == draws[0]
    derived = []
    for rank in (1, 2, 1):
        restore_rng_state(rng_state_for_rank(single, rank))
        derived.append(_draws())
    assert derived[0] == derived[2] and len({derived[0], derived[1], draws[0]}) == 3
    assert rng_state_for_rank({"rng_state": None}, 1) is None
    # the states are plain values: a checkpoint holding them loads with weights_only=True
    import io

    buffer = io.BytesIO()
    torch.save(add_rng_states({"current_epoch": 1}, [states[0], derived_rng_state(states[0], 1)]), buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["rng_state_per_rank"][0]["numpy"] == states[0]["numpy"]
    # states of older checkpoints (NumPy keys as an array) still restore
    old = dict(states[1], numpy=np.random.get_state())
    restore_rng_state(old)


@pytest.mark.slow
def test_each_rank_resumes_its_own_random_stream(nnunet_dirs, monkeypatch, tmp_path):
    """Issue 13: after --c the ranks used to restore rank 0's generators and drew the same batches."""
    record = tmp_path / "record"
    record.mkdir()
    for var, value in (("nnUNet_n_proc_DA", "0"), ("nnUNet_def_n_proc", "1"), ("OMP_NUM_THREADS", "1"),
                       ("NNUNET_TEST_RECORD", str(record)), ("NNUNET_TEST_EPOCHS", "1")):
        monkeypatch.setenv(var, value)
    make_3d_dataset(nnunet_dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    trainer = "tests.training.torchrun_helpers.ResumeRecordingTrainer"
    run_training(901, "3d_fullres", 0, trainer, num_gpus=2, device="cpu", run_validation=False)
    fold = nnunet_dirs["results"] / "Dataset901_Tiny" / "ResumeRecordingTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    # the one-epoch run's final checkpoint stands for the checkpoint_latest.pth of an interrupted 2-epoch run
    (fold / "checkpoint_final.pth").rename(fold / "checkpoint_latest.pth")
    checkpoint = load_checkpoint_file(fold / "checkpoint_latest.pth")
    saved = [[int(k) for k in state["numpy"][1][:4]] for state in checkpoint["rng_state_per_rank"]]
    assert len(saved) == 2 and saved[0] != saved[1]

    monkeypatch.setenv("NNUNET_TEST_EPOCHS", "2")
    run_training(901, "3d_fullres", 0, trainer, num_gpus=2, device="cpu", continue_training=True,
                 run_validation=False)
    restored = {e["rank"]: e["numpy_head"] for e in events(record, "restored")}
    assert restored == {0: saved[0], 1: saved[1]}  # each rank restored its own state
    resumed = {e["rank"]: e["digest"] for e in events(record, "batch") if e["epoch"] == 1}
    assert len(resumed) == 2 and resumed[0] != resumed[1]  # so the ranks' first batches differ
    assert load_checkpoint_file(fold / "checkpoint_final.pth")["current_epoch"] == 2
    torch.set_num_threads(1)




@pytest.mark.skipif(not REF_PYTHON.is_file(), reason="reference nnU-Net venv not installed")
def test_ddp_checkpoint_loads_in_reference(tmp_path):
    """A checkpoint with every rank's generator states loads in nnU-Net 2.8.1's trainer, and with torch.load's
    default weights_only=True (which nnU-Net's warmup trainer uses)."""
    from nnunet.training.checkpoint import save_checkpoint_file
    from nnunet.training.trainer import nnUNetTrainer
    from tests.helpers import FIXTURES

    REF_MODEL = FIXTURES / "inference" / "model"  # a model folder nnU-Net 2.8.1 trained
    trainer = nnUNetTrainer(json.loads((REF_MODEL / "plans.json").read_text()), "3d_fullres", 0,
                            json.loads((REF_MODEL / "dataset.json").read_text()), torch.device("cpu"))
    trainer.initialize()
    trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    trainer._best_ema = 0.5
    trainer.logger.log("mean_fg_dice", 0.5, 0)
    states = [capture_rng_state(), derived_rng_state(capture_rng_state(), 1)]
    save_checkpoint_file(add_rng_states(trainer.checkpoint_dict(), states), tmp_path / "ddp.pth")
    script = f"""
import json, torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
assert len(torch.load({str(tmp_path / 'ddp.pth')!r})["rng_state_per_rank"]) == 2
plans = json.load(open({str(REF_MODEL / 'plans.json')!r})); ds = json.load(open({str(REF_MODEL / 'dataset.json')!r}))
plans['continue_training'] = False
t = nnUNetTrainer(plans, '3d_fullres', 0, ds, torch.device('cpu'))
t.load_checkpoint({str(tmp_path / 'ddp.pth')!r})
print('OK', t.current_epoch, t._best_ema)
"""
    res = run_reference_trainer_script(script, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "OK 1 0.5" in res.stdout
