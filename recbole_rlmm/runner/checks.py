"""The validation steps of a run, in the order :func:`recbole_rlmm.runner.run_recbole_rlmm`
calls them.

1. While the configuration is built (:class:`recbole_rlmm.config.RLMMConfig`): config files
   readable, every key of the table valid (:mod:`.keys`).
2. :func:`validate_before_dataset`, before the log file is opened and before RecBole reads
   anything: writable output folders, the dataset's atomic files (:mod:`.data`), the feature
   and index files the model reads (file level: :mod:`.features`).
3. :func:`validate_dataset`, once RecBole has loaded the dataset: ``topk`` against the
   number of items.
4. While the model is built: the feature values (overflow, no information, rows of unknown
   items, row numbers without an index).

Nothing trains before all four have passed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from recbole_rlmm.config import ConfigError
from recbole_rlmm.data.checks import check_dataset_files
from recbole_rlmm.data.features import check_feature_files, configured_modalities, feature_sources
from recbole_rlmm.data.fingerprint import data_fingerprint as all_files
from recbole_rlmm.keys.values import switched_off


def writable_folder(key: str, value: Any) -> Path:
    """Create the folder of config key ``key`` if needed; a :class:`ConfigError` when it is a
    file, cannot be created or cannot be written to."""
    path = Path(os.path.expanduser(str(value)))
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"config key {key}={str(value)!r} is a file, not a folder; point {key} at a folder "
            "(it is created if missing)."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        parent = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise ConfigError(
            f"config key {key}={str(value)!r} cannot be created: {parent} is a file; point {key} at a folder."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"config key {key}={str(value)!r} cannot be created ({exc.strerror or exc}); point {key} at "
            "a folder you can write to."
        ) from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            f"config key {key}={str(value)!r} is not writable ({exc.strerror or exc}); point {key} at a "
            "folder you can write to."
        ) from None
    return path


def check_output_folders(config: Any, saved: bool = True) -> None:
    """``checkpoint_dir`` (when saving), ``log_dir`` and ``tensorboard_dir`` (unless off)."""
    if saved:
        writable_folder("checkpoint_dir", config["checkpoint_dir"])
    for key in ("log_dir", "tensorboard_dir"):
        value = config[key] if key in config else None  # noqa: SIM401 (Config has no .get)
        if key in config and not switched_off(value):
            writable_folder(key, value)


def modalities_read(config: Any, model_class: type) -> list[str] | None:
    """The modalities ``model_class`` reads with ``config`` ([] for models without features,
    None for every configured modality)."""
    method = getattr(model_class, "modalities_read", None)
    return [] if method is None else method(config)


def validate_data(config: Any, model_class: type) -> list[str]:
    """The dataset's atomic files and the feature files ``model_class`` reads (file level);
    ``compare`` and ``tune`` call it for every planned run before anything trains. Returns the
    warnings about what RecBole reads correctly but a user may not mean (file and line named)."""
    warnings = check_dataset_files(config)
    names = modalities_read(config, model_class)
    if names is None or names:
        check_feature_files(config, names)
    return warnings


def validate_before_dataset(config: Any, model_class: type, saved: bool = True) -> list[str]:
    """Step 2 of the module docstring; returns :func:`validate_data`'s warnings (the runner
    logs them once its log is open)."""
    check_output_folders(config, saved)
    return validate_data(config, model_class)


def data_fingerprint(config: Any, model_class: type) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of the files a run of ``model_class`` reads
    (:func:`recbole_rlmm.data.fingerprint.data_fingerprint` without the feature files of
    modalities the model does not read)."""
    out = all_files(config)
    names = modalities_read(config, model_class)
    if names is None:
        return out
    root = Path(config["data_path"])
    unread = {
        os.path.relpath(path, root)
        for modality, (feature, index) in zip(configured_modalities(config), feature_sources(config))
        if modality not in names
        for path in (feature, index)
        if path is not None
    }
    read = {
        os.path.relpath(path, root)
        for modality, (feature, index) in zip(configured_modalities(config), feature_sources(config))
        if modality in names
        for path in (feature, index)
        if path is not None
    }
    return {k: v for k, v in out.items() if k not in unread - read}


def full_ranking(config: Any) -> bool:
    mode = config["eval_args"]["mode"]
    return "full" in (mode.values() if isinstance(mode, dict) else [mode])


def check_topk(config: Any, dataset: Any) -> None:
    """Full ranking ranks every item: each cut-off must be at most the number of items."""
    topk = config["topk"] if isinstance(config["topk"], list) else [config["topk"]]
    n_items = int(dataset.item_num) - 1  # without the padding id
    if full_ranking(config) and max(topk) > n_items:
        fits = [k for k in topk if k <= n_items] or [min(10, n_items)]
        raise ConfigError(
            f"config key topk={topk} asks for more items than dataset '{config['dataset']}' has "
            f"({n_items}); full ranking needs cut-offs of at most {n_items}: set topk to e.g. "
            f"{fits} (and valid_metric to one of them)."
        )


def validate_dataset(config: Any, dataset: Any) -> None:
    """Step 3 of the module docstring."""
    check_topk(config, dataset)
