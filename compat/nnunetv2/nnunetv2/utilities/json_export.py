"""nnU-Net 2.8.1's JSON helpers: numpy values turned into plain Python ones."""
from __future__ import annotations

from nnunet.utils.json import to_builtin

__all__ = ["fix_types_iterable", "recursive_fix_for_json_export"]


def recursive_fix_for_json_export(my_dict: dict) -> None:
    """In place: every numpy number, array, tuple and numpy key in ``my_dict`` becomes plain Python."""
    fixed = to_builtin(my_dict)
    my_dict.clear()
    my_dict.update(fixed)


def fix_types_iterable(iterable, output_type):
    return output_type(to_builtin(list(iterable)))
