"""nnU-Net 2.8.1's ``generate_dataset_json`` on :func:`nnunet.io.dataset_json.generate_dataset_json`.

The written dataset.json is checked (labels, channels) before it is saved. ``citation`` is stored under
``citation`` (2.8.1 stores the ``release`` value there).
"""
from __future__ import annotations

from typing import List, Tuple, Union

from nnunet.io.dataset_json import generate_dataset_json as _generate_dataset_json

__all__ = ["generate_dataset_json"]


def generate_dataset_json(output_folder: str, channel_names: dict, labels: dict, num_training_cases: int,
                          file_ending: str, citation: Union[List[str], str] = None,
                          regions_class_order: Tuple[int, ...] = None, dataset_name: str = None,
                          reference: str = None, release: str = None, description: str = None,
                          overwrite_image_reader_writer: str = None,
                          license: str = "Whoever converted this dataset was lazy and didn't look it up!",
                          converted_by: str = "Please enter your name, especially when sharing datasets with others in "
                                              "a common infrastructure!",
                          **kwargs):
    optional = {"reference": reference, "release": release, "citation": citation, "description": description,
                "overwrite_image_reader_writer": overwrite_image_reader_writer}
    extra = {k: v for k, v in optional.items() if v is not None}
    _generate_dataset_json(output_folder, channel_names, labels, num_training_cases, file_ending, regions_class_order,
                           dataset_name, licence=license, converted_by=converted_by, **extra, **kwargs)
