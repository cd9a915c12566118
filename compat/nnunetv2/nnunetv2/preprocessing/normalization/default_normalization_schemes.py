"""nnU-Net 2.8.1's normalization schemes: ours (:mod:`nnunet.preprocessing.normalization`)."""
from __future__ import annotations

from nnunet.preprocessing.normalization import (CTNormalization, ImageNormalization, NoNormalization,
                                                RescaleTo01Normalization, RGBTo0_1Normalization, ZScoreNormalization)

RGBTo01Normalization = RGBTo0_1Normalization

__all__ = ["CTNormalization", "ImageNormalization", "NoNormalization", "RGBTo01Normalization",
           "RGBTo0_1Normalization", "RescaleTo01Normalization", "ZScoreNormalization"]
