"""nnU-Net 2.8.1's ``export_pretrained_model``: :func:`nnunet.sharing.export.export_pretrained_model`."""
from __future__ import annotations

from typing import List, Tuple, Union

from nnunet.sharing import export as _export

__all__ = ["export_pretrained_model"]


def export_pretrained_model(dataset_name_or_id: Union[int, str], output_file: str,
                            configurations: Tuple[str] = ("2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres"),
                            trainer: str = "nnUNetTrainer", plans_identifier: str = "nnUNetPlans",
                            folds: Tuple[int, ...] = (0, 1, 2, 3, 4), strict: bool = True,
                            save_checkpoints: Tuple[str, ...] = ("checkpoint_final.pth",),
                            export_crossval_predictions: bool = False) -> None:
    _export.export_pretrained_model(dataset_name_or_id, output_file, configurations, trainer, plans_identifier, folds,
                                    strict, save_checkpoints, export_crossval_predictions)
