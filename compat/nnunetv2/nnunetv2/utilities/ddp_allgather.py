"""nnU-Net 2.8.1's DDP gather helpers; the gather is :func:`nnunet.training.loss.dice._all_gather_with_grad`, the one
our Dice loss uses with ``ddp=True``."""
from __future__ import annotations

from nnunet.training.ddp import rank_and_world
from nnunet.training.loss.dice import _all_gather_with_grad

__all__ = ["AllGatherGrad", "print_if_rank0"]


def print_if_rank0(*args) -> None:
    if rank_and_world()[0] == 0:
        print(*args)


class AllGatherGrad:
    """``AllGatherGrad.apply(tensor)``: ``tensor`` of every rank stacked on a new first axis, gradients kept
    (outside DDP: ``tensor[None]``). Only the default process group is supported."""

    @staticmethod
    def apply(tensor, group=None):
        if group is not None:
            raise NotImplementedError("AllGatherGrad.apply(tensor, group) with a process group other than the "
                                      "default is not provided by nnunet-fast's nnunetv2 namespace")
        return _all_gather_with_grad(tensor)
