"""nnU-Net 2.8.1's ``get_network_from_plans``: ours, the same arguments."""
from __future__ import annotations

from nnunet.networks.from_plans import get_network_from_plans

__all__ = ["get_network_from_plans"]
