"""nnU-Net 2.8.1's ``generate_crossval_split``: ours, the same folds for the same seed."""
from __future__ import annotations

from typing import List

from nnunet.training.data.splits import generate_crossval_split as _generate

__all__ = ["generate_crossval_split"]


def generate_crossval_split(train_identifiers: List[str], seed=12345, n_splits=5) -> List[dict]:
    return _generate(train_identifiers, seed, n_splits)
