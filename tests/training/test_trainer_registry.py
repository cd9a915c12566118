"""Every trainer class of nnU-Net 2.8.1 exists here under its name and sets up what nnU-Net's sets up.

The list of classes and what each one sets up come from ``tests/fixtures/training/reference_trainers.json``,
generated once from the installed reference by ``make_trainer_fixtures.py`` (walking its trainer package; no
hand-written list). For each class and each of three tiny configurations (2d, 3d, anisotropic 3d) this test
builds our trainer and compares: hyper-parameters, batch and patch size, rotation / dummy-2-D / initial patch /
mirror axes (training and inference), the training and validation augmentation pipelines (classes and
arguments), the optimizer and the learning rate of selected epochs, the loss value on seeded inputs, and the
network (keys, shapes, and with the same seed the same initial values). Set-ups that fail in nnU-Net (Primus on
2-D or on patches not divisible by 8, the abstract Primus base) must fail here with a clear error.

The large Primus networks (B, M, L; up to 330 M parameters) are compared by keys and shapes only, built on
torch's meta device; the S-sized ones are built for real and compared value by value.
"""
from __future__ import annotations

import contextlib
import copy
import json
import sys
from unittest import mock

import numpy as np
import pytest
import torch
from torch import nn

from nnunet.errors import NnunetError
from nnunet.registry import TRAINERS
from nnunet.training.trainer import nnUNetTrainer
from tests.helpers import FIXTURES
from tests.training.helpers import is_heavy

sys.path.insert(0, str(FIXTURES / "training"))
from describe import (describe_optimizer, describe_transform, digest, seeded_loss_inputs)  # noqa: E402

torch.set_num_threads(1)
REF = json.loads((FIXTURES / "training" / "reference_trainers.json").read_text())
NAMES = sorted(REF["trainers"])
CONFIGS = sorted(REF["plans"]["configurations"])
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
            (root / var).mkdir()
            mp.setenv(var, str(root / var))
        yield root


def make_trainer(name: str, config: str) -> nnUNetTrainer:
    cls = TRAINERS.get(name)
    trainer = cls(copy.deepcopy(REF["plans"]), config, 0, copy.deepcopy(REF["dataset_json"]), torch.device("cpu"))
    trainer.print_to_log_file = lambda *a, **k: None
    trainer.logger.log = lambda *a, **k: None
    return trainer


@contextlib.contextmanager
def light_network(cls: type):
    """Replace a heavy network by a single convolution (optimizer, schedule, loss and transforms do not depend on
    it)."""
    tiny = classmethod(lambda c, plans, conf, n_in, n_out, ds=True: nn.Conv3d(n_in, n_out, 1))
    with mock.patch.object(cls, "build_network_architecture", tiny):
        yield


def initialized(name: str, config: str) -> nnUNetTrainer:
    trainer = make_trainer(name, config)
    torch.manual_seed(0)
    with light_network(type(trainer)) if is_heavy(name) else contextlib.nullcontext():
        trainer.initialize()
    return trainer


def test_every_reference_trainer_exists_here():
    assert len(NAMES) == 77  # 2.8.1: 57 nnUNetTrainer*, 15 Primus (with AbstractPrimus), BS8, 4 private Primus
    missing = [n for n in NAMES if n not in TRAINERS]
    assert not missing
    assert all(issubclass(TRAINERS.get(n), nnUNetTrainer) for n in NAMES)


CASES = [(n, c) for n in NAMES for c in CONFIGS]
FAILING = [(n, c) for n, c in CASES if "error" in REF["trainers"][n]["configurations"][c]]
WORKING = [(n, c) for n, c in CASES if (n, c) not in FAILING]


@pytest.mark.parametrize("name, config", FAILING)
def test_setups_that_fail_in_nnunet_fail_clearly(env, name, config):
    trainer = make_trainer(name, config)
    with pytest.raises(NnunetError) as info:
        trainer.initialize()  # Primus refuses the patch size before it allocates anything
    message = str(info.value)
    assert ("3-D" in message or "divisible by 8" in message or "base class" in message), message


def _spatial(trainer) -> dict:
    rotation, dummy, initial, mirror = trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    axes = trainer.inference_allowed_mirroring_axes
    return {"rotation": [float(r) for r in rotation], "dummy_2d": bool(dummy),
            "initial_patch_size": [int(i) for i in initial],
            "mirror_axes": None if mirror is None else [int(m) for m in mirror],
            "inference_mirror_axes": None if axes is None else [int(a) for a in axes]}


_SPATIAL_STAGES = ("SpatialTransform", "Convert3DTo2DTransform", "Convert2DTo3DTransform")


def _transforms(trainer) -> tuple:
    """The training pipeline as nnU-Net 2.8.1 composes it (``bgv2``), after checking that the default fused
    pipeline is the same pipeline: the same stages after the spatial one, the same spatial parameters."""
    cm, lm = trainer.configuration_manager, trainer.label_manager
    ds = trainer._get_deep_supervision_scales()
    rotation, dummy, _, mirror = trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()

    def build():
        return trainer.get_training_transforms(cm.patch_size, rotation, ds, mirror, dummy,
                                               use_mask_for_norm=cm.use_mask_for_norm, is_cascaded=False,
                                               foreground_labels=lm.foreground_labels, regions=None,
                                               ignore_label=None)
    fused = build()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("nnUNet_augmentation_pipeline", "bgv2")
        train = build()
    if hasattr(fused, "draw_spatial"):
        stages = [describe_transform(t) for t in train.transforms]
        assert [describe_transform(t) for t in fused.transforms[1:]] == [
            d for d in stages if next(iter(d)) not in _SPATIAL_STAGES]
        spatial = next(t for t in train.transforms if type(t).__name__ == "SpatialTransform")
        for key in ("p_rotation", "rotation", "p_scaling", "scaling"):
            assert getattr(fused.spatial, key) == getattr(spatial, key), key
        assert fused.spatial.patch_size[-len(spatial.patch_size):] == tuple(spatial.patch_size)
        assert fused.spatial.seg_order == (0 if spatial.mode_seg == "nearest" else 1)
        assert spatial.p_synchronize_scaling_across_axes == 1 and spatial.p_elastic_deform == 0
    val = trainer.get_validation_transforms(ds, is_cascaded=False, foreground_labels=lm.foreground_labels,
                                            regions=None, ignore_label=None)
    return describe_transform(train), describe_transform(val)


@pytest.mark.parametrize("name, config", WORKING)
def test_setup_matches_reference(env, name, config):
    ref = REF["trainers"][name]["configurations"][config]
    trainer = initialized(name, config)
    for key, value in ref["hparams"].items():
        assert getattr(trainer, key) == pytest.approx(value), key
    assert trainer.configuration_manager.batch_size == ref["configuration_batch_size"]
    assert trainer.configuration_manager.patch_size == ref["patch_size"]
    spatial = _spatial(trainer)
    assert spatial.pop("rotation") == pytest.approx(ref["spatial"]["rotation"])
    assert spatial == {k: v for k, v in ref["spatial"].items() if k != "rotation"}
    train, val = _transforms(trainer)
    assert train == REF["transforms"][ref["train_transforms"]]
    assert val == REF["transforms"][ref["val_transforms"]]
    assert describe_optimizer(trainer.optimizer) == ref["optimizer"]
    lrs = {}
    for epoch in REF["lr_epochs"]:
        if epoch < trainer.num_epochs:
            trainer.current_epoch = epoch
            trainer.on_train_epoch_start()
            lrs[str(epoch)] = trainer.optimizer.param_groups[0]["lr"]
    assert lrs == pytest.approx(ref["lrs"], rel=1e-9)
    assert _loss(trainer) == pytest.approx(ref["loss"]["value"], rel=1e-5, abs=1e-6)


def _loss(trainer) -> float:
    patch = trainer.configuration_manager.patch_size
    scales = trainer._get_deep_supervision_scales() if trainer.enable_deep_supervision else [[1.0] * len(patch)]
    shapes = [[int(round(p * s)) for p, s in zip(patch, scale)] for scale in scales]
    outputs, targets = seeded_loss_inputs(shapes, trainer.label_manager.num_segmentation_heads)
    with torch.no_grad():
        if trainer.enable_deep_supervision:
            return float(trainer.loss(outputs, targets))
        return float(trainer.loss(outputs[0], targets[0]))


def _network_cases():
    seen, cases = set(), []
    for name in NAMES:
        for config in CONFIGS:
            ref = REF["trainers"][name]["configurations"][config]
            if "error" not in ref and (ref["network"], config) not in seen:
                seen.add((ref["network"], config))
                cases.append((name, config))
    return cases


@pytest.mark.parametrize("name, config", _network_cases())
def test_network_matches_reference(env, name, config):
    """Same modules, keys and shapes; built with the same seed, the same initial values (not for the heavy
    Primus sizes, which are built on the meta device)."""
    ref = REF["trainers"][name]["configurations"][config]
    expected = REF["networks"][ref["network"]]
    trainer = make_trainer(name, config)
    args = (trainer.plans_manager, trainer.configuration_manager, trainer.determine_num_input_channels(),
            trainer.label_manager.num_segmentation_heads, trainer.enable_deep_supervision)
    if is_heavy(name):
        with torch.device("meta"):
            network = trainer.build_network_architecture(*args)
    else:
        torch.manual_seed(0)
        network = trainer.build_network_architecture(*args)
    state = network.state_dict()
    assert type(network).__name__ == expected["class"]
    assert {k: list(v.shape) for k, v in state.items()} == {k: t["shape"] for k, t in expected["tensors"].items()}
    assert digest({k: list(v.shape) for k, v in state.items()} | {"class": type(network).__name__}) == ref["network"]
    if not is_heavy(name):
        sums = {k: float(v.double().sum()) for k, v in state.items()}
        assert sums == pytest.approx({k: t["sum"] for k, t in expected["tensors"].items()}, rel=1e-6, abs=1e-6)


def test_attributes_not_constructors():
    """Variants are class attributes (and a few hooks); no shipped variant defines __init__ to set
    hyper-parameters, except the probabilistic-oversampling base, which derives its fraction from the batch."""
    with_init = sorted(n for n in NAMES if "__init__" in vars(TRAINERS.get(n)))
    assert with_init == ["nnUNetTrainer", "nnUNetTrainer_probabilisticOversampling"]


def test_probabilistic_oversampling_fraction_follows_the_batch(env):
    for config, batch in (("2d", 4), ("3d", 2)):
        trainer = make_trainer("nnUNetTrainer_probabilisticOversampling", config)
        assert trainer.configuration_manager.batch_size == batch
        assert trainer.oversample_foreground_percent == pytest.approx(np.mean(
            [j >= round(batch * 0.67) for j in range(batch)]))


def test_oversampling_split_over_ddp_ranks(env, monkeypatch):
    """Positional oversampling: each rank forces its share of the global positions. Probabilistic: the batch is
    split, the probability stays global (nnU-Net's probabilistic trainers)."""
    from nnunet.training import ddp

    monkeypatch.setattr(ddp, "rank_and_world", lambda: (1, 2))
    expected = {"nnUNetTrainer": (1, 1.0), "nnUNetTrainer_probabilisticOversampling": (1, 0.5),
                "nnUNetTrainer_probabilisticOversampling_010": (1, 0.1)}
    for name, (batch, fraction) in expected.items():
        trainer = make_trainer(name, "3d")  # global batch 2: position 1 is forced
        trainer.is_ddp = True
        trainer._set_batch_size_and_oversample()
        assert (trainer.batch_size, trainer.oversample_foreground_percent) == (batch, pytest.approx(fraction)), name
