"""nnU-Net 2.8.1's ``PlansManager`` and ``ConfigurationManager``: our :class:`~nnunet.planning.plans.Plans` and
:class:`~nnunet.planning.plans.Configuration` (which carry 2.8.1's names too), built from 2.8.1's arguments."""
from __future__ import annotations

import os
from typing import Union

from nnunet.planning.plans import Configuration, Plans
from nnunet.utils.json import load_json

__all__ = ["ConfigurationManager", "PlansManager"]


class PlansManager(Plans):
    """A plans.json file (its path) or its contents (a dict)."""

    def __init__(self, plans_file_or_dict: Union[str, dict]):
        if isinstance(plans_file_or_dict, dict):
            super().__init__(plans_file_or_dict)
        else:
            super().__init__(load_json(os.fspath(plans_file_or_dict)), plans_file_or_dict)


class ConfigurationManager(Configuration):
    """One configuration's dict (already resolved, as ``PlansManager.get_configuration`` gives it)."""

    def __init__(self, configuration_dict: dict):
        super().__init__(configuration_dict.get("data_identifier", "configuration"), configuration_dict)
