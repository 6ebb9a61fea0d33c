"""Train and evaluate any model (ours or RecBole's) with RecBole's own pipeline.

This replaces RecBole's quick_start module (which imports ray at module level and breaks on a
current stack). The pipeline is RecBole's: ``create_dataset`` -> ``data_preparation`` (its
dataloaders and negative sampler) -> the model's RecBole trainer -> its full-ranking
evaluator, so numbers compare directly with RecBole's built-in models.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from logging import getLogger
from typing import Any

from recbole.data import create_dataset, data_preparation
from recbole.utils import get_trainer, init_logger, init_seed, set_color

from recbole_rlmm.config import create_config
from recbole_rlmm.registry import get_model


class _RunStats:
    """Mixin for a RecBole trainer class: records epoch times and the best epoch.

    It wraps the trainer's own ``_train_epoch``/``_valid_epoch``/``_save_checkpoint``
    and changes nothing they do.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.train_seconds: list[float] = []
        self.valid_seconds: list[float] = []
        self.best_epoch: int = -1
        self.last_epoch: int = -1

    def _train_epoch(self, train_data: Any, epoch_idx: int, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        self.train_seconds.append(time.perf_counter() - start)
        self.last_epoch = epoch_idx
        return out

    def _valid_epoch(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = super()._valid_epoch(*args, **kwargs)
        self.valid_seconds.append(time.perf_counter() - start)
        return out

    def _save_checkpoint(self, epoch: int, *args: Any, **kwargs: Any) -> Any:
        self.best_epoch = epoch
        return super()._save_checkpoint(epoch, *args, **kwargs)


def _with_stats(trainer_class: type) -> type:
    return type(trainer_class.__name__, (_RunStats, trainer_class), {})


def unique_checkpoint_path(config: Any) -> str:
    """A checkpoint file name no other run can take.

    RecBole names checkpoints ``<model>-<time to the second>.pth``: two runs of one model
    started in the same second (parallel jobs, ``compare``) overwrite each other's best
    model and then evaluate the wrong one. We add the dataset, the process id and a random
    suffix.
    """
    from recbole.utils import get_local_time

    name = f"{config['model']}-{config['dataset']}-{get_local_time()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.pth"
    return os.path.join(config["checkpoint_dir"], name)


def run_recbole_rlmm(
    model: str | type | None = None,
    dataset: str | None = None,
    config_file_list: Sequence[str] | None = None,
    config_dict: dict[str, Any] | None = None,
    saved: bool = True,
) -> dict[str, Any]:
    """Train ``model`` on ``dataset`` and evaluate it on the test split.

    Returns RecBole's ``run_recbole`` dict (``best_valid_score``, ``valid_score_bigger``,
    ``best_valid_result``, ``test_result``) plus ``model``, ``dataset``, ``n_params``,
    ``best_epoch``, ``epochs_run``, ``train_seconds_per_epoch``, ``eval_seconds`` and
    ``checkpoint`` (the best model's file, when saved) and ``config`` (the final RecBole
    ``Config``).
    """
    config = create_config(model, dataset, config_file_list, config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    logger.info(config)

    data = create_dataset(config)
    logger.info(data)
    topk = config["topk"] if isinstance(config["topk"], list) else [config["topk"]]
    if config["eval_args"]["mode"] == "full" and max(topk) > data.item_num - 1:
        raise ValueError(
            f"topk={topk} asks for more items than dataset '{config['dataset']}' has "
            f"({data.item_num - 1}); set --topk to cut-offs of at most {data.item_num - 1}."
        )
    train_data, valid_data, test_data = data_preparation(config, data)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    if isinstance(model, type) and model.__name__ == config["model"]:
        model_class = model
    else:
        model_class = get_model(config["model"])
    net = model_class(config, train_data._dataset).to(config["device"])
    logger.info(net)
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)

    trainer_class = _with_stats(get_trainer(config["MODEL_TYPE"], config["model"]))
    trainer = trainer_class(config, net)
    trainer.saved_model_file = unique_checkpoint_path(config)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"]
    )
    start = time.perf_counter()
    test_result = trainer.evaluate(
        test_data, load_best_model=saved, show_progress=config["show_progress"]
    )
    eval_seconds = time.perf_counter() - start

    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    train_times = trainer.train_seconds
    return {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "model": config["model"],
        "dataset": config["dataset"],
        "n_params": n_params,
        "best_epoch": trainer.best_epoch,
        "epochs_run": trainer.last_epoch + 1,
        "train_seconds_per_epoch": sum(train_times) / len(train_times) if train_times else 0.0,
        "eval_seconds": eval_seconds,
        "checkpoint": trainer.saved_model_file if saved else None,
        "config": config,
    }


def silence_recbole_warnings() -> None:
    """Quiet third-party deprecation noise that RecBole 1.2.1 triggers on current libraries."""
    import warnings

    for category, pattern in (
        (FutureWarning, ".*GradScaler.*"),
        (UserWarning, ".*non-writable tensors.*"),
        (UserWarning, ".*not writable.*"),
        (UserWarning, ".*Sparse invariant checks.*"),
    ):
        warnings.filterwarnings("ignore", message=pattern, category=category)
    # RecBole's dataset.py still calls chained fillna(inplace=True); compat fills correctly
    warnings.filterwarnings("ignore", message=".*chained assignment.*")
    logging.getLogger("PIL").setLevel(logging.WARNING)
