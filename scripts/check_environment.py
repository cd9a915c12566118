"""Questions scripts/setup.sh asks about the environment it installs into (exit status 0 = yes / go on).

    nnunet-v1       stop with a message if nnU-Net v1 (distribution `nnunet`, version 1.x) is installed
    old-name        is this project installed under its old distribution name `nnunet` (0.x)?
    real-nnunetv2   may the `nnunetv2` namespace be installed (no real nnU-Net v2 here)? Says why not.
"""
from __future__ import annotations

import sys
from importlib import metadata

OUR_TAG = "+nnunetfast"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def main(question: str) -> int:
    if question == "nnunet-v1":
        version = _version("nnunet")
        if version is not None and version.split(".")[0] == "1":
            print(f"nnU-Net v1 ({version}) is installed in {sys.prefix}. It is imported as `nnunet` too, so the "
                  f"two cannot share an environment: use another one (NNUNET_VENV=/path/to/venv).", file=sys.stderr)
            return 1
        return 0
    if question == "old-name":
        version = _version("nnunet")
        return 0 if version is not None and version.startswith("0.") else 1
    if question == "real-nnunetv2":
        version = _version("nnunetv2")
        if version is not None and OUR_TAG not in version:
            print(f"nnU-Net {version} (nnunetv2) is installed in {sys.prefix}: the nnunetv2 namespace of "
                  f"nnunet-fast is not installed, the real one stays. Programs importing nnunetv2 use it.")
            return 1
        return 0
    raise SystemExit(f"unknown question {question!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
