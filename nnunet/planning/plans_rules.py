"""What a plans.json must hold, key by key: the one place where plans (hand-edited ones above all) are checked.

nnU-Net's documented way to customise a configuration is to edit plans.json, so a wrong value has to be met with
a message that names the file, the configuration and the key and says what is allowed, before any work starts,
instead of a ``KeyError`` or a tensor shape mismatch deep inside training. The tables below read like the plans
documentation (documentation/planning.md, "Editing plans.json"): each rule names a key, what it may hold, and the
stages that need it. Keys that no rule names are allowed, as in nnU-Net (custom trainers read their own keys).

The stages: ``preprocess`` (nnUNet_preprocess), ``train`` (nnUNet_train) and ``predict`` (prediction from a
model folder). A stage refuses a configuration that lacks a key it needs; a key that is present is checked
whichever stage reads the plans.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from nnunet.errors import ConfigurationError
from nnunet.io.dataset_json import channel_names
from nnunet.registry import NORMALIZERS, PREPROCESSORS, READERS, RESAMPLERS

STAGES = ("preprocess", "train", "predict")

_LONGEST_VALUE = 80  # characters of a wrong value shown in a message


@dataclass(frozen=True)
class Facts:
    """What the rules compare a configuration with: its spatial dimensionality and input channel count (None:
    unknown, that comparison is skipped) and the configuration names in the plans."""

    dim: int | None
    num_channels: int | None
    configurations: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """One key: ``allowed`` says in words what it may hold (``{dim}`` and ``{channels}`` are filled in), ``ok``
    tests a present value, ``needed_by`` lists the stages that refuse plans without it."""

    key: str
    allowed: str
    ok: Callable[[Any, Facts], bool]
    needed_by: tuple[str, ...] = ()

    def describe(self, facts: Facts) -> str:
        text = self.allowed.replace("{dim}", str(facts.dim) if facts.dim is not None else "N")
        return _fill_known(text.replace("{channels}", str(facts.num_channels) if facts.num_channels else "N"))


# ---------------------------------------------------------------------------------------------- value tests
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


def _positive_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _list_of(test: Callable[[Any], bool], length: int | None = None) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        return (isinstance(v, list) and len(v) > 0 and (length is None or len(v) == length)
                and all(test(i) for i in v))
    return ok


def _per_axis(test: Callable[[Any], bool]) -> Callable[[Any, Facts], bool]:
    return lambda v, f: _list_of(test, f.dim)(v)


def _per_channel(test: Callable[[Any], bool]) -> Callable[[Any, Facts], bool]:
    return lambda v, f: _list_of(test, f.num_channels)(v)


def _name_in(registry) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not isinstance(v, str) or not v:
            return False
        try:
            registry.get(v)
        except ConfigurationError:
            return False
        return True
    return ok


def _known(registry) -> str:
    return ", ".join(registry.names())


def _configuration_name(v: Any, f: Facts) -> bool:
    return isinstance(v, str) and v in f.configurations


def _configuration_names(v: Any, f: Facts) -> bool:
    names = [v] if isinstance(v, str) else v
    return isinstance(names, list) and len(names) > 0 and all(_configuration_name(n, f) for n in names)


def _permutation(v: Any, f: Facts) -> bool:
    return isinstance(v, list) and all(_is_int(i) for i in v) and sorted(v) == list(range(3))


def _architecture(v: Any, f: Facts) -> bool:
    return (isinstance(v, dict) and isinstance(v.get("network_class_name"), str)
            and "." in v["network_class_name"] and isinstance(v.get("arch_kwargs"), dict)
            and isinstance(v.get("_kw_requires_import", []), list)
            and all(isinstance(k, str) and k in v["arch_kwargs"] for k in v.get("_kw_requires_import", [])))


def _intensity_properties(v: Any, f: Facts) -> bool:
    if not isinstance(v, dict) or not all(isinstance(p, dict) for p in v.values()):
        return False
    return f.num_channels is None or all(str(c) in v for c in range(f.num_channels))


# ---------------------------------------------------------------------------------------------- the rules
#: top-level keys of plans.json
PLANS_RULES = (
    Rule("configurations", "an object of configuration objects",
         lambda v, f: isinstance(v, dict) and all(isinstance(c, dict) for c in v.values()), STAGES),
    Rule("dataset_name", "the dataset's name (DatasetXXX_Name)", lambda v, f: isinstance(v, str) and bool(v),
         ("preprocess", "train")),
    Rule("plans_name", "a string", lambda v, f: isinstance(v, str)),
    Rule("transpose_forward", "a permutation of [0, 1, 2] (the axis order used for training)", _permutation,
         ("preprocess", "predict")),
    Rule("transpose_backward", "a permutation of [0, 1, 2], the inverse of 'transpose_forward'", _permutation,
         ("predict",)),
    Rule("image_reader_writer", "the name of an image reader/writer class (known: {readers})",
         lambda v, f: _name_in(READERS)(v), ("preprocess", "predict")),
    Rule("foreground_intensity_properties_per_channel",
         "an object with one entry per input channel ('0' ... '{channels}' - 1), each an object of intensity "
         "statistics (as the fingerprint holds them)", _intensity_properties, ("preprocess",)),
)

#: keys of one configuration (after ``inherits_from`` is resolved)
CONFIGURATION_RULES = (
    Rule("data_identifier", "a non-empty folder name (no '/')",
         lambda v, f: isinstance(v, str) and bool(v) and "/" not in v and "\\" not in v, ("preprocess", "train")),
    Rule("preprocessor_name", "the name of a preprocessor class (default DefaultPreprocessor; known: {preprocessors})",
         lambda v, f: _name_in(PREPROCESSORS)(v)),
    Rule("batch_size", "a positive integer", lambda v, f: _positive_int(v), ("train",)),
    Rule("patch_size", "a list of {dim} positive integers, one per spatial axis", _per_axis(_positive_int),
         ("train", "predict")),
    Rule("spacing", "a list of {dim} positive numbers (the target spacing in mm), one per spatial axis",
         _per_axis(_positive_number), ("preprocess", "predict")),
    Rule("normalization_schemes", "a list of {channels} normalization scheme names, one per input channel "
         "(known: {normalizers})", _per_channel(_name_in(NORMALIZERS)), ("preprocess", "predict")),
    Rule("use_mask_for_norm", "a list of {channels} true/false values, one per input channel",
         _per_channel(lambda v: isinstance(v, bool)), ("preprocess", "predict")),
    Rule("resampling_fn_data", "the name of a resampling function (known: {resamplers})",
         lambda v, f: _name_in(RESAMPLERS)(v), ("preprocess", "predict")),
    Rule("resampling_fn_seg", "the name of a resampling function (known: {resamplers})",
         lambda v, f: _name_in(RESAMPLERS)(v), ("preprocess",)),
    Rule("resampling_fn_probabilities", "the name of a resampling function (known: {resamplers})",
         lambda v, f: _name_in(RESAMPLERS)(v), ("predict",)),
    Rule("resampling_fn_data_kwargs", "an object of keyword arguments of 'resampling_fn_data'",
         lambda v, f: isinstance(v, dict), ("preprocess", "predict")),
    Rule("resampling_fn_seg_kwargs", "an object of keyword arguments of 'resampling_fn_seg'",
         lambda v, f: isinstance(v, dict), ("preprocess",)),
    Rule("resampling_fn_probabilities_kwargs", "an object of keyword arguments of 'resampling_fn_probabilities'",
         lambda v, f: isinstance(v, dict), ("predict",)),
    Rule("architecture", "an object with 'network_class_name' (a dotted class path such as "
         "dynamic_network_architectures.architectures.unet.PlainConvUNet), 'arch_kwargs' (an object) and "
         "'_kw_requires_import' (a list of arch_kwargs keys)", _architecture, ("train", "predict")),
    Rule("batch_dice", "true or false", lambda v, f: isinstance(v, bool), ("train",)),
    Rule("inherits_from", "the name of another configuration in these plans", _configuration_name),
    Rule("previous_stage", "the name of another configuration in these plans", _configuration_name),
    Rule("next_stage", "a configuration name, or a list of them, in these plans", _configuration_names),
)

#: ``arch_kwargs`` entries of the U-Nets that nnU-Net plans (checked when present: other networks have others)
_STAGE_LIST = "{n} positive integers (one per stage), or one positive integer"
_KERNEL_LIST = "{n} entries (one per stage), each a positive integer or a list of {dim} of them"


def _stages_or_int(n: int) -> Callable[[Any], bool]:
    return lambda v: _positive_int(v) or _list_of(_positive_int, n)(v)


def _kernels(n: int, dim: int | None) -> Callable[[Any], bool]:
    return _list_of(lambda k: _positive_int(k) or _list_of(_positive_int, dim)(k), n)


def _arch_kwargs_rules(n_stages: int, dim: int | None) -> list[tuple[str, str, Callable[[Any], bool]]]:
    fill = {"n": n_stages, "dim": dim if dim is not None else "N"}
    return [
        ("features_per_stage", _STAGE_LIST.format(**fill), _stages_or_int(n_stages)),
        ("n_conv_per_stage", _STAGE_LIST.format(**fill), _stages_or_int(n_stages)),
        ("n_blocks_per_stage", _STAGE_LIST.format(**fill), _stages_or_int(n_stages)),
        ("n_conv_per_stage_decoder", _STAGE_LIST.format(n=n_stages - 1, dim=fill["dim"]),
         _stages_or_int(n_stages - 1)),
        ("kernel_sizes", _KERNEL_LIST.format(**fill), _kernels(n_stages, dim)),
        ("strides", _KERNEL_LIST.format(**fill), _kernels(n_stages, dim)),
    ]


# ---------------------------------------------------------------------------------------------- checking
def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _LONGEST_VALUE else text[:_LONGEST_VALUE - 3] + "..."


def _fill_known(text: str) -> str:
    for placeholder, registry in (("{readers}", READERS), ("{preprocessors}", PREPROCESSORS),
                                  ("{normalizers}", NORMALIZERS), ("{resamplers}", RESAMPLERS)):
        if placeholder in text:
            text = text.replace(placeholder, _known(registry))
    return text


def _spatial_dim(config: dict[str, Any]) -> int | None:
    """The configuration's number of spatial axes: the network's (its conv op), else that of the spacing or the
    patch size, whichever is well-formed first (a hand-edited patch size is the likelier mistake, so it is
    measured against the others rather than used as the measure)."""
    conv_op = str(((config.get("architecture") or {}).get("arch_kwargs") or {}).get("conv_op", ""))
    for dim in (1, 2, 3):
        if conv_op.endswith(f"Conv{dim}d"):
            return dim
    for key in ("spacing", "patch_size"):
        value = config.get(key)
        if isinstance(value, list) and value and all(_is_int(v) or isinstance(v, float) for v in value):
            return len(value)
    return None


def num_image_channels(dataset_json: dict[str, Any] | None) -> int | None:
    """The image channels dataset.json declares (``channel_names``, or ``modality`` of older datasets)."""
    if not isinstance(dataset_json, dict):
        return None
    channels = channel_names(dataset_json)
    return len(channels) if isinstance(channels, dict) and channels else None


def _check_keys(data: dict[str, Any], rules: Sequence[Rule], facts: Facts, stage: str | None,
                where: Callable[[str], str]) -> list[str]:
    problems = []
    for rule in rules:
        if rule.key not in data:
            if stage in rule.needed_by:
                problems.append(f"{where(rule.key)} is missing; it must be {rule.describe(facts)}.")
            continue
        if not rule.ok(data[rule.key], facts):
            problems.append(f"{where(rule.key)} must be {rule.describe(facts)}, got "
                            f"{_show(data[rule.key])}.")
    return problems


def _check_kwargs_accepted(config: dict[str, Any], where: Callable[[str], str]) -> list[str]:
    """Each resampling function's kwargs must be arguments it takes (a misspelled 'order' would be ignored by
    nnU-Net's partial() until the function is called, far into preprocessing)."""
    problems = []
    for kind in ("data", "seg", "probabilities"):
        name, kwargs = config.get(f"resampling_fn_{kind}"), config.get(f"resampling_fn_{kind}_kwargs")
        if not isinstance(kwargs, dict) or not _name_in(RESAMPLERS)(name):
            continue
        parameters = inspect.signature(RESAMPLERS.get(name)).parameters
        if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            continue
        unknown = [k for k in kwargs if k not in parameters]
        if unknown:
            problems.append(f"{where(f'resampling_fn_{kind}_kwargs')} names {', '.join(map(repr, unknown))}, "
                            f"which {name} does not take (it takes {', '.join(parameters)}).")
    return problems


def _check_architecture(config: dict[str, Any], dim: int | None, where: Callable[[str], str]) -> list[str]:
    """The U-Net's per-stage lists agree with ``n_stages``, and the patch fits the network's downsampling."""
    architecture = config.get("architecture")
    if not _architecture(architecture, Facts(dim, None, ())):
        return []
    kwargs = architecture["arch_kwargs"]
    key = lambda name: where(f"architecture.arch_kwargs.{name}")  # noqa: E731
    if "n_stages" not in kwargs:
        return []
    n_stages = kwargs["n_stages"]
    if not _positive_int(n_stages):
        return [f"{key('n_stages')} must be a positive integer, got {_show(n_stages)}."]
    problems = [f"{key(name)} must be {allowed}, got {_show(kwargs[name])}."
                for name, allowed, ok in _arch_kwargs_rules(n_stages, dim) if name in kwargs and not ok(kwargs[name])]
    if not problems and "strides" in kwargs and dim is not None:
        problems += _check_patch_fits(config.get("patch_size"), kwargs["strides"], dim, where)
    return problems


def _check_patch_fits(patch_size: Any, strides: list, dim: int, where: Callable[[str], str]) -> list[str]:
    """Every skip connection of the U-Net must meet a decoder feature map of its own size, which needs each
    patch axis to be a multiple of the product of the strides on that axis."""
    if not _list_of(_positive_int, dim)(patch_size):
        return []
    factors = [math.prod(s if isinstance(s, int) else s[axis] for s in strides) for axis in range(dim)]
    if all(p % f == 0 for p, f in zip(patch_size, factors)):
        return []
    suggestion = [max(f, p // f * f) for p, f in zip(patch_size, factors)]
    return [f"{where('patch_size')} {patch_size} does not fit the network: each axis must be a multiple of the "
            f"network's total downsampling on that axis ({factors}, the product of "
            f"architecture.arch_kwargs.strides), e.g. {suggestion}."]


def check_plans_file(data: Any, path: Any) -> None:
    """Refuse what no stage can read: a file that is not a JSON object, or one without a ``configurations``
    object of configuration objects. The other keys are checked per stage by :func:`check_configuration`."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: a plans file must be a JSON object, got {type(data).__name__}. "
                                 f"{_fix(path)}")
    rule = PLANS_RULES[0]
    _raise(_check_keys(data, [rule], Facts(None, None, ()), "train", lambda key: f"{path}: {key!r}"), path)


def check_configuration(plans: dict[str, Any], name: str, config: dict[str, Any], origins: dict[str, str],
                        path: Any, stage: str, num_channels: int | None = None,
                        plans_network: bool = True, network_class_exists: Callable[[str], bool] | None = None
                        ) -> None:
    """Refuse a resolved configuration that ``stage`` cannot use: every problem of the top-level keys and of the
    configuration's keys in one error, one line each, naming the file, the configuration and the key.

    Args:
        plans: the whole plans.json content.
        name: the configuration's name; ``config`` its keys after ``inherits_from`` is resolved, and
            ``origins`` the configuration each key came from (to name where an inherited value is written).
        stage: ``preprocess``, ``train`` or ``predict``.
        num_channels: the dataset's image channels (None: the per-channel lengths are not compared).
        plans_network: False where the trainer builds its own network: ``architecture`` is then not needed
            and not compared with the patch size.
        network_class_exists: tells whether ``architecture.network_class_name`` can be found (given by the
            stages that build the network; finding it imports torch, which planning does not).
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    check_plans_file(plans, path)
    configurations = tuple(plans["configurations"])
    problems = _check_keys(_with_legacy_names(plans), PLANS_RULES, Facts(3, num_channels, configurations), stage,
                           lambda key: f"{path}: {key!r}")
    facts = Facts(_spatial_dim(config), num_channels, configurations)

    def where(key: str) -> str:
        source = origins.get(key.split(".")[0], name)
        inherited = f" (inherited from {source!r})" if source != name else ""
        return f"{path}: configuration {name!r}{inherited}, key {key!r}"

    rules = CONFIGURATION_RULES if plans_network else [r for r in CONFIGURATION_RULES if r.key != "architecture"]
    problems += _check_keys(config, rules, facts, stage, where)
    problems += _check_kwargs_accepted(config, where)
    if plans_network:
        problems += _check_architecture(config, facts.dim, where)
        problems += _check_network_class(config, network_class_exists, where)
    _raise(problems, path)


def _check_network_class(config: dict[str, Any], exists: Callable[[str], bool] | None,
                         where: Callable[[str], str]) -> list[str]:
    architecture = config.get("architecture")
    if exists is None or not _architecture(architecture, Facts(None, None, ())):
        return []
    name = architecture["network_class_name"]
    if exists(name):
        return []
    return [f"{where('architecture.network_class_name')} names {name!r}, which cannot be imported and is not a "
            f"class of dynamic_network_architectures (e.g. "
            f"'dynamic_network_architectures.architectures.unet.PlainConvUNet')."]


def _with_legacy_names(data: dict[str, Any]) -> dict[str, Any]:
    """Plans of older nnU-Net versions name the intensity statistics per modality."""
    legacy = "foreground_intensity_properties_by_modality"
    if "foreground_intensity_properties_per_channel" not in data and legacy in data:
        return {**data, "foreground_intensity_properties_per_channel": data[legacy]}
    return data


def _fix(path: Any) -> str:
    return f"Fix {path} or re-run nnUNet_plan_experiment." if path else "Re-run nnUNet_plan_experiment."


def _raise(problems: list[str], path: Any) -> None:
    if problems:
        raise ConfigurationError("\n".join(problems + [_fix(path) + " (documentation/planning.md lists what each "
                                                       "key may hold.)"]))
