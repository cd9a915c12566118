"""Network logits -> segmentation (and probabilities) in the geometry of the original image, and files.

Order (the inverse of preprocessing): resample the *logits* to the cropped shape with the configuration's
probabilities resampling function -> softmax/sigmoid -> label map -> un-crop -> un-transpose -> write with the
plans' reader/writer.

Memory: the logits are resampled one channel at a time and kept in the dtype they arrive in (float16 from the
sliding window), label maps are made without a float32 copy of all channels unless probabilities are asked
for, and nothing is ever converted to float64 as a whole.

This module does not import torch (tensors are accepted and converted), so export worker processes start fast
and stay small.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from nnunet.io.labels import LabelManager, sigmoid, softmax  # noqa: F401 (kept importable from here)
from nnunet.io.readers import reader_class
from nnunet.planning.plans import Configuration, Plans
from nnunet.utils.files import PARTIAL_FOLDER, publish  # noqa: F401 (PARTIAL_FOLDER: where files are written first)
from nnunet.utils.json import save_pickle


def spacings_for_export(properties: dict[str, Any], plans: Plans,
                        configuration: Configuration) -> tuple[list[float], list[float]]:
    """(spacing of the network output, spacing of the cropped original image), both in transposed axis order.

    A 2-D configuration has two spacings; the first (slice) axis keeps the image's own spacing.
    """
    original = [float(properties["spacing"][i]) for i in plans.transpose_forward]
    current = list(configuration.spacing)
    if len(current) < len(properties["shape_after_cropping_and_before_resampling"]):
        current = [original[0], *current]
    return current, original


def _as_numpy(array) -> np.ndarray:
    """numpy view of a numpy array or a (CPU or device) torch tensor."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def resample_logits(logits, properties: dict[str, Any], plans: Plans,
                    configuration: Configuration) -> np.ndarray:
    """Resample (heads, *network_shape) logits to ``shape_after_cropping_and_before_resampling``.

    Uses the configuration's ``resampling_fn_probabilities`` one channel at a time (float32 in, the input's
    float dtype out), so the peak extra memory is about two single-channel float32 volumes.
    """
    logits = _as_numpy(logits)
    target_shape = [int(s) for s in properties["shape_after_cropping_and_before_resampling"]]
    if list(logits.shape[1:]) == target_shape:
        return logits
    current, original = spacings_for_export(properties, plans, configuration)
    resample = configuration.resampling_fn("probabilities")
    out_dtype = logits.dtype if logits.dtype in (np.float16, np.float32) else np.float32
    out = np.empty((logits.shape[0], *target_shape), dtype=out_dtype)
    for c in range(logits.shape[0]):
        channel = logits[c:c + 1].astype(np.float32, copy=False)
        out[c] = resample(channel, target_shape, current, original)[0]
    return out


def apply_inference_nonlinearity(logits: np.ndarray, label_manager: LabelManager) -> np.ndarray:
    """Softmax over channels (labels) or per-channel sigmoid (regions), as float32."""
    return label_manager.apply_inference_nonlin(logits)


def logits_to_label_map(logits: np.ndarray, label_manager: LabelManager) -> np.ndarray:
    """Label map straight from logits: argmax for labels, sigmoid > 0.5 painting in order for regions.

    Softmax is skipped for labels (it does not change the argmax); for regions the sigmoid is applied one
    channel at a time.
    """
    if not label_manager.has_regions:
        return label_manager.to_label_map(logits)
    seg = np.zeros(logits.shape[1:], dtype=np.uint16 if max(label_manager.all_labels) > 255 else np.uint8)
    for i, label in enumerate(label_manager.regions_class_order):
        seg[sigmoid(logits[i]) > 0.5] = label
    return seg


def bbox_slicer(bbox: Sequence[Sequence[int]]) -> tuple[slice, ...]:
    return tuple(slice(int(lo), int(hi)) for lo, hi in bbox)


def uncrop_segmentation(seg: np.ndarray, properties: dict[str, Any], label_manager: LabelManager) -> np.ndarray:
    """Place ``seg`` at ``bbox_used_for_cropping`` in zeros of ``shape_before_cropping``."""
    dtype = np.uint8 if len(label_manager.foreground_labels) < 255 else np.uint16
    full = np.zeros([int(s) for s in properties["shape_before_cropping"]], dtype=dtype)
    full[bbox_slicer(properties["bbox_used_for_cropping"])] = seg
    return full


def uncrop_probabilities(probabilities: np.ndarray, properties: dict[str, Any],
                         label_manager: LabelManager) -> np.ndarray:
    """Place (heads, ...) probabilities into ``shape_before_cropping``; outside the crop background is 1 (labels)
    or everything is 0 (regions)."""
    return label_manager.revert_cropping_on_probabilities(probabilities, properties["bbox_used_for_cropping"],
                                                          properties["shape_before_cropping"])


def convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, plans: Plans, configuration: Configuration, label_manager: LabelManager,
        properties: dict[str, Any], return_probabilities: bool = False):
    """Logits at network resolution -> label map (and probabilities) in the original image's geometry.

    Returns:
        the (X, Y, Z) label map in the reader's axis order, or ``(label_map, probabilities)`` where the
        probabilities are (heads, X, Y, Z) float32.
    """
    logits = resample_logits(logits, properties, plans, configuration)
    probabilities = None
    if return_probabilities:
        probabilities = apply_inference_nonlinearity(logits, label_manager)
        del logits
        seg = label_manager.to_label_map(probabilities)
    else:
        seg = logits_to_label_map(logits, label_manager)
        del logits
    backward = list(plans.transpose_backward)
    seg = uncrop_segmentation(seg, properties, label_manager).transpose(backward)
    if probabilities is None:
        return seg
    probabilities = uncrop_probabilities(probabilities, properties, label_manager)
    return seg, probabilities.transpose([0] + [a + 1 for a in backward])


def write_outputs(seg: np.ndarray, probabilities: np.ndarray | None, properties: dict[str, Any], plans: Plans,
                  dataset_json: dict[str, Any], output_file_truncated: str | os.PathLike) -> None:
    """Write ``{out}.npz`` (key ``probabilities``) + ``{out}.pkl`` if probabilities are given, then the
    segmentation ``{out}{file_ending}`` with the plans' reader/writer. Each file appears complete or not at all
    (:func:`nnunet.utils.files.publish`; a full disk raises ``OutputError`` naming the file) and the segmentation
    comes last, so its presence means the case is complete. ``probabilities`` may also be a
    :class:`~nnunet.inference.slab_export.ProbabilityFile`."""
    out = str(output_file_truncated)
    if probabilities is not None:
        with publish(out + ".npz") as tmp:
            if hasattr(probabilities, "save_npz"):  # a slab export's probabilities file
                probabilities.save_npz(tmp)
            else:
                np.savez_compressed(tmp, probabilities=probabilities)
        save_pickle(properties, out + ".pkl")
    writer = reader_class(plans.image_reader_writer)()
    target = out + dataset_json["file_ending"]
    with publish(target) as tmp:
        writer.write_seg(seg, tmp, properties)


def export_prediction_from_logits(logits, properties: dict[str, Any],
                                  configuration: Configuration, plans: Plans, dataset_json: dict[str, Any],
                                  output_file_truncated: str | os.PathLike, save_probabilities: bool = False) -> None:
    """Convert logits to the original geometry and write the segmentation (and probabilities) files."""
    label_manager = plans.label_manager(dataset_json)
    result = convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, plans, configuration, label_manager, properties, return_probabilities=save_probabilities)
    seg, probabilities = result if save_probabilities else (result, None)
    write_outputs(seg, probabilities, properties, plans, dataset_json, output_file_truncated)
