"""nnU-Net 2.8.1's ``load_pretrained_weights``: ours (all weights but the segmentation heads, read as data)."""
from __future__ import annotations

from nnunet.training.run import load_pretrained_weights as _load

__all__ = ["load_pretrained_weights"]


def load_pretrained_weights(network, fname, verbose=False):
    _load(network, fname, verbose)
