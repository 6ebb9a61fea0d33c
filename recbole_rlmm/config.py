"""Configuration: RecBole's ``Config`` with our defaults layered in, RecBole's semantics kept.

Priority, lowest first (each layer overrides the ones before it):

1. RecBole's ``properties/overall.yaml``;
2. our overall defaults (:func:`recbole_rlmm.keys.schema.our_defaults`, also written to
   ``properties/overall.yaml``; keys that RecBole sets for a specific built-in model, in its
   model yaml or quick-start yaml, keep RecBole's value: the context-aware models' AUC metrics
   and ``train_neg_sample_args: ~``, for example);
3. RecBole's model, sample and dataset yaml; our model's defaults
   (:func:`recbole_rlmm.keys.schema.model_defaults`, also in ``properties/model/<Model>.yaml``)
   and ``properties/dataset/<dataset>.yaml``;
4. the dataset folder's own ``<data_path>/<dataset>/<dataset>.yaml`` (``prepare`` writes it);
5. the user's ``config_file_list``, then ``config_dict``, then ``--key=value`` on the command
   line (RecBole's external layers, unchanged).

Two choices of our runner beyond the layers (RecBole's ``Config`` itself is left as it is):
a user's ``<data_path>/ml-100k`` folder is read before RecBole's bundled copy, and the device
follows ``use_gpu`` (:meth:`RLMMConfig._init_device`).

``model`` and ``dataset`` are resolved exactly as RecBole does: the arguments, else the
command line, ``config_dict`` or the config files (in that priority). When none of them
names one, we default to ``RLMultimodalRec`` on ``movielens-mm`` (RecBole would raise).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from recbole.config import Config

from recbole_rlmm.compat import join_cpu_process_group
from recbole_rlmm.data.format import config_file
from recbole_rlmm.data.io import jsonable
from recbole_rlmm.errors import ConfigError, UserError
from recbole_rlmm.keys.schema import model_defaults, our_defaults
from recbole_rlmm.keys.sources import external_values, read_yaml
from recbole_rlmm.keys.values import check_values
from recbole_rlmm.registry import DEFAULT_DATASET, DEFAULT_MODEL, check_extras, get_model

#: RecBole's generic defaults (its overall.yaml and the sample dataset yaml): the layers our
#: overall.yaml overrides for every model.
_RECBOLE_PROPERTIES = os.path.join(os.path.dirname(sys.modules[Config.__module__].__file__), "../properties")
_RECBOLE_GENERIC = {
    os.path.realpath(os.path.join(_RECBOLE_PROPERTIES, name))
    for name in ("overall.yaml", "dataset/sample.yaml")
}



class DatasetNotFoundError(UserError):
    """The dataset is neither a folder under ``data_path`` nor a RecBole download."""


def properties_dir() -> Path:
    """The properties folder: inside the installed wheel, or at the checkout's root."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "properties", here.parent / "properties"):
        if (candidate / "overall.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"recbole_rlmm's properties/overall.yaml was found neither in {here} nor in {here.parent}; "
        "reinstall the package."
    )


def dataset_defaults_file(dataset: str) -> Path | None:
    """Our defaults for a dataset we ship (``properties/dataset/<dataset>.yaml``), if any."""
    path = properties_dir() / "dataset" / f"{dataset}.yaml"
    return path if path.is_file() else None


def dataset_config_file(data_path: str, dataset: str) -> Path | None:
    """The dataset folder's own ``<data_path>/<dataset>/<dataset>.yaml``, if it exists."""
    path = Path(os.path.expanduser(str(data_path))) / dataset / config_file(dataset)
    return path if path.is_file() else None


class RLMMConfig(Config):
    """RecBole's ``Config``; our property files join RecBole's internal defaults (module
    docstring). Everything else, including the external layers, is RecBole's code.

    One change to what the configuration dump shows: with ``benchmark_filename`` the split
    comes from the files, so ``eval_args.split`` reads ``{benchmark_filename: [...]}`` instead
    of a ratio split RecBole would not apply (RecBole reads it only without the files).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except (NotImplementedError, RuntimeError, TypeError, KeyError, ValueError) as exc:
            if isinstance(exc, UserError):
                raise
            # what RecBole checks beyond our table of keys (checks/keys.py)
            raise ConfigError(f"RecBole rejects the configuration: {exc}") from exc
        files = self.final_config_dict.get("benchmark_filename")
        if files:
            self.final_config_dict["eval_args"]["split"] = {"benchmark_filename": list(files)}

    def _set_default_parameters(self) -> None:
        # our table of keys first (recbole_rlmm/keys): RecBole's own checks then never see a
        # value the table knows to be wrong, and its remaining errors become ConfigErrors
        check_values(self.final_config_dict, self.model, self._key_source)
        data_path = self.final_config_dict.get("data_path")
        super()._set_default_parameters()
        # RecBole 1.2.1 reads its bundled ml-100k whatever data_path says; our runner reads a
        # user's <data_path>/ml-100k folder when there is one (RecBole's copy otherwise)
        if data_path is not None:
            user_folder = os.path.join(data_path, self.dataset)
            if os.path.isdir(user_folder):
                self.final_config_dict["data_path"] = user_folder

    def _init_device(self) -> None:
        """The device follows ``use_gpu`` and CUDA's availability (RecBole 1.2.1 ignores
        ``use_gpu``); ``use_gpu`` then says what runs. A distributed run uses ``nccl`` on GPUs
        and ``gloo`` on CPUs (RecBole's own method on GPUs)."""
        config = self.final_config_dict
        gpu = bool(config.get("use_gpu", True)) and torch.cuda.is_available()
        if gpu:
            super()._init_device()
        else:
            config["gpu_id"] = ""
            os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
            config["device"] = torch.device("cpu")
            if "local_rank" not in config:
                config["single_spec"] = True
                config["local_rank"] = 0
            else:
                join_cpu_process_group(config)
        config["use_gpu"] = config["device"].type == "cuda"

    def _key_source(self, key: str) -> str:
        """Where a key's value came from, for messages."""
        for where, values in (
            ("command line", getattr(self, "cmd_config_dict", {})),
            ("config_dict/--set", getattr(self, "variable_config_dict", {})),
            ("--config_files", getattr(self, "file_config_dict", {})),
        ):
            if key in (values or {}):
                return f"from the {where}" if where == "command line" else f"from {where}"
        return "from the model or dataset yaml"

    def _update_internal_config_dict(self, file: str) -> Any:
        values = super()._update_internal_config_dict(file)
        self._recbole_layers = getattr(self, "_recbole_layers", [])
        self._recbole_layers.append((file, set(values or {})))
        return values

    def _load_internal_config_dict(self, model: str, model_class: type, dataset: str) -> None:
        super()._load_internal_config_dict(model, model_class, dataset)
        # keys RecBole sets for this model (its model, dataset or quick-start yaml) keep
        # RecBole's value over our overall.yaml; its generic defaults take ours
        specific = {
            key
            for file, keys in getattr(self, "_recbole_layers", [])
            if os.path.realpath(file) not in _RECBOLE_GENERIC
            for key in keys
        }
        ours = our_defaults()
        self.internal_config_dict.update({k: v for k, v in ours.items() if k not in specific})
        self.internal_config_dict.update(model_defaults(model))
        data_path = self.external_config_dict.get(
            "data_path", self.internal_config_dict.get("data_path", "dataset/")
        )
        for path in (dataset_defaults_file(dataset), dataset_config_file(data_path, dataset)):
            if path is None:
                continue
            values = read_yaml(path)
            self.internal_config_dict.update(values)
            # shown under "Dataset Hyper Parameters", as RecBole does
            self.parameters["Dataset"] += [k for k in values if k not in self.parameters["Dataset"]]


def create_config(
    model: str | type | None = None,
    dataset: str | None = None,
    config_file_list: Sequence[str] | None = None,
    config_dict: dict[str, Any] | None = None,
) -> Any:
    """Build a RecBole ``Config`` for one of our models or any RecBole built-in.

    Layers and the resolution of ``model``/``dataset``: see the module docstring. A dataset
    that is neither a folder under ``data_path`` nor one RecBole can download is a
    :class:`DatasetNotFoundError` listing the folders that exist; a model whose optional package
    is missing (for this config) is a :class:`~recbole_rlmm.registry.MissingExtraError`.
    """
    files = [str(f) for f in config_file_list or []]
    config_dict = dict(config_dict or {})
    external = external_values(files, config_dict)
    if model is None:
        model = external.get("model", DEFAULT_MODEL)
    if dataset is None:
        dataset = str(external.get("dataset", DEFAULT_DATASET))
    model_class = get_model(model) if isinstance(model, str) else model
    config = RLMMConfig(
        model=model_class, dataset=dataset, config_file_list=files, config_dict=config_dict
    )
    check_extras(config["model"], config)
    check_dataset_folder(config)
    return config


def recbole_downloads() -> set[str]:
    """Dataset names RecBole downloads on first use (its ``properties/dataset/url.yaml``)."""
    path = Path(_RECBOLE_PROPERTIES) / "dataset" / "url.yaml"
    return set(read_yaml(path)) if path.is_file() else set()


def check_dataset_folder(config: Any) -> None:
    """Stop early, naming what exists, when ``config``'s dataset folder cannot be found."""
    folder = Path(config["data_path"])
    dataset = config["dataset"]
    if folder.is_dir() or dataset in recbole_downloads():
        return
    parent = folder.parent
    existing = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
    where = (
        f"the folders under {parent} are: {', '.join(existing)}"
        if existing
        else f"{parent} holds no dataset folders" if parent.is_dir() else f"{parent} does not exist"
    )
    raise DatasetNotFoundError(
        f"dataset {dataset!r}: no folder {folder} ({where}). Pass --dataset with one of them, set "
        f"data_path to the folder that holds {dataset}/, or make it with `recbole-rlmm prepare`."
    )


# --------------------------------------------------------------------------- fingerprints
#: Config keys that change neither a run's numbers nor its timings: where it runs, what it
#: prints and where it stores checkpoints. They are left out of a run's fingerprint.
VOLATILE_KEYS: frozenset[str] = frozenset(
    {
        "gpu_id", "use_gpu", "device", "local_rank", "single_spec", "world_size", "ip", "port",
        "nproc", "offset", "state", "show_progress", "checkpoint_dir", "log_wandb",
        "wandb_project", "save_dataset", "dataset_save_path", "save_dataloaders",
        "dataloaders_save_path",
    }
)


def fingerprint(config: Any) -> dict[str, Any]:
    """Everything in a resolved config that can change a run's results, JSON-safe.

    Two runs with equal fingerprints are the same experiment; see :data:`VOLATILE_KEYS`
    for what is left out.
    """
    final = dict(config.final_config_dict)
    data = {k: v for k, v in sorted(final.items()) if k not in VOLATILE_KEYS}
    # normalise through JSON so that a stored fingerprint compares equal to a fresh one
    return json.loads(json.dumps(jsonable(data)))


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ between two fingerprints (present in either)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
