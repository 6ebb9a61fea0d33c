"""Model lookup: our models first, then every RecBole built-in (RecBole-GNN's convention)."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from recbole.utils import get_model as recbole_get_model

#: Plugin models, by class name -> module under ``recbole_rlmm.model``.
MODELS: dict[str, str] = {
    "RLMultimodalRec": "rlmultimodalrec",
    "VBPR": "vbpr",
    "MMGCN": "mmgcn",
    "LATTICE": "lattice",
    "FREEDOM": "freedom",
}


def plugin_models() -> list[str]:
    """Names of the plugin models that are importable in this installation."""
    names = []
    for name, module in MODELS.items():
        if importlib.util.find_spec(f"recbole_rlmm.model.{module}") is not None:
            names.append(name)
    return names


def get_model(name: str) -> type:
    """Resolve a model name to its class: ours first (case-insensitive), then RecBole's."""
    for plugin, module in MODELS.items():
        if plugin.lower() == name.lower():
            spec = importlib.util.find_spec(f"recbole_rlmm.model.{module}")
            if spec is not None:
                return getattr(importlib.import_module(f"recbole_rlmm.model.{module}"), plugin)
    try:
        return recbole_get_model(name)
    except (ValueError, AttributeError, ImportError) as exc:
        raise ValueError(
            f"Unknown model {name!r}: it is neither a recbole-rlmm model ({', '.join(plugin_models())}) "
            f"nor a RecBole built-in (e.g. BPR, LightGCN, NGCF, ItemKNN, Pop)."
        ) from exc


def model_name(model: Any) -> str:
    return model if isinstance(model, str) else model.__name__
