"""nnU-Net 2.8.1's ``install_model_from_zip_file``: :func:`nnunet.sharing.install.install_model_from_zip_file`.

The zip is checked before anything is extracted (no paths outside nnUNet_results, no links); existing model
folders are not overwritten.
"""
from __future__ import annotations

from nnunet.sharing import install as _install

__all__ = ["install_model_from_zip_file"]


def install_model_from_zip_file(zip_file: str):
    _install.install_model_from_zip_file(zip_file)
