"""Our runner: train and evaluate any model (ours or RecBole's) with RecBole's own pipeline
and our defaults, checks and choices (README, "Entry points"): our defaults (declared in
:mod:`recbole_rlmm.keys.schema`), our checks before training, cold items never drawn as
negatives, the run plan (:mod:`recbole_rlmm.plan`), our trainer (:mod:`.trainer`: pickle-free
checkpoints, resume, cold items placed on validation), a user's ``dataset/ml-100k`` before
RecBole's bundled copy, pickled caches refused; one process, or ``nproc`` processes on this
machine and ``world_size`` over several machines (RecBole's DDP; ``gloo`` on CPUs).

The pipeline is RecBole's: ``create_dataset`` -> ``data_preparation`` (its dataloaders and
negative sampler) -> the model's RecBole trainer -> its full-ranking evaluator, so numbers
compare directly with RecBole's built-in models.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from logging import getLogger
from pathlib import Path
from typing import Any

import torch.multiprocessing as mp
from recbole.data import data_preparation
from recbole.trainer.trainer import PretrainTrainer
from recbole.utils import init_seed, set_color

from recbole_rlmm.checkpoint import CheckpointError
from recbole_rlmm.config import create_config
from recbole_rlmm.data.cold import restrict_negatives
from recbole_rlmm.data.format import config_file
from recbole_rlmm.errors import ConfigError
from recbole_rlmm.keys.sources import user_key_sources as key_sources
from recbole_rlmm.keys.unread import unread_key_warnings
from recbole_rlmm.keys.values import check_process_counts
from recbole_rlmm.plan.plan import apply_plan, make_plan
from recbole_rlmm.registry import get_model
from recbole_rlmm.runner.checks import (
    validate_before_dataset,
    validate_dataset,
)
from recbole_rlmm.runner.dataset import load_dataset, refused_pickled_caches
from recbole_rlmm.runner.distributed import leave_process_group, shared_value
from recbole_rlmm.runner.logs import init_run_logger, metrics_line
from recbole_rlmm.runner.resume import RunInterrupted, check_resumable, interrupted_message
from recbole_rlmm.runner.trainer import run_name, runner_trainer_class


def unique_checkpoint_path(config: Any) -> str:
    """A checkpoint file name no other run can take (RecBole's ``<model>-<time>.pth`` is
    shared by two runs of one model started in the same second)."""
    return os.path.join(config["checkpoint_dir"], run_name(config) + ".pth")

def check_pretrain_saves(config: Any, trainer_class: type) -> None:
    """A pre-training stage (RaCT, S3Rec) is evaluated from the model RecBole's
    ``PretrainTrainer`` saves every ``save_step`` epochs; when ``pretrain_epochs`` is not a
    multiple of it, no file is written and evaluation would fail after training. Say so now."""
    if not issubclass(trainer_class, PretrainTrainer) or "pretrain" not in str(config["train_stage"]):
        return
    epochs, step = int(config["pretrain_epochs"]), int(config["save_step"])
    if epochs % step:
        raise ConfigError(
            f"{config['model']} stage {config['train_stage']} saves its model every save_step={step} "
            f"epochs and is evaluated from it: set pretrain_epochs (now {epochs}) to a multiple of "
            f"save_step, or run with saved=False (--nosave)."
        )

def run_recbole_rlmm(
    model: str | type | None = None,
    dataset: str | None = None,
    config_file_list: Sequence[str] | None = None,
    config_dict: dict[str, Any] | None = None,
    saved: bool = True,
    queue: Any = None,
    resume: str | os.PathLike[str] | None = None,
    nproc: int = 1,
    world_size: int = -1,
    ip: str = "localhost",
    port: str | int = "5678",
    group_offset: int = 0,
    callback_fn: Callable[[int, float], None] | None = None,
) -> dict[str, Any] | None:
    """Train ``model`` on ``dataset`` and evaluate it on the test split, with our defaults.

    With ``nproc == 1`` and ``world_size <= 0`` this process trains. Otherwise ``nproc``
    processes are spawned on this machine as ranks ``group_offset .. group_offset + nproc - 1``
    of ``world_size`` (default ``nproc``), meeting at ``ip:port``; every machine of a
    multi-machine run calls this with its own ``group_offset``. The result (of rank 0, without
    ``config``) is returned on the machine that holds rank 0, None on the others.

    ``resume``: a checkpoint to continue from (the ``.resume.pth`` an interrupted run left,
    or a best-model checkpoint); the configuration must match the one it was trained with,
    except ``epochs`` and ``stopping_step``.

    ``callback_fn(epoch, valid_score)``: called after every validation (RecBole's ``fit``
    callback; ``tune`` reports to its Optuna trial there, and an exception it raises, such as
    a pruned trial, stops the run); single-process runs only.

    Returns RecBole's ``run_recbole`` dict (``best_valid_score``, ``valid_score_bigger``,
    ``best_valid_result``, ``test_result``) plus ``model``, ``dataset``, ``n_params``,
    ``best_epoch``, ``epochs_run``, ``train_seconds_per_epoch``, ``train_seconds``,
    ``valid_seconds``, ``eval_seconds`` (the test evaluation), ``checkpoint`` (the best
    model's file, when saved), ``log_file`` and ``config`` (the final RecBole ``Config``). In
    a distributed run (``local_rank`` in ``config_dict``), rank 0 also puts the dict, without
    ``config``, into ``queue``.
    """
    check_process_counts(nproc, world_size, group_offset)
    if nproc != 1 or world_size > 0:
        if resume is not None:
            raise CheckpointError(
                "--resume (resume=) continues single-process runs; drop --nproc/--world_size (nproc=, world_size=)."
            )
        if callback_fn is not None:
            raise ConfigError("callback_fn= is for single-process runs; drop nproc=/world_size=.")
        return _spawn(model, dataset, config_file_list, config_dict, saved, nproc, world_size, ip, port, group_offset)
    # every check that can run before training does (docs/CHECKS.md): key values while the
    # config is built, files before RecBole reads them, topk once the dataset is loaded,
    # feature values while the plan and the model read them
    config = create_config(model, dataset, config_file_list, config_dict)
    if isinstance(model, type) and model.__name__ == config["model"]:
        model_class = model
    else:
        model_class = get_model(config["model"])
    data_warnings = validate_before_dataset(config, model_class, saved)
    init_seed(config["seed"], config["reproducibility"])
    log_file = init_run_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    for line in data_warnings:
        logger.warning(line)
    for line in unread_key_warnings(user_key_sources(config, config_file_list, config_dict), config["model"]):
        logger.warning(line)
    logger.info(config)

    with refused_pickled_caches(config):
        data = load_dataset(config)
    logger.info(data)
    validate_dataset(config, data)
    with refused_pickled_caches(config):
        train_data, valid_data, test_data = data_preparation(config, data)
    if not config["cold_items_as_negatives"]:
        cold = restrict_negatives(train_data)
        if cold:
            logger.info(
                f"{cold} items appear only in valid/test (cold items): training negatives are drawn "
                "from the warm items only (cold_items_as_negatives: false)"
            )

    # every decision made from the data, once, before the model (recbole_rlmm/plan)
    plan = make_plan(config, model_class, train_data._dataset, valid_data._dataset)
    apply_plan(config, plan)
    for line in plan.lines():
        logger.info(line)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    net = build_model(model_class, config, train_data)
    logger.info(net)
    content = net.content_summary() if hasattr(net, "content_summary") else f"content: none ({config['model']} reads no item features)"
    logger.info(set_color(content, "yellow"))
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)

    trainer_class = runner_trainer_class(config["MODEL_TYPE"], config["model"])
    if saved:
        check_pretrain_saves(config, trainer_class)
    trainer = trainer_class(config, net)
    trainer.saved_model_file = shared_value(config, unique_checkpoint_path(config))
    if resume is not None:
        check_resumable(resume, config)
        trainer.resume_checkpoint(resume)
    try:
        best_valid_score, best_valid_result = trainer.fit(
            train_data,
            valid_data,
            saved=saved,
            show_progress=config["show_progress"],
            # not every RecBole trainer takes it (XGBoost, LightGBM): passed only when given
            **({"callback_fn": callback_fn} if callback_fn is not None else {}),
        )
    except KeyboardInterrupt:
        raise RunInterrupted(interrupted_message(trainer, saved)) from None
    start = time.perf_counter()
    test_result = trainer.evaluate(
        test_data, load_best_model=saved, show_progress=config["show_progress"]
    )
    eval_seconds = time.perf_counter() - start

    logger.info(set_color("best valid ", "yellow") + f": {metrics_line(best_valid_result)}")
    logger.info(set_color("test result", "yellow") + f": {metrics_line(test_result)}")
    train_times = trainer.train_seconds
    result = {
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
        "train_seconds": sum(train_times),
        "valid_seconds": sum(trainer.valid_seconds),
        "eval_seconds": eval_seconds,
        "checkpoint": trainer.saved_model_file if saved else None,
        "log_file": str(log_file) if log_file else None,
        "world_size": 1 if config["single_spec"] else int(config["world_size"]),
        "content": content,
        "config": config,
    }
    if config["local_rank"] == 0 and queue is not None:
        queue.put({k: v for k, v in result.items() if k != "config"})
    if not config["single_spec"]:
        del trainer, net
        leave_process_group()
    return result

def _spawn(
    model: Any, dataset: Any, config_file_list: Any, config_dict: Any, saved: bool,
    nproc: int, world_size: int, ip: str, port: str | int, group_offset: int,
) -> dict[str, Any] | None:
    """``nproc`` processes of our runner on this machine (RecBole's ``run``, with our runner)."""
    world_size = nproc if world_size == -1 else world_size
    queue = mp.get_context("spawn").SimpleQueue()
    config_dict = {
        **(config_dict or {}),
        "world_size": world_size,
        "ip": ip,
        "port": str(port),
        "nproc": nproc,
        "offset": group_offset,
    }
    kwargs = {"config_dict": config_dict, "queue": queue, "saved": saved}
    mp.spawn(_runner_rank, args=(model, dataset, config_file_list, kwargs), nprocs=nproc, join=True)
    return None if queue.empty() else queue.get()

def _runner_rank(rank: int, model: Any, dataset: Any, config_file_list: Any, kwargs: dict[str, Any]) -> None:
    """One process of a distributed run of our runner."""
    kwargs = dict(kwargs)
    kwargs["config_dict"] = {**kwargs.get("config_dict", {}), "local_rank": rank}
    run_recbole_rlmm(model, dataset, config_file_list, **kwargs)

def user_key_sources(config: Any, config_file_list: Sequence[str] | None, config_dict: dict[str, Any] | None) -> dict[str, str]:
    """The keys the user set for this run and where (for the unread-key warnings)."""
    dataset_yaml = Path(config["data_path"]) / config_file(str(config["dataset"]))
    return key_sources(config_file_list, config_dict, dataset_yaml)

def build_model(model_class: type, config: Any, train_data: Any) -> Any:
    """``model_class(config, train_data.dataset)`` on ``config['device']``: the model reads its
    configuration (the run plan's decisions included) and the training data, nothing else."""
    return model_class(config, train_data._dataset).to(config["device"])
