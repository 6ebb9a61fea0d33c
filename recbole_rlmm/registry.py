"""Model lookup: our models first, then every RecBole built-in (RecBole-GNN's convention)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
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
    "BM3": "bm3",
    "MGCN": "mgcn",
    "LGMRec": "lgmrec",
    "SMORE": "smore",
    "MENTOR": "mentor",
}




class UnknownModelError(UserError):
    """A model name that is neither ours nor a RecBole built-in (the message suggests the
    closest names)."""


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


#: RecBole's model packages, in the order its ``get_model`` searches them.
RECBOLE_MODEL_PACKAGES: tuple[str, ...] = (
    "general_recommender",
    "context_aware_recommender",
    "sequential_recommender",
    "knowledge_aware_recommender",
    "exlib_recommender",
)
#: RecBole's models that wrap an optional package imported by their package itself.
_EXLIB = {"lightgbm": ("LightGBM", "lightgbm"), "xgboost": ("XGBOOST", "xgboost")}


def recbole_model_modules() -> dict[str, str]:
    """RecBole's model module names (``lightgcn``) -> their package, found without importing
    them (``exlib_recommender`` imports lightgbm and xgboost when imported)."""
    import pkgutil

    import recbole.model

    root = Path(recbole.model.__file__).parent
    out: dict[str, str] = {}
    for package in RECBOLE_MODEL_PACKAGES:
        for info in pkgutil.iter_modules([str(root / package)]):
            out.setdefault(info.name, package)
    return out


def _recbole_class(name: str) -> type | None:
    """RecBole's built-in called ``name`` (case-insensitive), or None."""
    package = recbole_model_modules().get(name.lower())
    if package is None:
        return None
    if package == "exlib_recommender":
        cls_name, module = _EXLIB.get(name.lower(), (name, name.lower()))
        if not _installed(module):
            raise MissingExtraError(f"RecBole's {cls_name} needs {module} (pip install {module}).")
    module = importlib.import_module(f"recbole.model.{package}.{name.lower()}")
    for attr in dir(module):
        obj = getattr(module, attr)
        if attr.lower() == name.lower() and isinstance(obj, type):
            return obj
    return None


def _suggest(name: str) -> str:
    import difflib

    names = {m.lower(): m for m in plugin_models()}
    names.update({m: m for m in recbole_model_modules() if m not in names})
    close = difflib.get_close_matches(name.lower(), list(names), n=3, cutoff=0.6)
    shown = []
    for low in close:
        shown.append(names[low] if names[low] != low else _display_name(low))
    return f" Did you mean {' or '.join(shown)}?" if shown else ""


def _display_name(module: str) -> str:
    if module in _EXLIB:
        return _EXLIB[module][0]
    try:
        cls = _recbole_class(module)
    except (ImportError, UserError):
        return module
    return cls.__name__ if cls is not None else module


def get_model(name: str) -> type:
    """Resolve a model name to its class: ours first, then RecBole's (both case-insensitive).

    An unknown name is an :class:`UnknownModelError` with the closest names; a built-in whose
    optional package (:data:`EXTRAS`) is missing is a :class:`MissingExtraError`;
    requirements that depend on the config are checked by
    :func:`recbole_rlmm.config.create_config`.
    """
    cls = plugin_model_class(name)
    if cls is not None:
        return cls
    try:
        cls = _recbole_class(str(name))
    except ImportError:
        cls = None
    if cls is None:
        raise UnknownModelError(
            f"Unknown model {name!r}: it is neither a recbole-rlmm model ({', '.join(plugin_models())}) "
            f"nor a RecBole built-in (e.g. BPR, LightGCN, NGCF, ItemKNN, Pop).{_suggest(str(name))}"
        )
    check_extras(cls.__name__)
    return cls


def model_name(model: Any) -> str:
    return model if isinstance(model, str) else model.__name__
