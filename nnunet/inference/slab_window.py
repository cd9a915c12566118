"""Sliding window in slabs: the logits of an image that does not fit in memory, one slab of rows at a time.

The tiles are visited in the in-RAM order (first axis outermost). All tiles of one "tile row" start at the
same first-axis coordinate, and later rows start further along, so once a row is done the voxels before the
next row's start receive no more contributions: they are final and leave the accumulator. The accumulators
therefore only span one patch along the first axis (``heads x patch_x x Y x Z`` instead of
``heads x X x Y x Z``), and every voxel still receives the same additions, in the same order and float
precision, as in :func:`nnunet.inference.sliding_window.sliding_window_logits`: the slabs are bit-identical
to the corresponding rows of the in-RAM logits.

Folds are interleaved per tile row (each fold has its own accumulator; a row's final slabs are summed in fold
order and divided by the number of folds, as the in-RAM ensemble does), so no fold's full-size logits are
ever held or written to disk.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from nnunet.inference.sliding_window import (compute_gaussian, iter_tile_slicers, padding_for_patch,
                                             predict_with_mirroring)

Index = tuple  # (slice(None), int | slice, slice, ...) as yielded by iter_tile_slicers


def _row_start(index: Index) -> int:
    return index[1] if isinstance(index[1], int) else index[1].start


def tile_rows(spatial_shape: Sequence[int], patch_size: Sequence[int], step_size: float) -> list[list[Index]]:
    """The tiles of :func:`iter_tile_slicers`, grouped by their first-axis start (order kept)."""
    rows: list[list[Index]] = []
    for index in iter_tile_slicers(spatial_shape, patch_size, step_size):
        if not rows or _row_start(rows[-1][0]) != _row_start(index):
            rows.append([])
        rows[-1].append(index)
    return rows


class RollingAccumulator:
    """``logits_sum`` and ``weight_sum`` of the padded rows ``[origin, origin + depth)``."""

    def __init__(self, num_heads: int, depth: int, plane: Sequence[int], dtype: torch.dtype):
        self.origin, self.depth = 0, depth
        self.logits = torch.zeros((num_heads, depth, *plane), dtype=dtype)
        self.weights = torch.zeros((depth, *plane), dtype=dtype)

    def _local(self, index: Index) -> Index:
        first = index[1]
        if isinstance(first, int):
            return (slice(None), first - self.origin, *index[2:])
        return (slice(None), slice(first.start - self.origin, first.stop - self.origin), *index[2:])

    def add(self, index: Index, prediction: torch.Tensor, weights: torch.Tensor | None) -> None:
        """The in-RAM update, in the same operations: weight the tile, add it and its weights."""
        local = self._local(index)
        if weights is not None:
            prediction *= weights
            self.weights[local[1:]] += weights
        else:
            self.weights[local[1:]] += 1
        self.logits[local] += prediction

    def pop(self, stop: int) -> torch.Tensor:
        """Final logits of the rows ``[origin, stop)``; the accumulator then starts at ``stop``."""
        n = stop - self.origin
        final = torch.div(self.logits[:, :n], self.weights[:n])
        if bool(torch.isinf(final).any()):
            raise RuntimeError("The accumulated logits overflowed (inf). Accumulate in float32 "
                               "(accumulation_dtype=torch.float32) or lower the importance-map scale.")
        keep = self.depth - n
        if keep > 0:
            self.logits[:, :keep] = self.logits[:, n:].clone()
            self.weights[:keep] = self.weights[n:].clone()
        self.logits[:, max(keep, 0):] = 0
        self.weights[max(keep, 0):] = 0
        self.origin = stop
        return final


def read_tile(image: np.ndarray, index: Index, pads: Sequence[tuple[int, int]]) -> torch.Tensor:
    """``padded_image[index][None]`` without padding the image: the part inside the image, zeros around it."""
    if not any(before or after for before, after in pads):
        return torch.from_numpy(np.ascontiguousarray(image[index], dtype=np.float32))[None]
    source, target, shape = [slice(None)], [slice(None)], [image.shape[0]]
    for axis, (selection, (before, _)) in enumerate(zip(index[1:], pads)):
        if isinstance(selection, int):  # leading axis of a 2-D configuration: never padded
            source.append(selection)
            continue
        size = image.shape[axis + 1]
        start, stop = selection.start - before, selection.stop - before
        lo, hi = max(start, 0), min(stop, size)
        source.append(slice(lo, hi))
        target.append(slice(lo - start, hi - start))
        shape.append(stop - start)
    tile = np.zeros(shape, dtype=np.float32)
    tile[tuple(target)] = image[tuple(source)]
    return torch.from_numpy(tile)[None]


def _unpad_rows(start: int, stop: int, logits: torch.Tensor, pads: Sequence[tuple[int, int]],
                image_shape: Sequence[int]) -> tuple[int, torch.Tensor] | None:
    """The rows of a padded slab that belong to the image, cropped in-plane; None if there are none."""
    before = pads[0][0]
    lo, hi = max(start - before, 0), min(stop - before, image_shape[0])
    if hi <= lo:
        return None
    crop = [slice(b, b + n) for (b, _), n in zip(pads[1:], image_shape[1:])]
    return lo, logits[(slice(None), slice(lo + before - start, hi + before - start), *crop)]


def sliding_window_slabs(select_network: Callable[[int], Callable[[torch.Tensor], torch.Tensor]],
                         num_folds: int, image: np.ndarray, patch_size: Sequence[int], num_heads: int,
                         step_size: float = 0.5, use_gaussian: bool = True,
                         mirror_axes: Sequence[int] | None = None, device: torch.device | str = "cpu",
                         accumulation_dtype: torch.dtype = torch.float16,
                         on_tile: Callable[[], None] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(first_row, logits)`` for consecutive slabs of a (C, X, Y, Z) image, fold-averaged.

    Args:
        select_network: ``select_network(f)`` returns fold ``f``'s network (loading its weights if needed).
        num_folds: number of folds to average.
        image: (C, X, Y, Z) float32 array (may be a read-only memory map).
        on_tile: called after every tile and fold (progress).

    Yields:
        The first row (in image coordinates) and the (heads, rows, Y, Z) logits of ``accumulation_dtype`` on
        the CPU; together the slabs cover every row once, in order.
    """
    device = torch.device(device)
    spatial = list(image.shape[1:])
    pads = padding_for_patch(spatial, patch_size)
    padded = [s + a + b for s, (a, b) in zip(spatial, pads)]
    rows = tile_rows(padded, patch_size, step_size)
    depth = patch_size[0] if len(patch_size) == len(padded) else 1
    accumulators = [RollingAccumulator(num_heads, depth, padded[1:], accumulation_dtype) for _ in range(num_folds)]
    weights = compute_gaussian(patch_size, dtype=accumulation_dtype) if use_gaussian else None
    with torch.inference_mode():
        for i, row in enumerate(rows):
            for fold, accumulator in enumerate(accumulators):
                network = select_network(fold)
                for index in row:
                    tile = read_tile(image, index, pads).to(device)
                    prediction = predict_with_mirroring(network, tile, mirror_axes)[0].to("cpu")
                    accumulator.add(index, prediction, weights)
                    if on_tile is not None:
                        on_tile()
            stop = _row_start(rows[i + 1][0]) if i + 1 < len(rows) else padded[0]
            total = accumulators[0].pop(stop)
            for accumulator in accumulators[1:]:
                total += accumulator.pop(stop)
            if num_folds > 1:
                total /= num_folds
            unpadded = _unpad_rows(_row_start(row[0]), stop, total, pads, spatial)
            if unpadded is not None:
                yield unpadded
