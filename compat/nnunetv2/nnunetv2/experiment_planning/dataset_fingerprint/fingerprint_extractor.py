"""nnU-Net 2.8.1's ``DatasetFingerprintExtractor``: ours (:class:`nnunet.fingerprint.extract.DatasetFingerprintExtractor`).

``num_processes=None`` means ``default_num_processes`` (2.8.1's default, 8).
"""
from __future__ import annotations

from nnunet.fingerprint.extract import DatasetFingerprintExtractor

__all__ = ["DatasetFingerprintExtractor"]
