"""What the trainer does differently for regions and the ignore label: targets, loss, masking, sampling.

The trainer is built from the plans the end-to-end pipeline produced (``tests/regions/pipeline.py``).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnunet.training.loss.compound import DiceBCELoss, DiceCELoss
from nnunet.training.loss.deep_supervision import DeepSupervisionLoss
from tests.regions.pipeline import CONFIG, KINDS, TRAINER

IGNORE = 3
SMOOTH = 1e-5


@pytest.fixture(params=list(KINDS))
def trainer_and_batch(request, pipelines, monkeypatch):
    from nnunet.training.run import get_trainer_from_args

    pipe = pipelines(request.param)
    pipe.set_env(monkeypatch)
    torch.manual_seed(0)
    trainer = get_trainer_from_args(pipe.dataset_id, CONFIG, 0, TRAINER, device=torch.device("cpu"))
    trainer.initialize()
    dl_tr, dl_val = trainer.get_plain_dataloaders()
    return request.param, trainer, next(dl_val), dl_tr


def expected_loss(logits: torch.Tensor, target: torch.Tensor, regions: bool, ignore: bool, batch_dice: bool
                  ) -> torch.Tensor:
    """nnU-Net's loss written out by hand, independent of nnunet.training.loss."""
    axes = (0, 2, 3, 4) if batch_dice else (2, 3, 4)
    if regions:
        mask = (1 - target[:, -1:].float()) if ignore else torch.ones_like(target[:, :1].float())
        t = (target[:, :-1] if ignore else target).float()
        p = torch.sigmoid(logits)
        bce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
        # masked BCE: summed over region channels, divided by the number of annotated voxels
        ce = (bce * mask).sum() / mask.sum().clamp_min(1e-8) if ignore else bce.mean()
    else:
        lab = target[:, 0].long()
        mask = (lab != IGNORE).float()[:, None] if ignore else torch.ones_like(target.float())
        lab_dice = torch.where(lab == IGNORE, 0, lab) if ignore else lab
        t = F.one_hot(lab_dice, logits.shape[1]).movedim(-1, 1).float()[:, 1:]  # background dropped
        p = torch.softmax(logits, 1)[:, 1:]
        ce = F.cross_entropy(logits, lab, ignore_index=IGNORE if ignore else -100)
    inter, psum, gsum = (p * t * mask).sum(axes), (p * mask).sum(axes), (t * mask).sum(axes)
    dice = (2 * inter + SMOOTH) / (psum + gsum + SMOOTH).clamp_min(1e-8)
    return ce - dice.mean()


def test_targets_and_loss_follow_regions_and_ignore(trainer_and_batch):
    kind, trainer, batch, _ = trainer_and_batch
    regions, ignore = "regions" in kind, "sparse" in kind
    lm = trainer.label_manager
    assert lm.has_regions == regions and (lm.ignore_label == IGNORE) == ignore
    assert isinstance(trainer.loss, DeepSupervisionLoss)
    inner = trainer.loss.loss
    assert isinstance(inner, DiceBCELoss if regions else DiceCELoss)
    assert inner.dc.do_bg == regions and inner.dc.apply_nonlin is not None
    if regions:
        assert inner.use_ignore_label == ignore

    targets = batch["target"]
    target = targets[0]
    if regions:  # one binary channel per region, plus the ignore mask as the last channel
        assert target.shape[1] == 2 + ignore
        assert set(torch.unique(target).tolist()) <= {0, 1}
        # region (1, 2) contains region 2 everywhere
        assert (target[:, 0] >= target[:, 1]).all()
    else:  # a label map; the ignore label is kept in the target
        assert target.shape[1] == 1
        assert set(torch.unique(target).tolist()) <= ({0, 1, 2, IGNORE} if ignore else {0, 1, 2})
    if ignore:
        ignored = target[:, -1] == 1 if regions else target[:, 0] == IGNORE
        assert ignored.any() and (~ignored).any()

    # deep-supervision outputs with the network's shapes and channel count
    gen = torch.Generator().manual_seed(1)
    outputs = [torch.randn((t.shape[0], lm.num_segmentation_heads, *t.shape[2:]), generator=gen) for t in targets]
    loss = trainer.loss(outputs, targets)
    weights = np.array([1 / 2 ** i for i in range(len(outputs))])
    weights[-1] = 0
    weights /= weights.sum()
    batch_dice = trainer.configuration_manager.batch_dice
    expected = sum(w * expected_loss(o, t, regions, ignore, batch_dice) for w, o, t in zip(weights, outputs, targets))
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_ignored_voxels_get_no_gradient(trainer_and_batch):
    kind, trainer, batch, _ = trainer_and_batch
    regions, ignore = "regions" in kind, "sparse" in kind
    target = batch["target"][0]
    heads = trainer.label_manager.num_segmentation_heads
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn((target.shape[0], heads, *target.shape[2:]), generator=gen, requires_grad=True)
    loss_fn = trainer.loss.loss
    loss = loss_fn(logits, target)
    loss.backward()
    if ignore:
        ignored = (target[:, -1:] == 1) if regions else (target == IGNORE)
    else:
        ignored = torch.zeros_like(target[:, :1], dtype=torch.bool)
        ignored[..., :3, :, :] = True  # without an ignore label these voxels must matter
    ignored = ignored.expand_as(logits)
    perturbed = logits.detach().clone()
    perturbed[ignored] += 10 * torch.randn(int(ignored.sum()), generator=gen)
    changed = loss_fn(perturbed, target)
    if ignore:
        assert (logits.grad[ignored] == 0).all()
        assert (logits.grad[~ignored] != 0).any()
        torch.testing.assert_close(changed, loss.detach(), rtol=0, atol=1e-6)
    else:
        assert (logits.grad[ignored] != 0).any()
        assert abs(float(changed) - float(loss.detach())) > 1e-3


def test_validation_step_pseudo_dice_per_region(trainer_and_batch):
    kind, trainer, batch, _ = trainer_and_batch
    trainer.network.eval()
    out = trainer.validation_step(batch)
    assert len(out["tp_hard"]) == 2  # the two regions, or labels 1 and 2 (background dropped)
    target = batch["target"][0]
    if "sparse" in kind:  # ignored voxels are not counted as TP/FP/FN
        annotated = int((target[:, -1] == 0).sum()) if "regions" in kind else int((target != IGNORE).sum())
        assert (out["tp_hard"] + out["fp_hard"] + out["fn_hard"] <= annotated).all()


def test_unforced_patches_contain_annotated_voxels(pipelines, monkeypatch):
    from nnunet.training.run import get_trainer_from_args

    pipe = pipelines("3d_sparse")
    pipe.set_env(monkeypatch)
    trainer = get_trainer_from_args(pipe.dataset_id, CONFIG, 0, TRAINER, device=torch.device("cpu"))
    trainer.initialize()
    trainer.oversample_foreground_percent = 0.0  # no forced foreground: only the ignore-label rule applies
    dl_tr, _ = trainer.get_plain_dataloaders()
    np.random.seed(0)
    for _ in range(4):
        target = next(dl_tr)["target"][0]
        for sample in target:
            assert (sample != IGNORE).any()


# loss values of nnU-Net 2.8.1 (DC_and_BCE_loss / DC_and_CE_loss with MemoryEfficientSoftDiceLoss, smooth 1e-5)
# on the batch built below: [BCE+Dice with ignore, BCE+Dice, CE+Dice with ignore label 3] x batch_dice False, True
REFERENCE_VALUES = [1.801896333694458, 0.7281550168991089, 0.7684652805328369,
                    1.801896572113037, 0.7281556725502014, 0.7684652805328369]


def test_loss_values_equal_nnunet():
    shape = (2, 2, 4, 5, 6)
    n = int(np.prod(shape))
    x = torch.from_numpy((3 * np.sin(np.arange(n) * 0.37)).reshape(shape).astype(np.float32))
    lab = torch.from_numpy((np.arange(n // 2) * 7 % 4).reshape(2, 1, 4, 5, 6))  # 0..3, 3 = ignore
    tgt = torch.cat([torch.isin(lab, torch.tensor(r)) for r in [(1, 2), (2,)]] + [lab == 3], 1)
    x3 = torch.from_numpy((2 * np.cos(np.arange(n * 3 // 2) * 0.21)).reshape(2, 3, 4, 5, 6).astype(np.float32))
    values = []
    for batch_dice in (False, True):
        kw = {"batch_dice": batch_dice, "smooth": SMOOTH, "ddp": False}
        values += [DiceBCELoss({}, {**kw, "do_bg": True}, use_ignore_label=True)(x, tgt),
                   DiceBCELoss({}, {**kw, "do_bg": True})(x, tgt[:, :2]),
                   DiceCELoss({**kw, "do_bg": False}, {}, ignore_label=3)(x3, lab)]
    np.testing.assert_allclose([float(v) for v in values], REFERENCE_VALUES, rtol=1e-6)
