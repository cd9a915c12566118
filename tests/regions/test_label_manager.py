"""Label-manager facts for regions and the ignore label, as nnU-Net 2.8.1 reports them (values checked against
its LabelManager), and how region keys are written in summary.json."""
from __future__ import annotations

import numpy as np
import pytest

from nnunet.errors import DatasetError
from nnunet.evaluation.metrics import label_key, parse_label_key
from nnunet.io.labels import LabelManager
from nnunet.preprocessing.class_locations import class_location_keys, sample_class_locations

CASES = [
    # labels, regions_class_order -> has_regions, all_labels, foreground_regions, heads, ignore
    ({"background": 0, "whole": [1, 2], "core": 2, "ignore": 3}, [1, 2], (True, [0, 1, 2], [(1, 2), 2], 2, 3)),
    ({"background": 0, "whole": [1, 2], "core": [2]}, [1, 2], (True, [0, 1, 2], [(1, 2), (2,)], 2, None)),
    ({"background": 0, "a": 1, "b": 2, "ignore": 3}, None, (False, [0, 1, 2], None, 3, 3)),
]


@pytest.mark.parametrize("labels,order,expected", CASES)
def test_label_manager_matches_nnunet(labels, order, expected):
    lm = LabelManager(labels, order)
    assert (lm.has_regions, lm.all_labels, lm.foreground_regions, lm.num_segmentation_heads,
            lm.ignore_label) == expected
    assert lm.foreground_labels == [1, 2]


def test_one_element_region_keeps_its_tuple_form():
    lm = LabelManager({"background": 0, "whole": [1, 2], "core": [2]}, [1, 2])
    assert [label_key(r) for r in lm.foreground_regions] == ["(1, 2)", "(2,)"]
    assert [parse_label_key(label_key(r)) for r in lm.foreground_regions] == [(1, 2), (2,)]
    seg = np.zeros((1, 4, 4, 4), dtype=np.int16)
    seg[0, 1:3, 1:3, 1:3] = 2
    seg[0, 0, 0, :2] = 1
    locations = sample_class_locations(seg, class_location_keys(lm))
    assert list(locations) == [(1, 2), (2,)] and len(locations[(1, 2)]) == 10 and len(locations[(2,)]) == 8


def test_probabilities_to_label_map_paints_in_order():
    lm = LabelManager({"background": 0, "whole": [1, 2], "core": 2, "ignore": 3}, [1, 2])
    probs = np.array([[0.9, 0.9, 0.2, 0.6], [0.1, 0.7, 0.8, 0.4]])  # (regions, voxels)
    # core painted over whole; a core without whole still becomes 2; no voxel ever gets the ignore label
    np.testing.assert_array_equal(lm.to_label_map(probs), [1, 2, 2, 1])


@pytest.mark.parametrize("labels,order,message", [
    ({"background": 0, "whole": [1, 2], "core": 2}, None, "regions_class_order"),
    ({"background": 0, "whole": [1, 2], "core": 2}, [1], "regions_class_order"),
    ({"background": 0, "a": 1, "ignore": 5}, None, "highest"),
    ({"background": 0, "a": 1, "ignore": [2]}, None, "ignore label must be a single integer"),
    ({"background": 0, "whole": [1, 2], "core": 2, "ignore": 3}, [1, 3], "contains the ignore label"),
])
def test_bad_declarations_are_rejected(labels, order, message):
    with pytest.raises(DatasetError, match=message):
        LabelManager(labels, order)
