"""Torch-based resampling (``resample_torch_fornnunet``, selected by the ``*_torchres`` planners).

Same decisions as :func:`nnunet.preprocessing.resampling.resample_data_or_seg_to_shape` about separate-z
handling (:func:`~nnunet.preprocessing.resampling.separate_z_axis`), computed with
``torch.nn.functional.interpolate`` as the reference's ``resample_torch_fornnunet`` does.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nnunet.constants import ANISO_THRESHOLD
from nnunet.preprocessing.resampling import separate_z_axis
from nnunet.registry import RESAMPLERS

#: a label wins outright where its interpolated (x1000) indicator exceeds this; the rest are settled by argmax
TORCH_SEG_SCALE = 1000.0
TORCH_SEG_CONFIDENT = 0.7


def _torch_interpolate(data, new_shape: Sequence[int], is_seg: bool, mode: str, memefficient_seg: bool):
    """``torch.nn.functional.interpolate`` of a (C, *spatial) tensor (2 or 3 spatial axes), no antialiasing.

    ``mode='linear'`` means bilinear/trilinear by dimension. Label maps: each label's indicator is interpolated;
    with ``memefficient_seg`` the label whose indicator exceeds 0.5 is written (later labels win), otherwise a
    label scoring above 0.7 wins at once and the remaining voxels take the argmax over float16 scores.
    """
    import torch
    from torch.nn import functional as F

    new_shape = tuple(int(s) for s in new_shape)
    if tuple(data.shape[1:]) == new_shape:
        return data
    if mode == "linear":
        mode = {2: "bilinear", 3: "trilinear"}[data.ndim - 1]
    if not is_seg:
        return F.interpolate(data[None].float(), new_shape, mode=mode, antialias=False)[0]
    labels = torch.unique(data)
    out_dtype = torch.int8 if labels.max() < 127 else torch.int16
    result = torch.zeros((data.shape[0], *new_shape), dtype=out_dtype)
    if memefficient_seg:
        for value in labels:
            result[F.interpolate((data[None] == value).float(), new_shape, mode=mode, antialias=False)[0] > 0.5] = value
        return result
    scores = torch.empty((len(labels), data.shape[0], *new_shape), dtype=torch.float16)
    settled = torch.zeros_like(result, dtype=torch.bool)
    for i, value in enumerate(labels):
        scores[i] = F.interpolate((data[None] == value).float() * TORCH_SEG_SCALE, new_shape, mode=mode,
                                  antialias=False)[0]
        confident = scores[i] > TORCH_SEG_CONFIDENT * TORCH_SEG_SCALE
        result[confident] = value.item()
        settled |= confident
    if not torch.all(settled):
        result[~settled] = labels[scores[:, ~settled].argmax(0)].to(out_dtype)
    return result


@RESAMPLERS.register
def resample_torch_fornnunet(data, new_shape: Sequence[int], current_spacing: Sequence[float],
                             new_spacing: Sequence[float], is_seg: bool = False, num_threads: int = 4,
                             device=None, memefficient_seg_resampling: bool = False,
                             force_separate_z: bool | None = None,
                             separate_z_anisotropy_threshold: float = ANISO_THRESHOLD, mode: str = "linear",
                             aniso_axis_mode: str = "nearest-exact"):
    """Resampling with ``torch.nn.functional.interpolate`` (the reference's ``resample_torch_fornnunet``).

    (Bi/tri)linear by default; with separate-z handling the slices are resized in-plane (bilinear) and then
    resampled across slices with ``aniso_axis_mode`` (nearest-exact). Accepts numpy arrays (returns numpy:
    float32 for images, int8/int16 for label maps) or tensors (returned on their device).
    """
    import torch

    new_shape = [int(s) for s in new_shape]
    was_numpy = isinstance(data, np.ndarray)
    tensor = torch.from_numpy(data) if was_numpy else data
    original_device = tensor.device
    tensor = tensor.to(device or "cpu")
    axis = separate_z_axis(current_spacing, new_spacing, force_separate_z, separate_z_anisotropy_threshold)
    threads = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        with torch.no_grad():
            if axis is None:
                out = _torch_interpolate(tensor, new_shape, is_seg, mode, memefficient_seg_resampling)
            else:
                channels = tensor.shape[0]
                others = [a for a in range(3) if a != axis]
                # slices along `axis` become extra channels of a 2-D resize
                planes = tensor.permute(0, axis + 1, others[0] + 1, others[1] + 1)
                planes = planes.reshape(channels * tensor.shape[axis + 1], *[tensor.shape[a + 1] for a in others])
                planes = _torch_interpolate(planes, [new_shape[a] for a in others], is_seg, mode,
                                            memefficient_seg_resampling)
                stacked = planes.reshape(channels, tensor.shape[axis + 1], *planes.shape[1:])
                inverse = [0] * 4
                for position, source in enumerate([0, axis + 1, others[0] + 1, others[1] + 1]):
                    inverse[source] = position
                stacked = stacked.permute(*inverse)
                out = _torch_interpolate(stacked, new_shape, is_seg, aniso_axis_mode, memefficient_seg_resampling)
    finally:
        torch.set_num_threads(threads)
    if was_numpy:
        return out.cpu().numpy()
    return out.to(original_device)
