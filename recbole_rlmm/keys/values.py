"""Value checks of the configuration keys, before RecBole (or a model) reads them.

:func:`check_values` validates every declared key (:mod:`recbole_rlmm.keys.schema`) that a
configuration holds, while our runner builds it, so RecBole never raises on a value the table
knows to be wrong; :func:`check_model_keys` does it for one model's keys in any configuration
(RecBole's own ``Config`` included). Each failure is one :class:`~recbole_rlmm.errors.ConfigError`
naming the key, the value, what is allowed and the default.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from recbole_rlmm.errors import ConfigError
from recbole_rlmm.keys.schema import Key, default_of, format_value, model_keys, table


def problem(key: Key, value: Any) -> str | None:
    """Why ``value`` is not allowed for ``key`` (None when it is). Keys that depend on other
    keys (``valid_metric``) are checked by :func:`check_values`."""

    if value is None:
        return None if key.nullable or key.kind in ("off_path", "neg_sample_args", "load_col") else "it is not set"
    kind = key.kind
    if kind == "int":
        return _out_of_bounds(key, value) if _is_int(value) else "it is not an integer"
    if kind == "float":
        if not _is_number(value):
            return "it is not a number"
        if not math.isfinite(float(value)):
            return "it is not a finite number"
        return _out_of_bounds(key, float(value))
    if kind == "auto_float":
        if value == "auto":
            return None
        if not _is_number(value):
            return "it is neither auto nor a number"
        return _out_of_bounds(key, float(value))
    if kind == "bool":
        return None if isinstance(value, bool) else "it is not true or false"
    if kind == "str":
        return None if isinstance(value, str) and value.strip() else "it is not a non-empty string"
    if kind == "sep":
        return None if isinstance(value, str) and value else "it is not a non-empty string"
    if kind == "choice":
        text = str(value).lower() if key.ignore_case and isinstance(value, str) else value
        return None if text in key.choices else "it is not one of the choices"
    if kind == "path":
        return None if isinstance(value, str) and value.strip() else "it is not a path"
    if kind == "off_path":
        return None if isinstance(value, (str, bool)) else "it is not a path"
    if kind == "ints":
        values = value if isinstance(value, list) else [value]
        if not values:
            return "the list is empty"
        for v in values:
            if not _is_int(v):
                return f"{v!r} is not an integer"
            if _out_of_bounds(key, v):
                return f"{v!r} is not {key.bounds()}"
        return None
    if kind == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return "it is not a list of names"
        return None
    if kind == "strs":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            return "it is not a non-empty list of names"
        return None
    if kind == "mapping":
        return None if isinstance(value, Mapping) else "it is not a mapping"
    if kind == "modalities":
        return None if isinstance(value, Mapping) else "it must map modality names to files"
    if kind == "metrics":
        return _metrics_problem(value)
    if kind == "eval_args":
        return _eval_args_problem(value)
    if kind == "neg_sample_args":
        return _neg_sample_problem(value)
    if kind == "load_col":
        return _load_col_problem(value)
    return None  # valid_metric: needs metrics and topk, see check_values


def _out_of_bounds(key: Key, value: float) -> str | None:
    low_bad = key.low is not None and (value <= key.low if key.low_open else value < key.low)
    high_bad = key.high is not None and (value >= key.high if key.high_open else value > key.high)
    return f"it is not {key.bounds()}" if low_bad or high_bad else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- RecBole's metrics


@functools.lru_cache(maxsize=1)
def recbole_metrics() -> dict[str, tuple[str, bool]]:
    """RecBole's metrics: lower-case name -> (class name, reported per cut-off ``@k``)."""
    from recbole.evaluator import metric_types
    from recbole.evaluator.register import metrics_dict
    from recbole.utils import EvaluatorType

    return {
        name: (cls.__name__, metric_types[name] == EvaluatorType.RANKING and name != "gauc")
        for name, cls in metrics_dict.items()
    }


def _metric_suggestion(name: str) -> str:
    known = recbole_metrics()
    close = difflib.get_close_matches(str(name).lower(), list(known), n=1, cutoff=0.6)
    return f" (did you mean {known[close[0]][0]}?)" if close else ""


def _metrics_problem(value: Any) -> str | None:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        return "it is not a list of metric names"
    from recbole.evaluator import metric_types

    known = recbole_metrics()
    for name in names:
        if not isinstance(name, str) or name.lower() not in known:
            return (
                f"RecBole has no metric {name!r}{_metric_suggestion(name)}; its metrics are "
                + ", ".join(cls for cls, _ in known.values())
            )
    if len({metric_types[n.lower()] for n in names}) > 1:
        return "it mixes ranking metrics (Recall, NDCG, ...) with value metrics (AUC, LogLoss, ...), which RecBole cannot evaluate together"
    return None


def valid_metric_problem(valid_metric: Any, metrics: Any, topk: Any) -> str | None:
    """Why ``valid_metric`` is not among the metrics the evaluator computes (None if it is)."""
    if not isinstance(valid_metric, str) or not valid_metric:
        return "it is not a metric name"
    name, at, k = valid_metric.partition("@")
    known = recbole_metrics()
    computed = [m.lower() for m in ([metrics] if isinstance(metrics, str) else metrics or []) if isinstance(m, str)]
    if name.lower() not in known:
        return f"RecBole has no metric {name!r}{_metric_suggestion(name)}"
    if name.lower() not in computed:
        return f"{known[name.lower()][0]} is not in metrics ({', '.join(map(str, computed))}); add it there or pick one of them"
    cutoffs = topk if isinstance(topk, list) else [topk]
    if known[name.lower()][1]:
        if not at or not k.isdigit():
            return f"{known[name.lower()][0]} is reported per cut-off: write it as {known[name.lower()][0]}@k with k in topk {cutoffs}"
        if int(k) not in cutoffs:
            return f"cut-off {k} is not in topk {cutoffs}; add {k} to topk or pick one of its cut-offs"
    elif at:
        return f"{known[name.lower()][0]} has no cut-off; write it without @{k}"
    return None


# --------------------------------------------------------------------------- structured values

_EVAL_ARGS = ("split", "order", "group_by", "mode")
_MODE = re.compile(r"^(full|labeled|uni\d+|pop\d+)$")


def _mapping_problem(value: Any, entries: tuple[str, ...]) -> str | None:
    """Why a mapping key's value is not one: not a mapping, or the first entry RecBole does not
    know (with the closest known one)."""
    if not isinstance(value, Mapping):
        return "it is not a mapping"
    for entry in value:
        if entry not in entries:
            close = difflib.get_close_matches(str(entry), entries, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"it has an unknown entry {entry!r}{hint}; its entries are {', '.join(entries)}"
    return None


def _eval_args_problem(value: Any) -> str | None:
    problem = _mapping_problem(value, _EVAL_ARGS)
    if problem:
        return problem
    mode = value.get("mode", "full")
    modes = mode.values() if isinstance(mode, Mapping) else [mode]
    if isinstance(mode, Mapping) and set(mode) - {"valid", "test"}:
        return f"mode {mode!r} may only have the entries valid and test"
    for m in modes:
        if not isinstance(m, str) or not _MODE.match(m):
            return f"mode {m!r} is not one of full, labeled, uniN, popN (e.g. uni100)"
    if value.get("order", "RO") not in ("RO", "TO"):
        return f"order {value.get('order')!r} is not RO (random) or TO (by time)"
    if value.get("group_by", "user") not in ("user", "none", None):
        return f"group_by {value.get('group_by')!r} is not user or none"
    split = value.get("split", {"RS": [0.8, 0.1, 0.1]})
    if split is not None:
        if not isinstance(split, Mapping) or len(split) != 1:
            return f"split {split!r} must be one of {{RS: [0.8, 0.1, 0.1]}}, {{LS: valid_and_test}}"
        (how, arg), = split.items()
        if how == "RS":
            if not isinstance(arg, list) or not arg or not all(_is_number(x) and x >= 0 for x in arg) or sum(arg) <= 0:
                return f"split RS {arg!r} must be a list of non-negative ratios, e.g. [0.8, 0.1, 0.1]"
        elif how == "LS":
            if arg not in ("valid_and_test", "test_only"):
                return f"split LS {arg!r} must be valid_and_test or test_only"
        elif how != "benchmark_filename":
            return f"split {how!r} is not RS (ratios) or LS (leave one out)"
    return None


_NEG_SAMPLE = ("distribution", "sample_num", "alpha", "dynamic", "candidate_num")


def _neg_sample_problem(value: Any) -> str | None:
    if value is None or value == "None":
        return None
    problem = _mapping_problem(value, _NEG_SAMPLE)
    if problem:
        return problem
    distribution = value.get("distribution", "uniform")
    if distribution not in ("uniform", "popularity", "none", "None", None):
        return f"distribution {distribution!r} is not uniform, popularity or none"
    if distribution in ("uniform", "popularity"):
        num = value.get("sample_num", 1)
        if not _is_int(num) or num < 1:
            return f"sample_num {num!r} is not an integer >= 1"
    return None


def _load_col_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return "it is not a mapping such as {inter: [user_id, item_id]}"
    for source, columns in value.items():
        if columns == "*":
            continue
        if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns):
            return f"load_col.{source} {columns!r} is not a list of column names (or '*')"
    return None


# --------------------------------------------------------------------------- value checks


def check_values(
    values: Mapping[str, Any],
    model: str | None = None,
    source: Callable[[str], str] | None = None,
    keys: Iterable[str] | None = None,
) -> None:
    """Raise :class:`~recbole_rlmm.config.ConfigError` for the first key of the table (overall
    plus ``model``'s own) whose value in ``values`` is not allowed; keys ``values`` lacks are
    skipped. ``source(key)`` says where a value came from (``the command line``, a file...).
    ``keys`` limits the check to those keys."""
    spec = table(model)
    names = [k for k in (keys if keys is not None else spec) if k in spec and k in values]
    for name in names:
        key = spec[name]
        value = values[name]
        why = problem(key, value)
        if why is None and key.kind == "valid_metric" and value is not None:
            why = valid_metric_problem(value, values.get("metrics"), values.get("topk"))
        if why is not None:
            raise ConfigError(_message(key, value, why, model, source))


def _message(key: Key, value: Any, why: str, model: str | None, source: Callable[[str], str] | None) -> str:
    where = f" ({source(key.name)})" if source else ""
    owner = model if model and any(k.name == key.name for k in model_keys(model)) else None
    meaning = (f"{owner}: " if owner else "") + key.meaning.replace("`", "")
    default = default_of(key.name, owner)
    hint = f"; default {format_value(default)}" if default is not None and key.default_text is None else ""
    return (
        f"config key {key.name}={value!r}{where} is invalid: {why}. Set {key.name} to "
        f"{key.describe()} ({meaning}{hint})."
    )


def check_model_keys(config: Any, model_class: type | str) -> None:
    """Validate ``model_class``'s own keys (the table's) in ``config`` (any RecBole ``Config``
    or mapping). Models call this in ``__init__``, so RecBole's own ``Config`` gets the same
    messages as our runner."""
    name = model_class if isinstance(model_class, str) else model_class.__name__
    names = [k.name for k in model_keys(name)]
    values = {k: config[k] for k in names if k in config}
    check_values(values, name, keys=names)


def switched_off(value: Any) -> bool:
    """``log_dir``/``tensorboard_dir`` turned off: ``~`` in yaml, ``None`` or ``~`` on the
    command line, ``false`` or an empty value."""
    return value is None or value is False or str(value).strip().lower() in ("", "~", "none", "null", "false")


def check_process_counts(nproc: Any, world_size: Any = -1, group_offset: Any = 0) -> None:
    """The process counts of a run (``--nproc``, ``--world_size``, ``--group_offset``), checked
    with the other keys before anything starts: a :class:`ConfigError` in one line."""
    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not whole(nproc) or nproc < 1:
        raise ConfigError(
            f"nproc={nproc!r} is invalid: the number of processes on this machine must be a whole "
            "number >= 1. Set --nproc to 1 (one process) or more."
        )
    if not whole(world_size) or (world_size != -1 and world_size < 1):
        raise ConfigError(
            f"world_size={world_size!r} is invalid: it is the number of processes on all machines "
            "(>= 1), or -1 for nproc. Set --world_size to -1 or a whole number >= 1."
        )
    if not whole(group_offset) or group_offset < 0:
        raise ConfigError(
            f"group_offset={group_offset!r} is invalid: it is the rank of this machine's first "
            "process (>= 0). Set --group_offset to 0 on the first machine."
        )
    total = nproc if world_size == -1 else world_size
    if group_offset + nproc > total:
        raise ConfigError(
            f"nproc={nproc} processes from rank group_offset={group_offset} exceed "
            f"world_size={total}: set --world_size to the processes of all machines (at least "
            f"{group_offset + nproc}), or lower --nproc/--group_offset."
        )
