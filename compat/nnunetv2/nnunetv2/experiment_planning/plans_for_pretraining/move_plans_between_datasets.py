"""nnU-Net 2.8.1's ``move_plans_between_datasets``: ours (:mod:`nnunet.planning.move_plans`)."""
from __future__ import annotations

from nnunet.planning.move_plans import move_plans_between_datasets

__all__ = ["move_plans_between_datasets"]
