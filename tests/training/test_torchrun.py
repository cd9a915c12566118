"""nnUNet_train as torchrun's target: two launchers ("nodes") on 127.0.0.1 with gloo, launcher checks, and the
torch threads each process gets (torchrun sets OMP_NUM_THREADS for its workers)."""
from __future__ import annotations

import json
import os
import sys

import pytest
import torch

from nnunet.cli.train import train_main
from nnunet.registry import TRAINERS
from nnunet.training.checkpoint import CHECKPOINT_KEYS, load_checkpoint_file
from nnunet.training.run import run_training
from tests.training.helpers import make_3d_dataset
from tests.training.torchrun_helpers import (RECORDING_TRAINERS, events, free_port, run_two_nodes, start_torchrun, stop,
                                             subprocess_env, train_args)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torchrun tests run on Linux")

FOLD = ("Dataset901_Tiny", "RecordingTrainer__nnUNetPlans__3d_fullres", "fold_0")


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(TRAINERS, *RECORDING_TRAINERS)  # the predictor finds a checkpoint's trainer by its name


def _structure(checkpoint: dict) -> dict:
    """What must agree between checkpoints of the same trainer, whatever the number of processes."""
    optimizer = checkpoint["optimizer_state"]
    return {"keys": sorted(set(checkpoint) - {"rng_state_per_rank"}),
            "weights": {k: tuple(v.shape) for k, v in checkpoint["network_weights"].items()},
            "optimizer_groups": [{k: v for k, v in g.items() if k != "lr"} for g in optimizer["param_groups"]],
            # which parameters have momentum differs: with DDP the lowest deep-supervision output is weighted
            # 1e-6 instead of 0 (as in nnU-Net), so its head gets gradients too
            "optimizer_buffers": sorted({name for v in optimizer["state"].values() for name in v}),
            "logging": {k: len(v) for k, v in checkpoint["logging"].items()},
            "init_args": sorted(checkpoint["init_args"]), "trainer_name": checkpoint["trainer_name"],
            "current_epoch": checkpoint["current_epoch"],
            "mirror_axes": checkpoint["inference_allowed_mirroring_axes"]}


@pytest.mark.slow
def test_two_node_torchrun_training(nnunet_dirs, tmp_path, monkeypatch):
    make_3d_dataset(nnunet_dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    record = tmp_path / "record"
    record.mkdir()
    env = subprocess_env(record)
    codes, outputs = run_two_nodes("two-nodes", train_args("RecordingTrainer"), [env, env],
                                   [tmp_path / f"node{node}.log" for node in (0, 1)], timeout=240)
    assert codes == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]

    # one group of two ranks, one process per node, each rank started once
    starts = events(record, "start")
    assert sorted(e["rank"] for e in starts) == [0, 1] and len({e["pid"] for e in starts}) == 2
    # only rank 0 wrote: one log, echoed by one launcher only, one split file
    fold = nnunet_dirs["results"].joinpath(*FOLD)
    assert len(list(fold.glob("training_log_*.txt"))) == 1
    assert sum(out.count("Epoch 1") for out in outputs) == 1
    assert (nnunet_dirs["preprocessed"] / "Dataset901_Tiny" / "splits_final.json").is_file()
    debug = json.loads((fold / "debug.json").read_text())
    assert debug["is_ddp"] == "True" and debug["batch_size"] == "1"  # global batch 2 split over 2 ranks
    assert (fold / "validation" / "summary.json").is_file()

    # the checkpoint has the structure of a single-process one, plus one generator state per rank
    ddp_checkpoint = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=True)
    assert set(CHECKPOINT_KEYS) <= set(ddp_checkpoint)
    per_rank = ddp_checkpoint["rng_state_per_rank"]
    assert len(per_rank) == 2 and per_rank[0]["numpy"] != per_rank[1]["numpy"]
    assert ddp_checkpoint["rng_state"]["numpy"] == per_rank[0]["numpy"]
    single_results = tmp_path / "single_results"
    single_results.mkdir()
    monkeypatch.setenv("nnUNet_results", str(single_results))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    run_training(901, "3d_fullres", 0, "tests.training.torchrun_helpers.RecordingTrainer", device="cpu",
                 run_validation=False)
    single = load_checkpoint_file(single_results.joinpath(*FOLD, "checkpoint_final.pth"))
    assert "rng_state_per_rank" not in single
    assert _structure(ddp_checkpoint) == _structure(single)
    assert set(single["optimizer_state"]["state"]) <= set(ddp_checkpoint["optimizer_state"]["state"])

    # and it loads in the predictor
    from nnunet.inference.predictor import nnUNetPredictor

    dataset_json = fold.parent / "dataset.json"  # the generated dataset says numTraining 0, which the predictor rejects
    dataset_json.write_text(json.dumps(dict(json.loads(dataset_json.read_text()), numTraining=5)))
    predictor = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(fold.parent, use_folds=(0,), checkpoint_name="checkpoint_final.pth")
    logits = predictor.predict_logits_from_preprocessed_data(torch.rand(1, 16, 16, 16))
    assert tuple(logits.shape) == (3, 16, 16, 16) and torch.isfinite(logits).all()


@pytest.mark.slow
def test_restarts_with_shared_store_are_refused(nnunet_dirs, tmp_path):
    """torchrun's shared rendezvous store breaks restarted groups (pytorch#135712): one clear line up front."""
    make_3d_dataset(nnunet_dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    env = subprocess_env()
    env.pop("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", None)
    log = tmp_path / "node.log"
    launcher = start_torchrun(0, 1, free_port(), "shared-store", train_args("RecordingTrainer"), env, log,
                              nproc_per_node=2, max_restarts=1, share_store=True)
    try:
        launcher.wait(timeout=180)
    finally:
        stop(launcher)
    output = log.read_text()
    assert launcher.returncode != 0
    assert "nnunet: error: torchrun --max-restarts 1 with its shared rendezvous store" in output
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in output and "[rank0]: Traceback" not in output
    assert not (nnunet_dirs["results"] / "Dataset901_Tiny").exists()


def test_incomplete_launcher_environment_is_one_line(nnunet_dirs, monkeypatch, capsys):
    make_3d_dataset(nnunet_dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert train_main(["901", "3d_fullres", "0", "-device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RANK set but WORLD_SIZE, LOCAL_RANK not" in err
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert train_main(["901", "3d_fullres", "0", "-device", "cpu", "-num_gpus", "2"]) == 1
    assert "cannot be used under torchrun" in capsys.readouterr().err
    assert not any(nnunet_dirs["results"].iterdir())


def test_omp_num_threads_is_respected(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr("nnunet.training.run.run_training", lambda *a, **k: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert train_main(["901", "3d_fullres", "0", "-device", "cpu"]) == 0
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert train_main(["901", "3d_fullres", "0", "-device", "cuda"]) == 0
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert train_main(["901", "3d_fullres", "0", "-device", "cpu"]) == 0
        assert seen == [3, 1, os.cpu_count()]
        monkeypatch.setenv("OMP_NUM_THREADS", "many")
        assert train_main(["901", "3d_fullres", "0", "-device", "cpu"]) == 1
        err = capsys.readouterr().err
        assert "OMP_NUM_THREADS must be a positive integer" in err and "'many'" in err and len(seen) == 3
    finally:
        torch.set_num_threads(before)
