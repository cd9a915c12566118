"""Optional integrations of the trainer: Weights & Biases logging (nnUNet_wandb_enabled) and the hiddenlayer
architecture plot, with stand-in modules that record every call."""
from __future__ import annotations

import sys
import types

import pytest

from nnunet.cli.train import train_main
from nnunet.registry import TRAINERS
from tests.training.helpers import TinyTestTrainer, make_3d_dataset


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(TRAINERS, TinyTestTrainer)


class FakeRun:
    def __init__(self, **kwargs):
        self.init_kwargs = kwargs
        self.summary: dict = {}
        self.logged: list[tuple[int, dict]] = []
        self.step = kwargs.pop("_step", 0)
        self.config_updates: list[dict] = []
        self.config = types.SimpleNamespace(update=self._update)

    def _update(self, values: dict) -> None:
        self.config_updates.append(values)

    def log(self, values: dict, step: int) -> None:
        self.logged.append((step, values))


@pytest.fixture
def fake_wandb(monkeypatch):
    runs: list[FakeRun] = []
    module = types.ModuleType("wandb")
    module.init = lambda **kwargs: runs.append(FakeRun(**kwargs)) or runs[-1]
    monkeypatch.setitem(sys.modules, "wandb", module)
    monkeypatch.setenv("nnUNet_wandb_enabled", "1")
    monkeypatch.setenv("nnUNet_wandb_mode", "offline")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    return runs


@pytest.fixture
def dirs(nnunet_dirs, monkeypatch):
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setenv("nnUNet_def_n_proc", "1")
    make_3d_dataset(nnunet_dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    return nnunet_dirs


def _keys(run: FakeRun, step: int) -> set[str]:
    return {k for s, values in run.logged if s == step for k in values}


def test_training_logs_every_epoch_config_and_final_validation(dirs, fake_wandb):
    assert train_main(["901", "3d_fullres", "0", "-tr", "TinyTestTrainer", "-device", "cpu"]) == 0
    (run,) = fake_wandb
    fold = dirs["results"] / "Dataset901_Tiny" / "TinyTestTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    assert run.init_kwargs == {"project": "nnunet", "dir": str(fold), "id": None, "mode": "offline",
                               "resume": "never"}
    assert run.config_updates[0] == {"JobID": "4242"}
    config = {k for update in run.config_updates for k in update}
    assert {"plans", "configuration", "fold", "dataset", "hparas"} <= config
    hparas = next(u["hparas"] for u in run.config_updates if "hparas" in u)
    assert hparas["num_epochs"] == 2 and hparas["num_iterations_per_epoch"] == 4
    for epoch in (0, 1):
        assert {"train_losses", "val_losses", "lrs", "mean_fg_dice", "ema_fg_dice", "dice_per_class_or_region/class_1",
                "dice_per_class_or_region/class_2", "epoch_start_timestamps", "epoch_end_timestamps"} <= \
            _keys(run, epoch)
    assert run.summary["current_epoch"] == 1
    assert {"final_val/class_1_dice", "final_val/class_2_dice", "final_val/foreground_dice"} <= set(run.summary)


def test_continue_resumes_the_previous_run(dirs, fake_wandb):
    assert train_main(["901", "3d_fullres", "0", "-tr", "TinyTestTrainer", "-device", "cpu"]) == 0
    fold = dirs["results"] / "Dataset901_Tiny" / "TinyTestTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    latest = fold / "wandb" / "latest-run"  # what wandb itself leaves behind
    latest.mkdir(parents=True)
    (latest / "run-abc123.wandb").write_bytes(b"")
    assert train_main(["901", "3d_fullres", "0", "-tr", "TinyTestTrainer", "-device", "cpu", "--c"]) == 0
    assert fake_wandb[1].init_kwargs["id"] == "abc123" and fake_wandb[1].init_kwargs["resume"] == "allow"
    # a fresh training replaces the old run folder
    assert train_main(["901", "3d_fullres", "0", "-tr", "TinyTestTrainer", "-device", "cpu"]) == 0
    assert fake_wandb[2].init_kwargs["id"] is None and not (fold / "wandb").exists()


def test_bad_switch_and_missing_package_are_clear_errors(dirs, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_wandb_enabled", "yes")
    assert train_main(["901", "3d_fullres", "0", "-tr", "TinyTestTrainer", "-device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "nnUNet_wandb_enabled" in err and "Traceback" not in err
    monkeypatch.setenv("nnUNet_wandb_enabled", "true")
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    assert train_main(["901", "3d_fullres", "0", "-tr", "TinyTestTrainer", "-device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "pip install wandb" in err and "Traceback" not in err


def test_architecture_plot_uses_hiddenlayer_when_installed(dirs, monkeypatch):
    calls = []

    class Graph:
        def save(self, path):
            with open(path, "wb") as f:
                f.write(b"%PDF-stand-in")

    module = types.ModuleType("hiddenlayer")
    module.build_graph = lambda network, example, transforms: calls.append(tuple(example.shape)) or Graph()
    monkeypatch.setitem(sys.modules, "hiddenlayer", module)
    assert train_main(["901", "3d_fullres", "0", "-tr", "TinyTestTrainer", "-device", "cpu"]) == 0
    fold = dirs["results"] / "Dataset901_Tiny" / "TinyTestTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    assert calls == [(1, 1, 16, 16, 16)]  # one image channel, the configuration's patch size
    assert (fold / "network_architecture.pdf").read_bytes() == b"%PDF-stand-in"


def test_training_goes_on_without_hiddenlayer(dirs, monkeypatch):
    monkeypatch.setitem(sys.modules, "hiddenlayer", None)
    assert train_main(["901", "3d_fullres", "0", "-tr", "TinyTestTrainer", "-device", "cpu"]) == 0
    fold = dirs["results"] / "Dataset901_Tiny" / "TinyTestTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert "Unable to plot network architecture" in log and not (fold / "network_architecture.pdf").exists()
    assert (fold / "checkpoint_final.pth").is_file()
