"""Shared fixtures: generated datasets in tmp dirs, a model builder, quiet logs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402
import torch  # noqa: E402
from datagen import base_config, make_dataset  # noqa: E402

import recbole_rlmm  # noqa: E402,F401  (applies the RecBole compatibility patches)
from recbole_rlmm.quick_start import silence_recbole_warnings  # noqa: E402

torch.set_num_threads(1)
silence_recbole_warnings()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own cwd (RecBole writes log/ and saved/ there) with clean argv."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["pytest"])


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A two-modality dataset where item 3 lacks an image, item 4 lacks both, item 5 lacks text."""
    root = tmp_path / "data"
    make_dataset(root, missing={"image": [3, 4], "text": [4, 5]})
    return root


def build_model(model: str, root: Path, **extra: Any) -> tuple[Any, Any, Any, Any, Any]:
    """Model, config and RecBole's train/valid/test dataloaders for a generated dataset."""
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    from recbole_rlmm.config import create_config
    from recbole_rlmm.utils import get_model

    config = create_config(model, config_dict=base_config(root, **extra))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    net = get_model(model)(config, train._dataset).to(config["device"])
    return net, config, train, valid, test
