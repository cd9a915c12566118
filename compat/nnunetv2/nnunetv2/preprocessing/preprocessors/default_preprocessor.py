"""nnU-Net 2.8.1's ``DefaultPreprocessor``: ours (:mod:`nnunet.preprocessing.preprocessor`)."""
from __future__ import annotations

from nnunet.preprocessing.preprocessor import DefaultPreprocessor

__all__ = ["DefaultPreprocessor"]
