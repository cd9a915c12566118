"""Random label boxes and in-memory cases for the augmentation tests (what PatchLoader reads, no files)."""
from __future__ import annotations

import numpy as np

def blobs(shape, labels: int, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """int16 label boxes of random size and place, overlapping, plus a corner of -1 (outside the nonzero mask)."""
    seg = np.zeros((channels, *shape), np.int16)
    for c in range(channels):
        for label in range(1, labels + 1):
            lo = rng.integers(0, np.maximum(1, np.array(shape) * 3 // 4))
            size = rng.integers(2, np.maximum(3, np.array(shape) // 2))
            seg[(c, *[slice(a, a + b) for a, b in zip(lo, size)])] = label
        seg[(c, *[slice(0, 3)] * len(shape))] = -1  # 2-D cases: the -1 corner spans the single slice
    return seg

class FakeCases:
    """What PatchLoader reads: identifiers and load_case (arrays, no previous stage, class locations)."""

    def __init__(self, rng, shape, labels, n=3):
        self.identifiers = [f"c{i}" for i in range(n)]
        self.cases = {}
        for key in self.identifiers:
            seg = blobs(shape, labels, rng)
            locations = {k: np.argwhere(seg == k) for k in range(1, labels + 1)}
            self.cases[key] = (rng.normal(size=(1, *shape)).astype(np.float32), seg, None,
                               {"class_locations": locations})

    def load_case(self, key):
        return self.cases[key]
