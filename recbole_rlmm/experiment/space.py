"""The search space of ``recbole-rlmm tune``: one yaml file per model (docs/TUNE.md).

Every entry maps a config key to its range::

    learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}   # float, log scale
    n_layers: {low: 1, high: 4}                              # int (both bounds integers)
    dropout: {low: 0.0, high: 0.9, step: 0.1}                # float on a grid of step 0.1
    fusion_stage: [early, late]                              # a list: one of these values

Shipped defaults live next to this module (``spaces/<Model>.yaml``, for our models and
RecBole's LightGCN); a file given with ``--space`` replaces the default for that model.
Everything is checked before any trial trains; a bad entry is one line naming the file, the
key, the value and the fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recbole_rlmm.errors import ConfigError
from recbole_rlmm.experiment.common import FAIR_KEYS, ExperimentError
from recbole_rlmm.keys.sources import read_yaml
from recbole_rlmm.keys.values import check_values

#: The shipped default spaces, ``<Model>.yaml``.
SPACES_DIR = Path(__file__).resolve().parent / "spaces"

#: Keys a search space may not contain, and why.
RESERVED_KEYS: dict[str, str] = {
    "model": "the model is given with --model",
    "dataset": "the dataset is given with --dataset",
    "seed": "the training seed is given with --seed",
    "checkpoint_dir": "tune manages the trial checkpoints itself",
    **{
        key: "compare keeps it identical for every model (split, sampler, evaluator, schedule)"
        for key in FAIR_KEYS
    },
}

_RANGE_FIELDS = {"low", "high", "log", "step"}
_PRIMITIVE = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class Param:
    """One searched key: ``kind`` is ``float``, ``int`` or ``categorical``."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = field(default_factory=tuple)

    def describe(self) -> dict[str, Any]:
        """The entry as written in a space file (also the study's record of its space)."""
        if self.kind == "categorical":
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out

    def written(self) -> Any:
        """The entry as a user writes it: a list, or the range mapping."""
        return list(self.choices) if self.kind == "categorical" else self.describe()

    def values_to_check(self) -> list[Any]:
        """The values the key table must allow: the bounds, or every choice."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]

    def encoded_choices(self) -> list[Any]:
        """The choices as Optuna stores them: lists and mappings as JSON strings."""
        return [encode(c) for c in self.choices]

    def holds(self, value: Any) -> bool:
        """Whether ``value`` is one the space can draw: one of the choices, or a number within
        the range (on its step's grid, an integer for an int range)."""
        if self.kind == "categorical":
            return encode(value) in self.encoded_choices()
        if not _is_number(value) or not self.low <= value <= self.high:
            return False
        if self.kind == "int" and value != int(value):
            return False
        if self.step is None:
            return True
        steps = (value - self.low) / self.step
        return math.isclose(steps, round(steps), abs_tol=1e-9)

    def stored(self, value: Any) -> Any:
        """``value`` as Optuna stores it for this key (an int range stores ints)."""
        if self.kind == "categorical":
            return encode(value)
        return int(value) if self.kind == "int" else float(value)


def encode(value: Any) -> Any:
    """A categorical value Optuna can store (``None``, bool, int, float, str)."""
    return value if isinstance(value, _PRIMITIVE) else "json:" + json.dumps(value)


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, str) and value.startswith("json:"):
        return json.loads(value[5:])
    return value


class SpaceError(ExperimentError):
    """A search space entry that cannot be searched (raised before any training)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_entry(key: str, value: Any, where: str) -> Param:
    """One entry of a space file as a :class:`Param`; :class:`SpaceError` names the file,
    key, value and fix."""

    def fail(problem: str, fix: str) -> SpaceError:
        return SpaceError(f"search space {where}: {key}: {json.dumps(value, default=str)} {problem}; {fix}")

    if key in RESERVED_KEYS:
        raise fail("cannot be tuned", f"remove it ({RESERVED_KEYS[key]})")
    if isinstance(value, list):
        if not value:
            raise fail("is an empty list", "give at least one value, e.g. [0.001, 0.01]")
        return Param(key, "categorical", choices=tuple(value))
    if isinstance(value, Mapping) and set(value) == {"choices"}:
        if not isinstance(value["choices"], list):
            raise fail("has choices that are not a list", "write choices: [a, b, ...]")
        return parse_entry(key, value["choices"], where)
    if not isinstance(value, Mapping):
        raise fail(
            "is neither a list of values nor a range",
            f"write {key}: [value1, value2] or {key}: {{low: L, high: H}} (log: true, step: S optional)",
        )
    unknown = sorted(set(value) - _RANGE_FIELDS)
    if unknown:
        raise fail(f"has unknown field(s) {', '.join(map(str, unknown))}", "a range has low, high, and optionally log and step")
    if "low" not in value or "high" not in value:
        raise fail("lacks low or high", f"write {key}: {{low: L, high: H}}")
    low, high, log, step = value["low"], value["high"], value.get("log", False), value.get("step")
    if not (_is_number(low) and _is_number(high)):
        raise fail("has a bound that is not a number", "write numbers for low and high (1.0e-3, not 1e-3 in quotes)")
    if not low < high:
        raise fail("has low >= high", "set low below high, or use a list for a single value")
    if not isinstance(log, bool):
        raise fail("has log that is not true/false", "write log: true or leave it out")
    if step is not None and not (_is_number(step) and step > 0):
        raise fail("has a step that is not a positive number", "write step: 0.1 (or leave it out)")
    if log and low <= 0:
        raise fail("is a log range that starts at or below 0", "set low above 0 or drop log: true")
    if log and step is not None:
        raise fail("has both log and step", "keep only one of them")
    integer = isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int))
    return Param(key, "int" if integer else "float", low=low, high=high, log=bool(log), step=step)


def default_space_file(model: str) -> Path | None:
    """The shipped space of ``model``, if there is one."""
    path = SPACES_DIR / f"{model}.yaml"
    return path if path.is_file() else None


def shipped_models() -> list[str]:
    """Models with a shipped default space."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def load_space(space: str | Path | Mapping[str, Any] | None, model: str) -> tuple[dict[str, Param], str]:
    """Read a search space: a yaml file, a mapping, or None for ``model``'s shipped default.

    Returns the parameters and where they came from (for messages and the study record).
    """
    if space is None:
        path = default_space_file(model)
        if path is None:
            raise SpaceError(
                f"no search space is shipped for {model} (shipped: {', '.join(shipped_models())}); "
                "give one with --space FILE (docs/TUNE.md, 'The space file')"
            )
        space = path
    where = str(space) if isinstance(space, (str, Path)) else "<mapping>"
    data = (
        read_yaml(space, "search space", "check the path given to --space")
        if isinstance(space, (str, Path))
        else space
    )
    if not isinstance(data, Mapping) or not data:
        raise SpaceError(
            f"search space {where} must map config keys to a list of values or a range, "
            "e.g. learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}"
        )
    return {str(k): parse_entry(str(k), v, where) for k, v in data.items()}, where


def check_space(params: Mapping[str, Param], model: str, where: str, known: Any) -> None:
    """Every key must be a config key of ``model`` (``known``: the resolved config's keys) and
    every bound / choice a value the key table allows, so that no trial fails after others
    trained."""
    for key, param in params.items():
        if key not in known:
            raise SpaceError(
                f"search space {where}: {key}: {json.dumps(param.written(), default=str)} is not a "
                f"configuration key of {model}; check the spelling, or remove it (a key the model reads "
                "without a default: set one in a --config_files yaml)"
            )
        for value in param.values_to_check():
            try:
                check_values({key: value}, model, keys=[key])
            except ConfigError as exc:
                raise SpaceError(f"search space {where}: {key}: {value!r} is not allowed: {exc}") from None
