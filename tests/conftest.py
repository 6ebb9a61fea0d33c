"""Shared fixtures: generated datasets in tmp dirs, a model builder, quiet logs, and the
stand-in trainer and call helper of the ``compare``/``tune`` tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from datagen import base_config, make_dataset  # noqa: E402

import recbole_rlmm  # noqa: E402,F401  (applies the RecBole compatibility patches)
from recbole_rlmm.runner import silence_recbole_warnings  # noqa: E402

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
    from recbole_rlmm.registry import get_model

    config = create_config(model, config_dict=base_config(root, **extra))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    net = get_model(model)(config, train._dataset).to(config["device"])
    return net, config, train, valid, test


# --------------------------------------------------------------------------- compare / tune


class FakeRunner:
    """Stands in for ``run_recbole_rlmm``: records every call and returns a result of the
    same shape. ``valid``/``test`` map a call to its Recall@20; ``best_epoch`` is fixed.
    ``curve`` (optional) maps a call to its per-epoch validation scores, reported to
    ``callback_fn`` as RecBole's trainer does (an exception it raises stops the "run")."""

    def __init__(
        self,
        valid: Callable[[dict[str, Any]], float] | None = None,
        test: Callable[[dict[str, Any]], float] | None = None,
        best_epoch: int = 5,
        bigger: bool = True,
        curve: Callable[[dict[str, Any]], list[float]] | None = None,
    ) -> None:
        self.curve = curve
        self.valid = valid or (lambda c: 0.5 + 0.01 * (c["seed"] % 10) + 0.001 * len(c["model"]))
        self.test = test or (lambda c: self.valid(c) / 2)
        self.best_epoch = best_epoch
        self.bigger = bigger
        self.calls: list[dict[str, Any]] = []

    @staticmethod
    def _metrics(recall20: float) -> dict[str, float]:
        return {
            f"{name}@{k}": recall20 * k / 20 * scale
            for name, scale in (("recall", 1.0), ("ndcg", 0.5))
            for k in (5, 10, 20)
        }

    def __call__(
        self,
        model: str,
        dataset: str,
        config_file_list: list[str],
        config_dict: dict[str, Any],
        saved: bool,
        callback_fn: Callable[[int, float], None] | None = None,
    ) -> dict[str, Any]:
        call = {
            "model": model,
            "seed": config_dict["seed"],
            "files": list(config_file_list),
            "config_dict": dict(config_dict),
            "saved": saved,
        }
        self.calls.append(call)
        if self.curve is not None and callback_fn is not None:
            for epoch, score in enumerate(self.curve(call)):
                callback_fn(epoch, score)
        valid = self._metrics(self.valid(call))
        return {
            "best_valid_score": valid["recall@20"],
            "valid_score_bigger": self.bigger,
            "best_valid_result": valid,
            "test_result": self._metrics(self.test(call)),
            "model": model,
            "dataset": dataset,
            "n_params": 100 + len(model),
            "best_epoch": self.best_epoch,
            "epochs_run": self.best_epoch + 1,
            "train_seconds_per_epoch": 0.1,
            "eval_seconds": 0.2,
            "config": object(),
        }

    def trained(self) -> set[tuple[str, int]]:
        return {(c["model"], c["seed"]) for c in self.calls}


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def echo_call(func: Callable[..., Any], **defaults: Any) -> Callable[..., tuple[Any, list[str]]]:
    """``call(**kwargs)`` runs ``func(**defaults, **kwargs)`` with ``echo`` collecting the
    printed lines and returns ``(result, lines)``; keyword arguments replace the defaults."""

    def call(**kwargs: Any) -> tuple[Any, list[str]]:
        lines: list[str] = []
        return func(**{**defaults, "echo": lines.append, **kwargs}), lines

    return call


@pytest.fixture
def base_yaml(tiny: Path, tmp_path: Path) -> Path:
    """The fast test settings for the generated ``tiny`` dataset, as a shared config file."""
    return write_yaml(tmp_path / "base.yaml", base_config(tiny))
