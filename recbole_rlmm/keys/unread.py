"""Keys a user set that no part of the run reads: removed options, another model's keys, typos
(with the closest known key). One warning each, logged before training."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping

from recbole_rlmm.keys.schema import (
    MODEL_KEYS,
    OUR_CODE_KEYS,
    OVERALL_KEYS,
    RECBOLE_CODE_KEYS,
    REMOVED_KEYS,
    model_defaults,
    our_defaults,
    recbole_properties,
)
from recbole_rlmm.keys.sources import read_yaml

# --------------------------------------------------------------------------- unread keys


@functools.lru_cache(maxsize=1)
def _recbole_key_sets() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """(keys every RecBole run may read, {RecBole model: keys of its yaml})."""
    from recbole.utils import argument_list

    root = recbole_properties()
    general: set[str] = set(RECBOLE_CODE_KEYS)
    for name in ("general_arguments", "training_arguments", "evaluation_arguments", "dataset_arguments"):
        general |= set(getattr(argument_list, name, []))
    for path in [root / "overall.yaml", *sorted((root / "dataset").glob("*.yaml")), *sorted((root / "quick_start_config").glob("*.yaml"))]:
        values = read_yaml(path)
        if path.name not in ("url.yaml", "kg_url.yaml"):  # those list dataset names, not keys
            general |= set(values)
    per_model = {path.stem: frozenset(read_yaml(path)) for path in sorted((root / "model").glob("*.yaml"))}
    return frozenset(general), per_model


@functools.lru_cache(maxsize=1)
def _our_key_sets() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """(keys every run of ours may read, {plugin model: its own keys})."""
    general = set(our_defaults()) | {k.name for k in OVERALL_KEYS} | OUR_CODE_KEYS
    return frozenset(general), {name: frozenset(model_defaults(name)) for name in MODEL_KEYS}


def general_keys() -> frozenset[str]:
    """Keys any run may read, whatever the model."""
    return _recbole_key_sets()[0] | _our_key_sets()[0]


def keys_of(model: str) -> frozenset[str]:
    """Keys read by ``model`` besides the general ones (its table entries / yaml)."""
    return _our_key_sets()[1].get(model) or _recbole_key_sets()[1].get(model) or frozenset()


def readers_of(key: str) -> list[str]:
    """Models (ours first, then RecBole's) whose own keys include ``key``."""
    ours = [m for m, keys in _our_key_sets()[1].items() if key in keys]
    theirs = [m for m, keys in _recbole_key_sets()[1].items() if key in keys]
    return ours + theirs


def closest_key(key: str, model: str | None = None) -> str | None:
    """The known key ``key`` most probably means (case-insensitive equal first), or None."""
    candidates = sorted(general_keys() | (keys_of(model) if model else frozenset()))
    everything = sorted(set(candidates) | {k for m in _our_key_sets()[1].values() for k in m})
    for pool in (candidates, everything):
        for known in pool:
            if known.lower() == key.lower():
                return known
    for pool in (candidates, everything):
        close = difflib.get_close_matches(key, pool, n=1, cutoff=0.75)
        if close:
            return close[0]
    return None


def unread_key_warnings(user_keys: Mapping[str, str], model: str) -> list[str]:
    """One warning per key the user set (``{key: where}``) that no part of a run of
    ``model`` reads: removed options, other models' keys, and unknown keys with the closest
    known key."""
    lines = []
    general = general_keys()
    own = keys_of(model)
    for key, where in user_keys.items():
        if key in general or key in own:
            continue
        if key in REMOVED_KEYS:
            lines.append(
                f"config key {key!r} ({where}) is ignored: {REMOVED_KEYS[key]} was removed from "
                "RLMultimodalRec (docs/MODELS.md, 'Removed options')."
            )
            continue
        readers = readers_of(key)
        if readers:
            shown = ", ".join(readers[:4]) + (", ..." if len(readers) > 4 else "")
            lines.append(f"config key {key!r} ({where}) is not read by {model} (it is a key of {shown}); it is ignored.")
            continue
        close = closest_key(key, model)
        hint = f" Did you mean {close!r}?" if close else ""
        lines.append(
            f"config key {key!r} ({where}) is not read by any part of the run (neither "
            f"recbole-rlmm nor RecBole knows it); it is ignored.{hint}"
        )
    return lines


