"""nnU-Net 2.8.1's ``get_normalization_scheme``: the normalization class for a channel name (``CT`` -> CT
normalization, anything else z-score), by the planner's rule."""
from __future__ import annotations

from nnunet.planning.rules import normalization_scheme_for_channel
from nnunet.registry import NORMALIZERS

__all__ = ["get_normalization_scheme"]


def get_normalization_scheme(channel_name: str):
    return NORMALIZERS.get(normalization_scheme_for_channel(channel_name))
