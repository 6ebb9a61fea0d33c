"""The data of a run: RecBole's ``create_dataset`` with what it still rejects as one line, and
RecBole's pickled dataset and dataloader caches refused unless trusted."""

from __future__ import annotations

import contextlib
import os
from logging import getLogger
from typing import Any

from recbole.data import create_dataset
from recbole.utils import ModelType

from recbole_rlmm.checkpoint import is_trusted
from recbole_rlmm.data.checks import DataFileError
from recbole_rlmm.errors import UserError

#: Where the cache paths point while a pickled cache is refused (a folder that holds none).
_NO_CACHE = ".recbole-rlmm-no-pickled-cache"

def _dataset_class_name(config: Any) -> str:
    """The dataset class RecBole's ``create_dataset`` builds (its cache file is named after it)."""
    import importlib


    if hasattr(importlib.import_module("recbole.data.dataset"), f"{config['model']}Dataset"):
        return f"{config['model']}Dataset"
    return {ModelType.SEQUENTIAL: "SequentialDataset", ModelType.KNOWLEDGE: "KnowledgeBasedDataset"}.get(
        config["MODEL_TYPE"], "Dataset"
    )

@contextlib.contextmanager
def refused_pickled_caches(config: Any) -> Any:
    """RecBole's ``create_dataset``/``data_preparation`` unpickle the dataset and dataloader
    caches they find (``<checkpoint_dir>/<dataset>-Dataset.pth`` or ``dataset_save_path``,
    ``<checkpoint_dir>/<dataset>-for-<model>-dataloader.pth`` or ``dataloaders_save_path``): a
    crafted file runs code and a stale one silently replaces today's data files. Inside this
    block (our runner and loaders) such a file is not read, unless inside
    :func:`recbole_rlmm.checkpoint.trusted_checkpoints`: a warning names it and the data is
    built from the atomic files. ``save_dataset`` and ``save_dataloaders`` still write them."""

    defaults = {
        "dataset_save_path": f"{config['dataset']}-{_dataset_class_name(config)}.pth",
        "dataloaders_save_path": f"{config['dataset']}-for-{config['model']}-dataloader.pth",
    }
    saved = {key: config[key] for key in defaults}
    try:
        for key, default in defaults.items():
            path = saved[key] or os.path.join(config["checkpoint_dir"], default)
            if os.path.exists(path) and not is_trusted():
                getLogger().warning(
                    f"ignoring the pickled cache {path} (loading it would run code stored in it); "
                    "building from the data files instead. Delete it, or load it inside "
                    "recbole_rlmm.checkpoint.trusted_checkpoints() if you wrote it."
                )
                config[key] = os.path.join(config["checkpoint_dir"], _NO_CACHE, default)
        yield
    finally:
        for key, value in saved.items():
            config[key] = value

def load_dataset(config: Any) -> Any:
    """RecBole's ``create_dataset``; what it still rejects after our checks (checks/data.py)
    becomes one line naming the dataset (``--debug`` shows RecBole's traceback)."""

    try:
        return create_dataset(config)
    except UserError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise DataFileError(
            f"RecBole cannot load dataset '{config['dataset']}' from {config['data_path']}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
