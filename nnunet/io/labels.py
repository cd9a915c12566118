"""Label semantics from dataset.json: plain labels, regions and the ignore label."""
from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from nnunet.errors import DatasetError

LabelValue = int | tuple[int, ...]


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
