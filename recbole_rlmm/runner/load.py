"""Load a checkpoint for use: the stored configuration, today's data files (checked against the
stored fingerprint), the model rebuilt from the configuration (its run plan included) and the
trained weights."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed

from recbole_rlmm.checkpoint import (
    FORMAT,
    _python_hint,
    check_data,
    config_from_dict,
    read_checkpoint,
)
from recbole_rlmm.registry import get_model
from recbole_rlmm.runner.dataset import refused_pickled_caches
from recbole_rlmm.runner.run import build_model


@dataclass
class LoadedModel:
    """A trained model with the data it was trained on (RecBole's ``load_data_and_model``)."""

    config: Any
    model: Any
    dataset: Any
    train_data: Any
    valid_data: Any
    test_data: Any
    checkpoint: dict[str, Any]
    path: Path


def load_for_inference(
    path: str | os.PathLike[str],
    trust_checkpoint: bool = False,
    changed_data: str = "error",
    device: str | torch.device | None = None,
) -> LoadedModel:
    """Config, model (in evaluation mode), dataset and dataloaders of a saved checkpoint; the
    model is rebuilt from the stored configuration, run plan included (nothing is decided
    again from the data)."""
    path = Path(path)
    device = torch.device(device) if isinstance(device, str) else device
    with _python_hint("load_for_inference"):
        state = read_checkpoint(path, map_location="cpu", trust_checkpoint=trust_checkpoint)
    if state["format"] == FORMAT:
        config = config_from_dict(state["config"], device)
        check_data(state, config, path, changed_data)
    else:  # a trusted RecBole pickle
        config = state["config"]
        if device is not None:
            config["device"] = device
    init_seed(config["seed"], config["reproducibility"])
    with refused_pickled_caches(config):
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])

    model = build_model(get_model(config["model"]), config, train_data)
    model.load_state_dict(state["state_dict"])
    model.load_other_parameter(state.get("other_parameter"))  # caches come back as None
    model.eval()
    return LoadedModel(config, model, dataset, train_data, valid_data, test_data, state, path)
