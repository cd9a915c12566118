#!/usr/bin/env bash
# Create ./.venv (once) and install nnunet-fast with its dependencies into it, then the `nnunetv2` namespace
# (compat/nnunetv2) unless the real nnU-Net is installed there.
# On a machine without an NVIDIA GPU, torch and torchvision are pinned to CPU builds
# (requirements/constraints-cpu.txt) so pip never downloads a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
VENV="${NNUNET_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install -q --disable-pip-version-check)
# nnU-Net v1 is also imported as `nnunet`: the two cannot share an environment
"$PY" scripts/check_environment.py nnunet-v1
# this project was called `nnunet` before it took a distribution name of its own: drop the old record
if "$PY" scripts/check_environment.py old-name; then
    "$PY" -m pip uninstall -q -y nnunet
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    CONSTRAINTS=()
else
    CONSTRAINTS=(-c requirements/constraints-cpu.txt)
    "$PY" -c "import torch" 2>/dev/null || "${PIP[@]}" "${CONSTRAINTS[@]}" torch
fi
# editable install: quick to repeat, and the tests import the working tree
"${PIP[@]}" "${CONSTRAINTS[@]}" -e ".[test]"
if "$PY" scripts/check_environment.py real-nnunetv2; then
    "${PIP[@]}" --no-deps -e compat/nnunetv2
fi
