"""How much memory a case needs, how much there is, and how much a case used.

The in-RAM path holds, at its peak, the preprocessed image, the float16 accumulators of the sliding window,
the logits on their way to the export process and, there, the resampled logits, float64 temporaries of the
resampling, the label maps and (``--save_probabilities``) float32 probabilities before and after un-cropping.
:func:`in_ram_bytes` adds these up; when the sum does not fit the budget (``--max_ram_gb``, or otherwise 70 %
of the memory the system reports available), the case is predicted in slabs (:func:`nnunet.inference.engine.predict_slabs`).
"""
from __future__ import annotations

import math
import os
import resource
from typing import Sequence

GIB = 1024 ** 3
#: share of the available memory a case may plan with when no --max_ram_gb is given (the preprocessing and
#: export workers and the rest of the machine need the remainder)
AUTO_BUDGET_FRACTION = 0.7


def available_bytes() -> int:
    """``MemAvailable`` of /proc/meminfo, capped by a cgroup memory limit; total memory where unknown."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f, open(usage_file) as g:
                limit, usage = f.read().strip(), int(g.read().strip())
            if limit.isdigit() and int(limit) < 1 << 60:
                available = min(available, int(limit) - usage)
        except (OSError, ValueError):
            continue
    return max(available, 0)


def budget_bytes(max_ram_gb: float | None) -> int:
    """What one case may use: ``max_ram_gb`` if given, else :data:`AUTO_BUDGET_FRACTION` of what is available."""
    if max_ram_gb is not None:
        return int(max_ram_gb * GIB)
    return int(available_bytes() * AUTO_BUDGET_FRACTION)


def in_ram_bytes(input_shape: Sequence[int], num_heads: int, cropped_shape: Sequence[int],
                 full_shape: Sequence[int], save_probabilities: bool) -> int:
    """Estimated peak bytes of the in-RAM path for one case (prediction process and export process together).

    Args:
        input_shape: preprocessed (C, X, Y, Z). cropped_shape: ``shape_after_cropping_and_before_resampling``.
        full_shape: ``shape_before_cropping``.
    """
    channels, voxels = input_shape[0], math.prod(input_shape[1:])
    out_voxels, full_voxels = math.prod(cropped_shape), math.prod(full_shape)
    predict = channels * voxels * 4 + (num_heads + 1) * voxels * 2
    hand_over = 2 * num_heads * voxels * 2  # pickled to the export process and unpickled there
    export = num_heads * out_voxels * 2 + 2 * out_voxels * 8 + out_voxels + 2 * full_voxels
    if save_probabilities:
        export += 2 * num_heads * out_voxels * 4 + 2 * num_heads * full_voxels * 4
    return predict + hand_over + export


class PeakMemory:
    """Peak resident memory of this process since :meth:`reset` (Linux: ``VmHWM``, reset through
    ``/proc/self/clear_refs``; elsewhere the lifetime peak)."""

    def __init__(self) -> None:
        self.resettable = self._write_clear_refs()

    @staticmethod
    def _write_clear_refs() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def reset(self) -> None:
        if self.resettable:
            self._write_clear_refs()

    def peak_bytes(self) -> int:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
