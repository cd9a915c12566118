"""postprocessing.pkl in nnU-Net's format, and its readable postprocessing.json twin.

nnU-Net pickles ``(list_of_functions, list_of_kwargs)``; the functions are stored as references to its own
module (``nnunetv2.postprocessing.remove_connected_components``). We write exactly those references, so nnU-Net
can load our files, and map them back to our implementation when loading either tool's files. Loading goes
through the data-only unpickler of :mod:`nnunet.utils.safe_pickle`, which accepts these references and plain
data and nothing else.
"""
from __future__ import annotations

import io
import os
import pickle
import types
from pathlib import Path
from typing import Any, Callable

from nnunet.errors import NnunetError
from nnunet.evaluation.metrics import label_key
from nnunet.postprocessing.components import remove_all_but_largest_component_from_segmentation
from nnunet.utils.json import atomic_write_bytes, load_json, save_json
from nnunet.utils.safe_pickle import load_data_pickle

REFERENCE_MODULE = "nnunetv2.postprocessing.remove_connected_components"

#: postprocessing functions by the name stored in the files
POSTPROCESSING_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "remove_all_but_largest_component_from_segmentation": remove_all_but_largest_component_from_segmentation,
}

_OURS_TO_REFERENCE = {fn: (REFERENCE_MODULE, name) for name, fn in POSTPROCESSING_FUNCTIONS.items()}

_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {}
for _name, _fn in POSTPROCESSING_FUNCTIONS.items():
    _ALLOWED_GLOBALS[(REFERENCE_MODULE, _name)] = _fn
    _ALLOWED_GLOBALS[(_fn.__module__, _name)] = _fn


class _ReferencePickler(pickle._Pickler):  # the Python pickler lets us emit a global reference by name
    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        target = _OURS_TO_REFERENCE.get(obj) if isinstance(obj, types.FunctionType) else None
        if target is None:
            super().save(obj, save_persistent_id)
            return
        memo = self.memo.get(id(obj))
        if memo is not None:
            self.write(self.get(memo[0]))
            return
        self.save(target[0])
        self.save(target[1])
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)


def _plain(value: Any) -> Any:
    """numpy integers -> int, recursively (tuples stay tuples, lists stay lists)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def dumps_postprocessing(pp_fns: list[Callable], pp_fn_kwargs: list[dict]) -> bytes:
    """Pickle bytes of ``(pp_fns, pp_fn_kwargs)`` with the functions referenced as nnU-Net's."""
    for fn in pp_fns:
        if fn not in _OURS_TO_REFERENCE:
            raise NnunetError(f"Cannot store postprocessing function {getattr(fn, '__name__', fn)!r}; known: "
                              f"{', '.join(POSTPROCESSING_FUNCTIONS)}.")
    buffer = io.BytesIO()
    _ReferencePickler(buffer, protocol=4).dump((list(pp_fns), list(pp_fn_kwargs)))
    return buffer.getvalue()


def save_postprocessing_pkl(pp_fns: list[Callable], pp_fn_kwargs: list[dict], path: str | os.PathLike) -> None:
    """Write postprocessing.pkl (atomically) in nnU-Net's format."""
    atomic_write_bytes(path, dumps_postprocessing(pp_fns, pp_fn_kwargs))


def load_postprocessing(path: str | os.PathLike) -> tuple[list[Callable], list[dict]]:
    """Read postprocessing.pkl (ours or nnU-Net's) or the postprocessing.json twin.

    Returns:
        ``(functions, kwargs)`` where the functions are ours.
    """
    path = Path(path)
    if not path.is_file():
        raise NnunetError(f"Postprocessing file not found: {path}")
    if path.suffix == ".json":
        info = load_json(path)
        try:
            names, kwargs = info["postprocessing_fns"], info["postprocessing_kwargs"]
        except KeyError as e:
            raise NnunetError(f"{path} has no {e.args[0]!r} entry; is it a postprocessing.json?") from None
        unknown = [n for n in names if n not in POSTPROCESSING_FUNCTIONS]
        if unknown:
            raise NnunetError(f"{path}: unknown postprocessing function(s) {unknown}.")
        return [POSTPROCESSING_FUNCTIONS[n] for n in names], list(kwargs)
    obj = load_data_pickle(path, extra=_ALLOWED_GLOBALS, what="postprocessing file")
    if not (isinstance(obj, tuple) and len(obj) == 2 and len(obj[0]) == len(obj[1])):
        raise NnunetError(f"{path} does not hold (functions, kwargs) as written by determine_postprocessing.")
    return list(obj[0]), [_plain(k) for k in obj[1]]


def postprocessing_json(baseline: dict, postprocessed: dict, pp_fns: list[Callable],
                        pp_fn_kwargs: list[dict]) -> dict[str, Any]:
    """The postprocessing.json content (summaries with text keys, see :func:`save_postprocessing_json`)."""
    def part(summary: dict) -> dict:
        return {"foreground_mean": summary["foreground_mean"],
                "mean": {label_key(k): v for k, v in summary["mean"].items()}}

    return {"input_folder": part(baseline), "postprocessed": part(postprocessed),
            "postprocessing_fns": [fn.__name__ for fn in pp_fns], "postprocessing_kwargs": list(pp_fn_kwargs)}


def save_postprocessing_json(content: dict[str, Any], path: str | os.PathLike) -> None:
    save_json(content, path, sort_keys=True, indent=4, allow_nan=True)  # may hold NaN Dice, as nnU-Net
