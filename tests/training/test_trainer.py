"""End-to-end CPU training on tiny generated data: outputs, checkpoints, loss decrease, resume, variants."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nnunet.cli.train import train_main
from nnunet.registry import TRAINERS
from nnunet.training.checkpoint import CHECKPOINT_KEYS, load_checkpoint_file
from nnunet.training.run import get_trainer_from_args, run_training
from tests.training.helpers import TEST_TRAINERS, TinyTestTrainer, make_2d_dataset, make_3d_dataset

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]


class LossTestTrainer(TinyTestTrainer):
    num_epochs = 3
    num_iterations_per_epoch = 12
    num_val_iterations_per_epoch = 2
    initial_lr = 1e-2
    plot_progress = True


def _fold(dirs, dataset, trainer, config, fold="fold_0"):
    return dirs["results"] / dataset / f"{trainer}__nnUNetPlans__{config}" / fold


def test_3d_training_cli_end_to_end(dirs, capsys):
    make_3d_dataset(dirs["preprocessed"], shape=(20, 20, 20))
    torch.manual_seed(0)
    np.random.seed(0)
    rc = train_main(["901", "3d_fullres", "0", "-tr", "LossTestTrainer", "-device", "cpu", "--npz"])
    assert rc == 0, capsys.readouterr().err
    fold = _fold(dirs, "Dataset901_Tiny", "LossTestTrainer", "3d_fullres")
    base = fold.parent
    assert {"plans.json", "dataset.json"} <= {p.name for p in base.iterdir()}
    names = {p.name for p in fold.iterdir()}
    assert {"checkpoint_final.pth", "checkpoint_best.pth", "progress.png", "debug.json", "validation"} <= names
    assert "checkpoint_latest.pth" not in names  # removed once the final checkpoint exists
    log = [n for n in names if n.startswith("training_log_")]
    assert len(log) == 1 and re.fullmatch(r"training_log_\d{4}_\d{1,2}_\d{1,2}_\d\d_\d\d_\d\d\.txt", log[0])
    ckpt = load_checkpoint_file(fold / "checkpoint_final.pth")
    assert set(CHECKPOINT_KEYS) <= set(ckpt)
    assert ckpt["current_epoch"] == 3 and ckpt["trainer_name"] == "LossTestTrainer"
    assert ckpt["inference_allowed_mirroring_axes"] == (0, 1, 2) and ckpt["grad_scaler_state"] is None
    assert ckpt["init_args"]["configuration"] == "3d_fullres" and ckpt["init_args"]["fold"] == 0
    logs = ckpt["logging"]
    assert all(len(logs[k]) == 3 for k in ("train_losses", "val_losses", "lrs", "mean_fg_dice", "ema_fg_dice"))
    assert logs["lrs"] == pytest.approx([1e-2 * (1 - e / 3) ** 0.9 for e in range(3)])
    ema = logs["ema_fg_dice"]
    assert ema[1] == pytest.approx(0.9 * ema[0] + 0.1 * logs["mean_fg_dice"][1])
    # an easy task: the loss goes down over 36 iterations
    assert logs["train_losses"][-1] < logs["train_losses"][0] - 0.1
    assert not any(k.startswith("module.") or k.startswith("_orig_mod.") for k in ckpt["network_weights"])
    # final validation: exported cases, summary, probabilities
    val = fold / "validation"
    summary = json.loads((val / "summary.json").read_text())
    assert set(summary["mean"]) == {"1", "2"} and "foreground_mean" in summary
    assert (val / "case_000.nii.gz").is_file() or any(p.suffix == ".gz" for p in val.iterdir())
    assert any(p.suffix == ".npz" for p in val.iterdir())
    text = (fold / log[0]).read_text()
    assert "Epoch 2" in text and "Mean Validation Dice" in text and "Yayy! New best EMA pseudo Dice" in text
    debug = json.loads((fold / "debug.json").read_text())
    assert debug["num_epochs"] == "3" and "torch_version" in debug


def test_2d_training(dirs):
    make_2d_dataset(dirs["preprocessed"])
    trainer = get_trainer_from_args(902, "2d", "all", "TinyTestTrainer", device=torch.device("cpu"))
    trainer.run_training()
    fold = _fold(dirs, "Dataset902_Tiny2d", "TinyTestTrainer", "2d", "fold_all")
    ckpt = load_checkpoint_file(fold / "checkpoint_final.pth")
    assert ckpt["inference_allowed_mirroring_axes"] == (0, 1)
    assert ckpt["network_weights"]["encoder.stages.0.0.convs.0.conv.weight"].ndim == 4
    assert len(ckpt["logging"]["train_losses"]) == 2
    # the final checkpoint loads back into a fresh trainer (and the predictor's network builder)
    fresh = get_trainer_from_args(902, "2d", "all", "TinyTestTrainer", device=torch.device("cpu"))
    fresh.load_checkpoint(fold / "checkpoint_final.pth")
    assert fresh.current_epoch == 2 and fresh._best_ema == ckpt["_best_ema"]


def test_resume_after_sigkill(dirs):
    make_3d_dataset(dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    code = ("import sys, torch; torch.set_num_threads(1); from tests.training.helpers import register_test_trainers; "
            "register_test_trainers(); from nnunet.cli.train import train_main; "
            "sys.exit(train_main(['901', '3d_fullres', '0', '-tr', 'SlowTinyTestTrainer', '-device', 'cpu']))")
    fold = _fold(dirs, "Dataset901_Tiny", "SlowTinyTestTrainer", "3d_fullres")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    latest = fold / "checkpoint_latest.pth"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if latest.is_file() and load_checkpoint_file(latest)["current_epoch"] >= 2:
                break
            if proc.poll() is not None:
                pytest.fail(f"training ended early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint_latest.pth with two finished epochs appeared")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (fold / "checkpoint_final.pth").is_file()
    resumed_from = load_checkpoint_file(latest)["current_epoch"]
    assert 2 <= resumed_from < 4
    trainer = get_trainer_from_args(901, "3d_fullres", 0, "SlowTinyTestTrainer", device=torch.device("cpu"))
    started = []
    original = trainer.on_epoch_start

    def record():
        started.append(trainer.current_epoch)
        original()

    trainer.on_epoch_start = record
    from nnunet.training.run import maybe_load_checkpoint

    maybe_load_checkpoint(trainer, continue_training=True, validation_only=False)
    trainer.run_training()
    assert started == list(range(resumed_from, 4))  # at most one epoch of work was lost
    final = load_checkpoint_file(fold / "checkpoint_final.pth")
    assert final["current_epoch"] == 4
    assert len(final["logging"]["train_losses"]) == 4 and len(final["logging"]["epoch_end_timestamps"]) == 4
    assert not list(fold.glob(".*partial*"))


def test_continue_and_validation_flags(dirs):
    make_3d_dataset(dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    from nnunet.errors import NnunetError

    with pytest.raises(NnunetError, match="not finished"):
        run_training(901, "3d_fullres", 0, "TinyTestTrainer", only_run_validation=True, device="cpu")
    assert train_main(["901", "3d_fullres", "0", "--c", "--val", "-device", "cpu"]) == 1
    assert train_main(["901", "3d_fullres", "0", "-tr", "NoSuchTrainer", "-device", "cpu"]) == 1
    assert train_main(["901", "3d_fullres", "0", "-tr", "TinyTestTrainer", "--disable_checkpointing",
                       "--val_best", "-device", "cpu"]) == 1
    # --disable_checkpointing: training runs, nothing is written
    run_training(901, "3d_fullres", 0, "TinyTestTrainer", disable_checkpointing=True, device="cpu",
                 run_validation=False)
    fold = _fold(dirs, "Dataset901_Tiny", "TinyTestTrainer", "3d_fullres")
    assert not list(fold.glob("*.pth"))
    # --c with no checkpoint starts fresh; resuming a finished run re-validates only
    run_training(901, "3d_fullres", 0, "TinyTestTrainer", continue_training=True, device="cpu", run_validation=False)
    final = fold / "checkpoint_final.pth"
    mtime = final.stat().st_mtime_ns
    trainer = get_trainer_from_args(901, "3d_fullres", 0, "TinyTestTrainer", device=torch.device("cpu"))
    from nnunet.training.run import maybe_load_checkpoint

    maybe_load_checkpoint(trainer, continue_training=True, validation_only=False)
    assert trainer.current_epoch == 2
    run_training(901, "3d_fullres", 0, "TinyTestTrainer", only_run_validation=True, device="cpu")
    assert (fold / "validation" / "summary.json").is_file() and final.stat().st_mtime_ns == mtime


def test_pretrained_weights(dirs, tmp_path):
    make_3d_dataset(dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    run_training(901, "3d_fullres", "all", "TinyTestTrainer", device="cpu", run_validation=False)
    source = _fold(dirs, "Dataset901_Tiny", "TinyTestTrainer", "3d_fullres", "fold_all") / "checkpoint_final.pth"
    trainer = get_trainer_from_args(901, "3d_fullres", 0, "TinyTestTrainer", device=torch.device("cpu"))
    from nnunet.training.run import load_pretrained_weights, maybe_load_checkpoint

    maybe_load_checkpoint(trainer, False, False, pretrained_weights=str(source))
    src = load_checkpoint_file(source)["network_weights"]
    own = trainer.network.state_dict()
    for k, v in own.items():
        if ".seg_layers." not in k:
            assert torch.equal(v, src[k]), k
    bad = {"network_weights": {k: v[:1] if v.ndim else v for k, v in src.items()}}
    torch.save(bad, tmp_path / "bad.pth")
    from nnunet.errors import NnunetError

    with pytest.raises(NnunetError, match="do not fit"):
        load_pretrained_weights(trainer.network, tmp_path / "bad.pth")


def test_variants_are_class_attributes():
    assert TRAINERS.get("nnUNetTrainer_5epochs").num_epochs == 5
    assert TRAINERS.get("nnUNetTrainer_250epochs_NoMirroring").use_mirroring is False
    assert TRAINERS.get("nnUNetTrainerNoDeepSupervision").enable_deep_supervision is False
    default = TRAINERS.get("nnUNetTrainer")
    assert (default.initial_lr, default.weight_decay, default.num_epochs, default.num_iterations_per_epoch,
            default.num_val_iterations_per_epoch, default.oversample_foreground_percent) == \
        (1e-2, 3e-5, 1000, 250, 50, 0.33)


class TinyBenchmarkTrainer(TRAINERS.get("nnUNetTrainerBenchmark_5epochs_noDataLoading")):
    num_iterations_per_epoch = 2
    num_val_iterations_per_epoch = 1
    plot_progress = False


def test_benchmark_trainer_writes_result(dirs):
    make_3d_dataset(dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    run_training(901, "3d_fullres", 0, "TinyBenchmarkTrainer", device="cpu")
    fold = _fold(dirs, "Dataset901_Tiny", "TinyBenchmarkTrainer", "3d_fullres")
    result = json.loads((fold / "benchmark_result.json").read_text())
    (entry,) = result.values()
    assert entry["num_gpus"] == 1 and 0 < entry["fastest_epoch"] < 60
    assert not list(fold.glob("*.pth")) and not (fold / "validation").exists()


def test_ctrl_c_before_training_names_no_checkpoint(monkeypatch, capsys):
    # real SIGINTs in each phase: tests/reliability/test_distributed.py
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("nnunet.training.run.run_training", interrupted)
    assert train_main(["901", "3d_fullres", "0", "-device", "cpu"]) == 130
    err = capsys.readouterr().err
    assert "nothing was written" in err and "--c" not in err and "Traceback" not in err


def test_grad_scaler_without_torch_amp_gradscaler(monkeypatch):
    """torch < 2.3 has no torch.amp.GradScaler: the trainer falls back to torch.cuda.amp.GradScaler."""
    import warnings

    from nnunet.training.trainer_loop import make_grad_scaler

    assert make_grad_scaler(torch.device("cpu")) is None
    cuda_scaler = torch.cuda.amp.GradScaler
    monkeypatch.delattr(torch.amp, "GradScaler")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated on new torch; "CUDA not available" on this machine
        scaler = make_grad_scaler(torch.device("cuda"))
    assert type(scaler) is cuda_scaler


def test_empty_training_split_is_refused(dirs):
    make_3d_dataset(dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    splits = dirs["preprocessed"] / "Dataset901_Tiny" / "splits_final.json"
    splits.write_text(json.dumps([{"train": [], "val": ["case_000"]}]))
    trainer = get_trainer_from_args(901, "3d_fullres", 0, "TinyTestTrainer", device=torch.device("cpu"))
    from nnunet.errors import DatasetError

    with pytest.raises(DatasetError, match="no training cases.*'train' list"):
        trainer.do_split()


class CappedBatchTrainer(TinyTestTrainer):
    max_batch_size = 3


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(TRAINERS, *TEST_TRAINERS, LossTestTrainer, TinyBenchmarkTrainer, CappedBatchTrainer)


def test_training_leaves_the_plans_as_they_were_read(dirs):
    """The trainer's own batch size (here a cap) lives in its configuration, not in the plans: after training,
    the Plans object, the caller's dict and the model folder's plans.json all equal the preprocessed plans.json."""
    make_2d_dataset(dirs["preprocessed"])
    plans_file = dirs["preprocessed"] / "Dataset902_Tiny2d" / "nnUNetPlans.json"
    on_disk = json.loads(plans_file.read_text())
    given = json.loads(plans_file.read_text())
    trainer = CappedBatchTrainer(plans=given, configuration="2d", fold=0, dataset_json=json.loads(
        (plans_file.parent / "dataset.json").read_text()), device=torch.device("cpu"))
    trainer.num_epochs = 1
    trainer.run_training()
    assert trainer.batch_size == trainer.configuration_manager.batch_size == 3  # the plans say 4
    assert trainer.plans_manager.data == on_disk and given == on_disk
    assert json.loads((trainer.output_folder_base / "plans.json").read_text()) == on_disk


@pytest.mark.slow
def test_cpu_trial_trainer_runs_and_learns(dirs):
    """nnUNetTrainerCPUTrial (10 x 60 iterations, batch at most 32): the cap applies, and a shortened run on tiny
    2-D data finishes, the loss falls and the final validation is written."""
    make_2d_dataset(dirs["preprocessed"])
    trainer_cls = TRAINERS.get("nnUNetTrainerCPUTrial")
    assert (trainer_cls.num_epochs, trainer_cls.num_iterations_per_epoch, trainer_cls.max_batch_size) == (10, 60, 32)
    capped = get_trainer_from_args(902, "2d", 0, "CappedBatchTrainer", device=torch.device("cpu"))
    assert capped.configuration_manager.batch_size == 3  # the plans say 4
    torch.manual_seed(0)
    np.random.seed(0)
    trainer = get_trainer_from_args(902, "2d", 0, "nnUNetTrainerCPUTrial", device=torch.device("cpu"))
    assert trainer.configuration_manager.batch_size == 4  # below the cap: the plans' batch
    trainer.num_epochs, trainer.num_iterations_per_epoch = 4, 25  # keep the test short
    trainer.run_training()
    trainer.perform_actual_validation()
    fold = _fold(dirs, "Dataset902_Tiny2d", "nnUNetTrainerCPUTrial", "2d")
    logs = load_checkpoint_file(fold / "checkpoint_final.pth")["logging"]
    assert len(logs["train_losses"]) == 4 and logs["train_losses"][-1] < logs["train_losses"][0] - 0.2
    assert json.loads((fold / "validation" / "summary.json").read_text())["foreground_mean"]["Dice"] > 0.3
