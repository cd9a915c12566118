"""nnU-Net 2.8.1's ``collate_outputs``: a list of per-step dicts -> one dict of stacked or listed values."""
from __future__ import annotations

from typing import List

import numpy as np

__all__ = ["collate_outputs"]


def collate_outputs(outputs: List[dict]) -> dict:
    collated = {}
    for key in outputs[0]:
        values = [o[key] for o in outputs]
        if np.isscalar(values[0]):
            collated[key] = values
        elif isinstance(values[0], np.ndarray):
            collated[key] = np.vstack([v[None] for v in values])
        elif isinstance(values[0], list):
            collated[key] = [item for v in values for item in v]
        else:
            raise ValueError(f"Cannot collate values of type {type(values[0])} (key {key!r})")
    return collated
