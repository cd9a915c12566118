"""nnU-Net 2.8.1's ``InitWeights_He``: dynamic-network-architectures' class (the one nnU-Net uses)."""
from __future__ import annotations

from dynamic_network_architectures.initialization.weight_init import InitWeights_He

__all__ = ["InitWeights_He"]
