"""Label semantics from dataset.json: plain labels, regions and the ignore label."""
from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from nnunet.errors import DatasetError

LabelValue = int | tuple[int, ...]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """float32 logistic function (in place on a float32 copy)."""
    out = np.negative(x, dtype=np.float32)
    np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    """float32 softmax over axis 0, with the maximum subtracted first (no overflow)."""
    out = np.array(x, dtype=np.float32)
    out -= out.max(0, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(0, keepdims=True)
    return out


def _is_tensor(x: Any) -> bool:
    """A torch tensor, told without importing torch (this module is imported by torch-free code)."""
    return type(x).__module__.startswith("torch")


def _as_label_value(value: Any, name: str) -> LabelValue:
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value) or not value:
            raise DatasetError(f"Label {name!r}: a region must be a non-empty list of integers, got {value!r}.")
        return tuple(int(v) for v in value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise DatasetError(f"Label {name!r}: value must be an integer or a list of integers, got {value!r}.")


class LabelManager:
    """What the ``labels`` (and ``regions_class_order``) of dataset.json mean.

    Args:
        labels: dataset.json ``labels`` (name -> int or list of ints).
        regions_class_order: required when any label is a region.
    """

    def __init__(self, labels: dict[str, Any], regions_class_order: list[int] | None = None):
        if not isinstance(labels, dict) or not labels:
            raise DatasetError("dataset.json 'labels' must be a non-empty object mapping names to values.")
        self.label_dict = {name: _as_label_value(v, name) for name, v in labels.items()}
        self.regions_class_order = list(regions_class_order) if regions_class_order is not None else None
        self._validate()

    def _validate(self) -> None:
        if "background" not in self.label_dict:
            raise DatasetError("dataset.json 'labels' must contain \"background\": 0.")
        if self.label_dict["background"] != 0:
            raise DatasetError(f"The background label must be the integer 0, got {self.label_dict['background']!r}.")
        ignore = self.label_dict.get("ignore")
        if ignore is not None:
            if not isinstance(ignore, int):
                raise DatasetError(f"The ignore label must be a single integer, got {ignore!r}.")
            if ignore != max(self.all_labels) + 1:
                raise DatasetError(f"The ignore label must be the highest label value "
                                   f"(max of the other labels + 1 = {max(self.all_labels) + 1}), got {ignore}.")
        if self.has_regions:
            if self.regions_class_order is None:
                raise DatasetError("dataset.json uses regions (a label value is a list) but has no "
                                   "'regions_class_order'.")
            if ignore is not None and ignore in self.regions_class_order:
                # nnU-Net does not check this and would paint the ignore label into predictions
                raise DatasetError(f"'regions_class_order' {self.regions_class_order} contains the ignore label "
                                   f"{ignore}; it lists the labels painted for the regions and the ignore label is "
                                   f"never predicted.")
            if len(self.regions_class_order) != len(self.foreground_regions):
                raise DatasetError(f"'regions_class_order' has {len(self.regions_class_order)} entries but there "
                                   f"are {len(self.foreground_regions)} foreground regions.")

    @cached_property
    def has_regions(self) -> bool:
        return any(isinstance(v, tuple) and len(v) > 1 for v in self.label_dict.values())

    @cached_property
    def ignore_label(self) -> int | None:
        return self.label_dict.get("ignore")

    @property
    def has_ignore_label(self) -> bool:
        return self.ignore_label is not None

    @cached_property
    def all_labels(self) -> list[int]:
        """Sorted unique label integers (background included, ignore excluded)."""
        values: set[int] = set()
        for name, v in self.label_dict.items():
            if name == "ignore":
                continue
            values.update(v if isinstance(v, tuple) else (v,))
        return sorted(values)

    @cached_property
    def all_regions(self) -> list[LabelValue] | None:
        if not self.has_regions:
            return None
        regions = []
        for name, v in self.label_dict.items():
            if name == "ignore" or v == 0 or (isinstance(v, tuple) and set(v) == {0}):
                continue
            regions.append(v)  # a one-element list stays a 1-tuple, "(2,)" in summary.json (as in nnU-Net)
        return regions

    @cached_property
    def foreground_labels(self) -> list[int]:
        return [lab for lab in self.all_labels if lab != 0]

    @cached_property
    def foreground_regions(self) -> list[LabelValue] | None:
        return self.all_regions

    @property
    def num_segmentation_heads(self) -> int:
        return len(self.foreground_regions) if self.has_regions else len(self.all_labels)

    def expected_label_values(self) -> list[int]:
        """Values allowed in label files: all labels plus the ignore label."""
        return self.all_labels + ([self.ignore_label] if self.has_ignore_label else [])

    def to_label_map(self, probabilities: np.ndarray) -> np.ndarray:
        """Per-class probabilities (C, ...) -> integer label map (...)."""
        if self.has_regions:
            seg = np.zeros(probabilities.shape[1:], dtype=np.uint16 if max(self.all_labels) > 255 else np.uint8)
            for i, lab in enumerate(self.regions_class_order):
                seg[probabilities[i] > 0.5] = lab
            return seg
        return probabilities.argmax(0).astype(np.uint16 if probabilities.shape[0] > 255 else np.uint8)

    # ---- nnU-Net 2.8.1's LabelManager methods, for numpy arrays and torch tensors alike ----
    @property
    def inference_nonlin(self):
        """The function from logits to per-class probabilities (sigmoid for regions, softmax over axis 0)."""
        return self.apply_inference_nonlin

    def apply_inference_nonlin(self, logits):
        if _is_tensor(logits):
            logits = logits.float()
            return logits.sigmoid() if self.has_regions else logits.softmax(0)
        return sigmoid(logits) if self.has_regions else softmax(logits)

    def convert_probabilities_to_segmentation(self, predicted_probabilities):
        """(C, ...) probabilities -> label map: argmax, or regions painted in ``regions_class_order``."""
        if not _is_tensor(predicted_probabilities):
            return self.to_label_map(np.asarray(predicted_probabilities))
        if not self.has_regions:
            return predicted_probabilities.argmax(0)
        seg = predicted_probabilities.argmax(0).zero_()
        for i, label in enumerate(self.regions_class_order):
            seg[predicted_probabilities[i] > 0.5] = label
        return seg

    def convert_logits_to_segmentation(self, predicted_logits):
        return self.convert_probabilities_to_segmentation(self.apply_inference_nonlin(predicted_logits))

    def revert_cropping_on_probabilities(self, predicted_probabilities, bbox, original_shape):
        """Place cropped (C, ...) probabilities at ``bbox`` in the original shape; outside it background is 1
        (labels) or everything 0 (regions)."""
        where = (slice(None), *(slice(int(lo), int(hi)) for lo, hi in bbox))
        shape = (predicted_probabilities.shape[0], *[int(s) for s in original_shape])
        if _is_tensor(predicted_probabilities):
            full = predicted_probabilities.new_zeros(shape)
        else:
            full = np.zeros(shape, dtype=predicted_probabilities.dtype)
        if not self.has_regions:
            full[0] = 1
        full[where] = predicted_probabilities
        return full

    @staticmethod
    def filter_background(classes_or_regions: list) -> list:
        """The entries that are not background (0, or a region made only of 0)."""
        return [c for c in classes_or_regions
                if not (c == 0 or (isinstance(c, (tuple, list)) and all(v == 0 for v in c)))]
