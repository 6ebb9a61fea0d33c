"""Model lookup: our models first, then every RecBole built-in (RecBole-GNN's convention)."""

from __future__ import annotations

import importlib
from typing import Any

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
    """Resolve a model name to its class: ours first (case-insensitive), then RecBole's."""
    from recbole.utils import get_model as recbole_get_model

    cls = plugin_model_class(name)
    if cls is not None:
        return cls
    try:
        return recbole_get_model(name)
    except (ValueError, AttributeError, ImportError) as exc:
        raise ValueError(
            f"Unknown model {name!r}: it is neither a recbole-rlmm model ({', '.join(plugin_models())}) "
            f"nor a RecBole built-in (e.g. BPR, LightGCN, NGCF, ItemKNN, Pop)."
        ) from exc


def model_name(model: Any) -> str:
    return model if isinstance(model, str) else model.__name__
