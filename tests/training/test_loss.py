"""Losses: values equal nnU-Net's on seeded inputs, and hand-computed values on tiny cases."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch

from nnunet.training.loss import DeepSupervisionLoss, DiceBCELoss, DiceCELoss, SoftDiceLoss, deep_supervision_weights
from tests.helpers import FIXTURES

torch.set_num_threads(1)
sys.path.insert(0, str(FIXTURES / "training"))
from make_fixtures import LOSS_CASES, loss_inputs  # noqa: E402

REF = json.loads((FIXTURES / "training" / "loss_values.json").read_text())


def _loss(case):
    dice_kw = {"batch_dice": case["batch_dice"], "smooth": 1e-5, "ddp": False}
    if case["regions"]:
        return DiceBCELoss({}, {**dice_kw, "do_bg": True}, use_ignore_label=bool(case["ignore"]))
    return DiceCELoss({**dice_kw, "do_bg": False}, {}, ignore_label=case["ignore"])


@pytest.mark.parametrize("name", sorted(LOSS_CASES))
def test_loss_equals_reference(name):
    case = LOSS_CASES[name]
    logits, target = (torch.from_numpy(a) for a in loss_inputs(case))
    loss = _loss(case)
    assert float(loss(logits, target)) == pytest.approx(REF[name]["loss"], rel=1e-5, abs=1e-6)
    ds = DeepSupervisionLoss(loss, [4 / 7, 2 / 7, 1 / 7, 0.0])
    small = (slice(None), slice(None)) + tuple(slice(None, None, 2) for _ in logits.shape[2:])
    value = ds([logits, logits[small], logits, logits], [target, target[small], target, target])
    assert float(value) == pytest.approx(REF[name]["deep_supervision"], rel=1e-5, abs=1e-6)


def test_soft_dice_hand_computed():
    # probabilities given directly (no nonlinearity); 1 sample, 2 channels, 4 voxels
    p = torch.tensor([[[0.9, 0.8, 0.1, 0.2], [0.1, 0.2, 0.9, 0.8]]])
    y = torch.tensor([[[0, 0, 1, 0]]])
    # foreground channel only: I = 0.9, P = 2.0, G = 1 -> dc = (1.8 + s) / (3 + s)
    s = 1e-5
    expected = -(1.8 + s) / (3 + s)
    assert float(SoftDiceLoss(None, batch_dice=False, do_bg=False, smooth=s)(p, y)) == pytest.approx(expected)
    # with background: bg I = 0.9 + 0.8 + 0.2 = 1.9, P = 2.0, G = 3 -> dc_bg = (3.8 + s) / (5 + s)
    both = -((3.8 + s) / (5 + s) + (1.8 + s) / (3 + s)) / 2
    assert float(SoftDiceLoss(None, batch_dice=False, do_bg=True, smooth=s)(p, y)) == pytest.approx(both)


def test_dice_ce_hand_computed_and_all_ignored():
    logits = torch.zeros(1, 2, 2)  # uniform softmax 0.5
    target = torch.tensor([[[1, 0]]])
    # CE = ln 2; Dice fg: I = 0.5, P = 1, G = 1 -> (1 + s) / (2 + s)
    s = 1e-5
    loss = DiceCELoss({"batch_dice": False, "do_bg": False, "smooth": s}, {})
    assert float(loss(logits, target)) == pytest.approx(math.log(2) - (1 + s) / (2 + s))
    ignored = DiceCELoss({"batch_dice": False, "do_bg": False, "smooth": s}, {}, ignore_label=2)
    all_ignored = torch.full((1, 1, 2), 2)
    # no annotated voxel: CE term 0, Dice = -(0 + s) / (0 + s) = -1
    assert float(ignored(logits, all_ignored)) == pytest.approx(-1.0)


def test_masked_bce_sums_over_region_channels():
    logits = torch.zeros(1, 2, 3)  # BCE of each element = ln 2
    target = torch.tensor([[[1.0, 0, 1], [0, 0, 1], [0, 1, 0]]])  # last channel: ignore mask (voxel 1 ignored)
    loss = DiceBCELoss({}, {"batch_dice": False, "do_bg": True, "smooth": 1e-5}, weight_dice=0,
                       use_ignore_label=True)
    # 2 valid voxels x 2 region channels x ln2 / 2 valid voxels = 2 ln 2
    assert float(loss(logits, target)) == pytest.approx(2 * math.log(2))


def test_deep_supervision_weights():
    assert deep_supervision_weights(1) == [1.0]
    assert deep_supervision_weights(4) == pytest.approx([4 / 7, 2 / 7, 1 / 7, 0.0])
    w = deep_supervision_weights(3, last_weight=1e-6)
    assert sum(w) == pytest.approx(1) and w[-1] > 0
    assert np.allclose(w[:2], np.array([1, 0.5]) / (1.5 + 1e-6))


def test_single_term_variants():
    from nnunet.registry import TRAINERS

    logits, target = (torch.from_numpy(a) for a in loss_inputs(LOSS_CASES["ce_dice"]))
    ce_only = DiceCELoss({"batch_dice": False, "do_bg": False, "smooth": 1e-5}, {}, weight_dice=0)
    expected = torch.nn.functional.cross_entropy(logits, target[:, 0].long())
    assert float(ce_only(logits, target)) == pytest.approx(float(expected), rel=1e-6)
    dice_only = DiceCELoss({"batch_dice": False, "do_bg": False, "smooth": 1e-5}, {}, weight_ce=0)
    dice = SoftDiceLoss(lambda x: torch.softmax(x, 1), batch_dice=False, do_bg=False, smooth=1e-5)
    assert float(dice_only(logits, target)) == pytest.approx(float(dice(logits, target)), rel=1e-6)
    assert TRAINERS.get("nnUNetTrainerCELoss").loss_name == "ce"
    assert TRAINERS.get("nnUNetTrainerDiceLoss").loss_name == "dice"
    assert TRAINERS.get("nnUNetTrainerDiceCELoss_noSmooth").dice_smooth == 0
