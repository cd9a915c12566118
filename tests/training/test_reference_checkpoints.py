"""Checkpoints made by nnU-Net 2.8.1 for the trainers whose network differs from the plans' U-Net (BN,
NoDeepSupervision, Primus) load strictly into the network our predictor builds for that trainer name.

The BN / NoDeepSupervision / default checkpoints (tiny plans) were written by the reference
(``tests/fixtures/training/make_trainer_fixtures.py``). Primus checkpoints are ~100 MB even for tiny patches, so
the fixture holds the reference network's keys and shapes, and a state dict of that layout is loaded strictly;
with the reference installed, a real reference Primus-S checkpoint is made and loaded too.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from nnunet.planning.plans import Plans
from nnunet.training.checkpoint import load_checkpoint_file, strip_module_prefixes
from tests.helpers import FIXTURES

torch.set_num_threads(1)
REF = json.loads((FIXTURES / "training" / "reference_trainers.json").read_text())
CHECKPOINTS = FIXTURES / "training" / "reference_checkpoints"
REF_PYTHON = Path("/work/ref/.venv-ref/bin/python")
CONFIGS = {"2d": "2d", "3d": "3d"}


def build_network(trainer_name: str, plans: Plans, configuration, channels_in: int, channels_out: int):
    """The inference network the predictor builds for a checkpoint of ``trainer_name``."""
    try:  # the predictor split by job (inference engineer's branch): model_folder builds through the trainer class
        from nnunet.models import build_inference_network, find_trainer_class
    except ImportError:
        from nnunet.inference.predictor import build_network as build

        return build(trainer_name, plans, configuration, channels_in, channels_out)
    trainer = find_trainer_class(trainer_name, "checkpoint_final.pth")
    return build_inference_network(trainer, plans, configuration, channels_in, channels_out)


def predictor_network(trainer_name: str, config: str) -> torch.nn.Module:
    plans = Plans(REF["plans"])
    return build_network(trainer_name, plans, plans.configuration(config), 1, 3)


@pytest.mark.parametrize("path", sorted(CHECKPOINTS.glob("*.pth")), ids=lambda p: p.stem)
def test_reference_checkpoint_loads_strictly(path):
    checkpoint = load_checkpoint_file(path)
    trainer_name, config = path.stem.split("__")
    network = predictor_network(trainer_name, config)
    network.load_state_dict(strip_module_prefixes(checkpoint["network_weights"]), strict=True)
    norms = {type(m).__name__ for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase)}
    assert norms == ({f"BatchNorm{config[0]}d"} if trainer_name == "nnUNetTrainerBN" else {f"InstanceNorm{config[0]}d"})
    # the same network in inference mode: one output (deep supervision off), as nnU-Net predicts
    with torch.no_grad():
        out = network.eval()(torch.zeros((1, 1) + (16,) * int(config[0])))
    assert tuple(out.shape) == (1, 3) + (16,) * int(config[0])


PRIMUS = sorted(n for n in REF["trainers"] if "Primus" in n and n != "AbstractPrimus")


@pytest.mark.parametrize("name", PRIMUS)
def test_reference_primus_layout_loads_strictly(name):
    ref = REF["trainers"][name]["configurations"]["3d"]
    tensors = REF["networks"][ref["network"]]["tensors"]
    plans = Plans(json.loads(json.dumps(REF["plans"])))
    configuration = plans.configuration("3d")
    configuration.data["patch_size"] = ref["patch_size"]  # the _96_ / _48_ trainers write theirs into the plans
    with torch.device("meta"):
        network = build_network(name, plans, configuration, 1, 3)
        state = {k: torch.empty(t["shape"]) for k, t in tensors.items()}
    network.load_state_dict(state, strict=True, assign=True)
    assert type(network).__name__ == REF["networks"][ref["network"]]["class"]


_MAKE_PRIMUS = r"""
import copy, json, sys, torch
from unittest import mock
sys.path.insert(0, {fixtures!r})
import make_trainer_fixtures as f
from nnunetv2.training.nnUNetTrainer.primus.primus_trainers import nnUNet_Primus_S_Trainer
plans = copy.deepcopy(f.PLANS); plans["continue_training"] = False
t = nnUNet_Primus_S_Trainer(plans, "3d", 0, copy.deepcopy(f.DATASET_JSON), torch.device("cpu"))
t.initialize()
t.save_checkpoint({out!r})
"""


@pytest.mark.slow
@pytest.mark.skipif(not REF_PYTHON.is_file(), reason="reference nnU-Net venv (/work/ref/.venv-ref) not installed")
def test_real_reference_primus_checkpoint_loads_strictly(tmp_path):
    out = tmp_path / "checkpoint_final.pth"
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / name).mkdir()
    folder = tmp_path / "nnUNet_preprocessed" / REF["plans"]["dataset_name"] / "nnUNetPlans_3d"
    folder.mkdir(parents=True)
    (folder / "placeholder.b2nd").write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update({n: str(tmp_path / n) for n in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")},
               OMP_NUM_THREADS="1")
    script = _MAKE_PRIMUS.format(fixtures=str(FIXTURES / "training"), out=str(out))
    res = subprocess.run([str(REF_PYTHON), "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    checkpoint = load_checkpoint_file(out)
    assert checkpoint["trainer_name"] == "nnUNet_Primus_S_Trainer"
    network = predictor_network("nnUNet_Primus_S_Trainer", "3d")
    network.load_state_dict(strip_module_prefixes(checkpoint["network_weights"]), strict=True)
