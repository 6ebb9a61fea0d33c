"""Model lookup: our models first, then every RecBole built-in (RecBole-GNN's convention)."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, NamedTuple

from recbole_rlmm.errors import UserError

#: What runs when neither the command line nor a config file names a model or a dataset
#: (movielens-mm ships with the checkout and needs no download).
DEFAULT_MODEL = "RLMultimodalRec"
DEFAULT_DATASET = "movielens-mm"

#: Plugin models, by class name -> module under ``recbole_rlmm.model``.
MODELS: dict[str, str] = {
    "RLMultimodalRec": "rlmultimodalrec",
    "VBPR": "vbpr",
    "MMGCN": "mmgcn",
    "LATTICE": "lattice",
    "FREEDOM": "freedom",
}




class MissingExtraError(UserError):
    """A model needs an optional package that is not installed (the message is one line)."""


class Extra(NamedTuple):
    """An optional package a model imports: its import name and the extra that installs it."""

    module: str
    extra: str
    #: ``(config key, value)``: needed only when the config sets that key to that value.
    when: tuple[str, Any] | None = None


#: Model -> the optional packages it imports (RecBole imports them only inside the model, so
#: without this check a run would fail mid-training). scikit-learn (SLIMElastic, NCEPLRec) is a
#: dependency of RecBole itself, so it is always installed.
EXTRAS: dict[str, list[Extra]] = {
    "NCL": [Extra("faiss", "faiss")],
    "NNCF": [
        Extra("networkx", "louvain", ("neigh_info_method", "louvain")),
        Extra("community", "louvain", ("neigh_info_method", "louvain")),
    ],
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a stub in sys.modules
        return False


def check_extras(name: str, config: Any = None) -> None:
    """Raise :class:`MissingExtraError` when model ``name`` needs a package that is missing.

    Requirements that depend on a config value are checked only when ``config`` is given.
    """
    for req in EXTRAS.get(name, []):
        condition = ""
        if req.when is not None:
            key, value = req.when
            if config is None or key not in config or config[key] != value:
                continue
            condition = f" with {key}={value}"
        if not _installed(req.module):
            raise MissingExtraError(
                f'{name}{condition} needs {req.extra} (pip install "recbole-rlmm[{req.extra}]")'
            )


def plugin_models() -> list[str]:
    """Names of the plugin models."""
    return list(MODELS)


def plugin_model_class(name: str) -> type | None:
    """Our model class called ``name`` (case-insensitive), or None."""
    for plugin, module in MODELS.items():
        if plugin.lower() == name.lower():
            return getattr(importlib.import_module(f"recbole_rlmm.model.{module}"), plugin)
    return None


def get_model(name: str) -> type:
    """Resolve a model name to its class: ours first (case-insensitive), then RecBole's.

    A built-in whose optional package (:data:`EXTRAS`) is missing is a
    :class:`MissingExtraError`; requirements that depend on the config are checked by
    :func:`recbole_rlmm.config.create_config`.
    """
    from recbole.utils import get_model as recbole_get_model

    cls = plugin_model_class(name)
    if cls is not None:
        return cls
    try:
        cls = recbole_get_model(name)
    except (ValueError, AttributeError, ImportError) as exc:
        raise ValueError(
            f"Unknown model {name!r}: it is neither a recbole-rlmm model ({', '.join(plugin_models())}) "
            f"nor a RecBole built-in (e.g. BPR, LightGCN, NGCF, ItemKNN, Pop)."
        ) from exc
    check_extras(cls.__name__)
    return cls


def model_name(model: Any) -> str:
    return model if isinstance(model, str) else model.__name__
