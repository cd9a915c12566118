"""nnU-Net 2.8.1's Python API, mapped onto :mod:`nnunet`.

Every module here is a thin adapter: the names, signatures and defaults of nnU-Net 2.8.1, the work done by
``nnunet``. See documentation/python_api.md for what is covered.
"""
from __future__ import annotations

from importlib import metadata as _metadata

_OUR_TAG = "+nnunetfast"


def _check_installation() -> str:
    try:
        version = _metadata.version("nnunetv2")
    except _metadata.PackageNotFoundError:  # imported from a source tree (tests put compat/ on the path)
        return "2.8.1" + _OUR_TAG
    if _OUR_TAG not in version:
        raise ImportError(
            f"The nnunetv2 package imported from {__file__} is nnunet-fast's namespace, but the installed "
            f"nnunetv2 distribution is nnU-Net {version}: the two are mixed in this environment. Reinstall one "
            f"of them (pip install --force-reinstall) in a clean environment.")
    return version


__version__ = _check_installation()
