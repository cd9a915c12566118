"""nnU-Net 2.8.1's planning commands as functions reading ``sys.argv`` (our :mod:`nnunet.cli` commands)."""
from __future__ import annotations

from nnunet.cli.fingerprint import extract_fingerprint_main as _extract_fingerprint_main
from nnunet.cli.plan import plan_experiment_main as _plan_experiment_main
from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main as _plan_and_preprocess_main
from nnunet.cli.preprocess import preprocess_main as _preprocess_main
from nnunetv2._entry import run_command as _run_command

__all__ = ["extract_fingerprint_entry", "plan_and_preprocess_entry", "plan_experiment_entry", "preprocess_entry"]


def extract_fingerprint_entry():
    _run_command(_extract_fingerprint_main)


def plan_experiment_entry():
    _run_command(_plan_experiment_main)


def preprocess_entry():
    _run_command(_preprocess_main)


def plan_and_preprocess_entry():
    _run_command(_plan_and_preprocess_main)
