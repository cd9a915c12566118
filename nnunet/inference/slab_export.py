"""Export in slabs: logits rows -> resampled rows -> label map (and probabilities), without a full-size copy.

:class:`SlabResampler` takes network-resolution logits in consecutive slabs of rows (first axis) and gives the
rows of the original-spacing logits as soon as the input rows they interpolate from have arrived. It applies
the rules of the default probabilities resampling (``resample_data_or_seg_to_shape``: linear, or per-slice
linear with nearest neighbour across slices when the spacing is anisotropic, "separate z"): in-plane axes
with the same separable operators as the whole-volume function, the first axis with the same two-tap linear
weights or nearest-slice choice. Both compute in float64 and round to float32, then float16, like the
in-RAM path; the order of the per-axis passes can differ, which moves float64 results by a few units in the
last place, so a resampled logit can differ in rare voxels that sit on a float16 rounding boundary, and a
label only where two classes' logits are then tied. Clipping to the input range, which the whole-volume
function applies, never changes a linear interpolation beyond such rounding, so it is left out.

:class:`SlabExporter` turns each resampled slab into labels (argmax, or sigmoid painting for regions) and,
if asked, probabilities, and places them into the un-cropped volume: a uint8/uint16 label map in memory (one
or two bytes per voxel) and the probabilities in :class:`ProbabilityFile`, a raw file on disk that is
streamed into the ``.npz`` at the end, so no float32 volume of all classes is held in memory.
"""
from __future__ import annotations

import contextlib
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from scipy.ndimage import map_coordinates

from nnunet.constants import ANISO_THRESHOLD
from nnunet.inference.export import apply_inference_nonlinearity, logits_to_label_map, spacings_for_export
from nnunet.io.labels import LabelManager
from nnunet.planning.plans import Configuration, Plans
from nnunet.preprocessing.resampling import separate_z_axis, spline_resize
from nnunet.utils.files import OutputError, describe_os_error

#: the resampling functions whose slab-wise version is implemented here
SLAB_RESAMPLERS = ("resample_data_or_seg_to_shape",)


def linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two input indices and their weights per output index: linear interpolation at pixel centres
    ``(i + 0.5) * n_in / n_out - 0.5`` with edge extension (the grid-mode zoom of the whole-volume path)."""
    coords = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    start = np.floor(coords)
    w0 = 1.0 - (coords - start)
    first = start.astype(np.intp)
    return np.clip(first, 0, n_in - 1), np.clip(first + 1, 0, n_in - 1), w0


def nearest_slices(n_in: int, n_out: int) -> np.ndarray:
    """Input slice per output slice for nearest-neighbour resampling across slices (same rounding as the
    whole-volume path, which asks ``map_coordinates`` for it)."""
    z = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    picked = map_coordinates(np.arange(n_in, dtype=np.float64), z[None], order=0, mode="nearest")
    return picked.astype(np.intp)


class _AxisPass:
    """Resampling along one axis: 'same', 'spline' (order 0/1 operators), 'linear' taps or 'nearest' slices."""

    def __init__(self, n_in: int, n_out: int, kind: str, order: int):
        self.n_in, self.n_out = n_in, n_out
        self.kind = "same" if n_in == n_out else kind
        self.order = order
        if self.kind == "nearest":
            self.first = self.last = nearest_slices(n_in, n_out)
        elif self.kind in ("linear", "spline") and order == 1:
            self.first, self.last, self.w0 = linear_taps(n_in, n_out)
        elif self.kind == "spline":  # order 0 spline = nearest pixel centre
            self.first = self.last = np.clip(np.floor((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5 + 0.5)
                                             .astype(np.intp), 0, n_in - 1)
        if self.kind == "same":
            self.first = self.last = np.arange(n_out)

    def rows(self, rows: dict[int, np.ndarray], start: int, stop: int) -> np.ndarray:
        """Output rows ``[start, stop)`` along the first axis from the input rows in ``rows``."""
        first = np.stack([rows[i] for i in self.first[start:stop]], axis=1)
        if self.kind in ("linear", "spline") and self.order == 1:
            second = np.stack([rows[i] for i in self.last[start:stop]], axis=1)
            w0 = self.w0[start:stop].reshape(1, -1, *([1] * (first.ndim - 2)))
            return first * w0 + second * (1.0 - w0)
        return first


class SlabResampler:
    """Resample (heads, X, Y, Z) logits arriving as consecutive first-axis slabs to ``out_shape``.

    Use :meth:`for_case`, which returns None when the configuration's probabilities resampling has no slab
    version (another function, or a spline order above 1).
    """

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], current_spacing: Sequence[float],
                 new_spacing: Sequence[float], order: int = 1, order_z: int = 0,
                 force_separate_z: bool | None = None, threshold: float = ANISO_THRESHOLD):
        self.in_shape, self.out_shape = list(in_shape), list(out_shape)
        axis = separate_z_axis(current_spacing, new_spacing, force_separate_z, threshold)
        self.separate_axis = axis
        self.order = order
        kinds = [("nearest" if order_z == 0 else "linear", order_z) if a == axis else ("spline", order)
                 for a in range(3)]
        self.first_axis = _AxisPass(in_shape[0], out_shape[0], *kinds[0])
        self.plane_kinds = kinds[1:]
        self.pending: dict[int, np.ndarray] = {}
        self.received = 0
        self.next_row = 0

    @classmethod
    def for_case(cls, logits_shape: Sequence[int], properties: dict[str, Any], plans: Plans,
                 configuration: Configuration) -> "SlabResampler | None":
        target = [int(s) for s in properties["shape_after_cropping_and_before_resampling"]]
        current, original = spacings_for_export(properties, plans, configuration)
        if list(logits_shape) == target:
            return cls(logits_shape, target, current, original)
        name = configuration.data["resampling_fn_probabilities"]
        kwargs = dict(configuration.data.get("resampling_fn_probabilities_kwargs", {}))
        order, order_z = int(kwargs.get("order", 3)), int(kwargs.get("order_z", 0))
        if name not in SLAB_RESAMPLERS or kwargs.get("is_seg", False) or order > 1 or order_z > 1:
            return None
        return cls(logits_shape, target, current, original, order, order_z, kwargs.get("force_separate_z"),
                   kwargs.get("separate_z_anisotropy_threshold", ANISO_THRESHOLD))

    @property
    def identity(self) -> bool:
        return self.in_shape == self.out_shape

    def row_bytes(self, num_heads: int) -> int:
        """Working memory per first-axis row (float64 in-plane rows, kept and produced)."""
        return 3 * num_heads * math.prod(self.out_shape[1:]) * 8

    def _in_plane(self, rows: np.ndarray) -> np.ndarray:
        """Resample the in-plane axes of (heads, k, Y, Z) rows, float64, in the whole-volume function's way."""
        out = rows.astype(np.float64)
        spline_shape = list(out.shape)
        for a, (kind, order) in enumerate(self.plane_kinds, start=2):
            if kind == "spline":
                spline_shape[a] = self.out_shape[a - 1]
        if spline_shape != list(out.shape):
            out = spline_resize(out, spline_shape, self.order)
        for a, (kind, order) in enumerate(self.plane_kinds, start=2):
            n_in, n_out = out.shape[a], self.out_shape[a - 1]
            if kind == "nearest" and n_in != n_out:
                out = np.take(out, nearest_slices(n_in, n_out), axis=a)
            elif kind == "linear" and n_in != n_out:
                first, last, w0 = linear_taps(n_in, n_out)
                shape = [1] * out.ndim
                shape[a] = -1
                w0 = w0.reshape(shape)
                out = np.take(out, first, axis=a) * w0 + np.take(out, last, axis=a) * (1.0 - w0)
        return out

    def push(self, rows: np.ndarray, max_rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """Take the next input rows (heads, k, Y, Z); yield ``(first_output_row, rows)`` of the logits' dtype,
        at most ``max_rows`` rows at a time, for every output row that can now be computed."""
        if self.identity:
            for start in range(0, rows.shape[1], max_rows):
                yield self.received + start, rows[:, start:start + max_rows]
            self.received += rows.shape[1]
            return
        for start in range(0, rows.shape[1], max_rows):
            part = self._in_plane(rows[:, start:start + max_rows])
            for i in range(part.shape[1]):
                self.pending[self.received + i] = part[:, i]
            self.received += part.shape[1]
            yield from self._emit(rows.dtype, max_rows)

    def _emit(self, dtype: np.dtype, max_rows: int) -> Iterator[tuple[int, np.ndarray]]:
        last = self.first_axis.last
        stop = self.next_row
        while stop < self.out_shape[0] and last[stop] < self.received:
            stop += 1
        for start in range(self.next_row, stop, max_rows):
            end = min(stop, start + max_rows)
            values = self.first_axis.rows(self.pending, start, end)
            self.next_row = end
            needed = self.first_axis.first[end] if end < self.out_shape[0] else self.received
            for i in [i for i in self.pending if i < needed]:
                del self.pending[i]
            yield start, values.astype(np.float32).astype(dtype if dtype in (np.float16, np.float32) else np.float32)


class ProbabilityFile:
    """Un-cropped probabilities (heads, *reader-order shape) in a raw float32 file, written slab by slab and
    turned into ``{case}.npz`` (key ``probabilities``) by streaming, so they never have to fit in memory."""

    def __init__(self, path: str | os.PathLike, num_heads: int, full_shape: Sequence[int],
                 transpose_forward: Sequence[int], background_channel: bool,
                 destination: str | os.PathLike | None = None):
        self.path = Path(path)
        self.destination = destination or path
        backward = [int(np.argsort(transpose_forward)[a]) for a in range(len(full_shape))]
        self.shape = (num_heads, *[int(full_shape[a]) for a in backward])
        self.to_network_order = [0] + [int(a) + 1 for a in transpose_forward]
        self._allocate(math.prod(self.shape) * 4)
        if background_channel:  # outside the crop background has probability 1 (label training)
            for start in range(0, full_shape[0], 16):
                self.write(slice(start, min(start + 16, full_shape[0])), None, background_only=True)

    def _allocate(self, size: int) -> None:
        """Reserve the file's blocks now: writing through a memory map into a sparse file on a full disk would
        kill the process (SIGBUS) instead of raising an error."""
        try:
            with open(self.path, "wb") as f:
                f.truncate(size)  # reads as zeros
                if hasattr(os, "posix_fallocate") and size:
                    os.posix_fallocate(f.fileno(), 0, size)
        except OSError as e:
            self.remove()
            raise OutputError(describe_os_error(e, self.destination) + f" (the probabilities need "
                              f"{size / 1024 ** 2:.1f} MB of temporary space in {self.path.parent} first)") from None

    def write(self, rows: slice, values: np.ndarray | None, in_plane: tuple[slice, ...] = (),
              background_only: bool = False) -> None:
        """``values`` (heads, rows, *in-plane) into the rows (network axis order) of the un-cropped volume."""
        mapped = np.memmap(self.path, dtype=np.float32, mode="r+", shape=self.shape)
        view = mapped.transpose(self.to_network_order)
        if background_only:
            view[0, rows] = 1
        else:
            view[(slice(None), rows, *in_plane)] = values
        mapped.flush()
        del view, mapped  # unmapped: the written pages no longer count towards this process's memory

    def save_npz(self, target: str | os.PathLike, chunk_bytes: int = 1 << 26) -> None:
        """Write ``target`` as ``np.savez_compressed(target, probabilities=...)`` would, reading the raw file in
        chunks."""
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                  "shape": self.shape}
        with zipfile.ZipFile(target, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            with archive.open("probabilities.npy", mode="w", force_zip64=True) as member, \
                    open(self.path, "rb") as raw:
                np.lib.format.write_array_header_2_0(member, header)
                for block in iter(lambda: raw.read(chunk_bytes), b""):
                    member.write(block)

    def remove(self) -> None:
        """Delete the raw file (and the scratch folder once no other writer uses it)."""
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


class SlabExporter:
    """Collects resampled slabs into the un-cropped label map (and probabilities) of one case."""

    def __init__(self, logits_shape: Sequence[int], properties: dict[str, Any], plans: Plans,
                 configuration: Configuration, label_manager: LabelManager, resampler: SlabResampler,
                 probabilities: ProbabilityFile | np.ndarray | None, max_rows: int):
        self.properties, self.plans, self.label_manager = properties, plans, label_manager
        self.resampler, self.probabilities, self.max_rows = resampler, probabilities, max(1, max_rows)
        self.bbox = [(int(lo), int(hi)) for lo, hi in properties["bbox_used_for_cropping"]]
        dtype = np.uint8 if len(label_manager.foreground_labels) < 255 else np.uint16
        self.seg = np.zeros([int(s) for s in properties["shape_before_cropping"]], dtype=dtype)
        self.slabs = 0

    def push(self, rows: np.ndarray) -> None:
        """Next network-resolution logits rows (heads, k, Y, Z)."""
        for start, values in self.resampler.push(rows, self.max_rows):
            self._place(start, values)

    def _place(self, start: int, logits: np.ndarray) -> None:
        self.slabs += 1
        rows = slice(self.bbox[0][0] + start, self.bbox[0][0] + start + logits.shape[1])
        in_plane = tuple(slice(lo, hi) for lo, hi in self.bbox[1:])
        if self.probabilities is None:
            self.seg[(rows, *in_plane)] = logits_to_label_map(logits, self.label_manager)
            return
        probabilities = apply_inference_nonlinearity(logits, self.label_manager)
        self.seg[(rows, *in_plane)] = self.label_manager.to_label_map(probabilities)
        if isinstance(self.probabilities, ProbabilityFile):
            self.probabilities.write(rows, probabilities, in_plane)
        else:
            self.probabilities[(slice(None), rows, *in_plane)] = probabilities

    def segmentation(self) -> np.ndarray:
        """The label map in the reader's axis order (call after the last slab)."""
        if self.resampler.next_row != self.resampler.out_shape[0] and not self.resampler.identity:
            raise RuntimeError(f"Slab export incomplete: {self.resampler.next_row} of "
                               f"{self.resampler.out_shape[0]} rows.")
        return self.seg.transpose(list(self.plans.transpose_backward))
