"""nnU-Net 2.8.1's model download: :func:`nnunet.sharing.install.download_and_install_from_url`.

``chunk_size`` of :func:`download_file` is accepted and not used.
"""
from __future__ import annotations

from pathlib import Path

from nnunet.sharing import install as _install

__all__ = ["download_and_install_from_url", "download_file"]


def download_and_install_from_url(url):
    _install.download_and_install_from_url(url)


def download_file(url: str, local_filename: str, chunk_size=8192 * 16) -> str:
    return str(_install.download_file(url, Path(local_filename)))
