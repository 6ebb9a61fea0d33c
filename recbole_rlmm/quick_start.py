"""Train and evaluate any model (ours or RecBole's) with RecBole's own pipeline.

Two kinds of entry points, each with its own defaults (README, "Entry points"):

* **Our runner**, :func:`run_recbole_rlmm` (``recbole-rlmm run`` and the other commands): our
  defaults (``properties/``), our checks before training, cold items never drawn as negatives,
  our trainer (:mod:`recbole_rlmm.trainer`: pickle-free checkpoints, resume), a user's
  ``dataset/ml-100k`` before RecBole's bundled copy, pickled caches refused; one process, or
  ``nproc`` processes on this machine and ``world_size`` over several machines (RecBole's DDP;
  ``gloo`` on CPUs).
* **RecBole's own functions**, :func:`run_recbole`, :func:`run`, :func:`run_recboles`,
  :func:`load_data_and_model`: ``recbole/quick_start/quick_start.py`` of RecBole 1.2.1 line for
  line (RecBole's ``Config``, defaults, logger, FLOPs count, trainer and checkpoint format), so
  the same arguments give RecBole's results to the last digit. They exist because RecBole's
  module imports ray 2.6.3, which fails on a current stack; they also find our models by name.

The pipeline is RecBole's in both: ``create_dataset`` -> ``data_preparation`` (its dataloaders and
negative sampler) -> the model's RecBole trainer -> its full-ranking evaluator, so numbers
compare directly with RecBole's built-in models.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import MutableMapping, Sequence
from logging import getLogger
from pathlib import Path
from typing import Any

from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed, set_color

from recbole_rlmm.checks.keys import unread_key_warnings
from recbole_rlmm.checks.run import check_process_counts, validate_before_dataset, validate_dataset
from recbole_rlmm.config import ConfigError, create_config
from recbole_rlmm.data.cold import restrict_negatives
from recbole_rlmm.errors import UserError
from recbole_rlmm.registry import get_model
from recbole_rlmm.trainer import run_name, runner_trainer_class, switched_off


class RunInterrupted(UserError):
    """Ctrl-C during a run; the message says where the best model is and how to resume."""


def unique_checkpoint_path(config: Any) -> str:
    """A checkpoint file name no other run can take (RecBole's ``<model>-<time>.pth`` is
    shared by two runs of one model started in the same second)."""
    return os.path.join(config["checkpoint_dir"], run_name(config) + ".pth")


def _shared(config: Any, value: Any) -> Any:
    """``value`` as rank 0 has it, in every process of a distributed run (``value`` itself in
    a single process): the ranks agree on one checkpoint name, which rank 0 writes and every
    rank reads back for the test evaluation (``checkpoint_dir`` must be a folder every machine
    sees, as in RecBole)."""
    if config["single_spec"]:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _is_terminal(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def init_run_logger(config: Any) -> Path | None:
    """RecBole's logging (same format and levels) with a log file of this run's own.

    The file is ``<log_dir>/<model>/<run name>.log`` (``log_dir`` defaults to RecBole's
    ``log/``; ``log_dir: ~`` logs to the console only). Returns the file's path.
    """
    import colorlog
    from recbole.utils.logger import RemoveColorFilter, log_colors_config

    state = str(config["state"] or "info").lower()
    level = {
        "debug": logging.DEBUG,
        "warning": logging.WARNING,
        "error": logging.ERROR,
        "critical": logging.CRITICAL,
    }.get(state, logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(level)
    if _is_terminal(console.stream):
        console.setFormatter(
            colorlog.ColoredFormatter(
                "%(log_color)s%(asctime)-15s %(levelname)s  %(message)s",
                "%d %b %H:%M",
                log_colors=log_colors_config,
            )
        )
    else:  # redirected: no colour codes (colorlog's formatter adds its reset code to every line)
        console.setFormatter(logging.Formatter("%(asctime)-15s %(levelname)s  %(message)s", "%d %b %H:%M"))
        console.addFilter(RemoveColorFilter())  # the codes RecBole writes into its messages
    handlers: list[logging.Handler] = [console]
    log_dir = config["log_dir"] if "log_dir" in config else "log/"  # noqa: SIM401 (Config has no .get)
    path = None
    if not switched_off(log_dir):
        path = Path(log_dir) / str(config["model"]) / f"{run_name(config)}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(path)
        file.setLevel(level)
        file.setFormatter(
            logging.Formatter("%(asctime)-15s %(levelname)s  %(message)s", "%a %d %b %Y %H:%M:%S")
        )
        file.addFilter(RemoveColorFilter())
        handlers.append(file)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_rlmm", False)]:
        root.removeHandler(handler)  # the previous run's (compare, tune: many runs, one process)
        handler.close()
    for handler in handlers:
        handler._rlmm = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    return path


def check_pretrain_saves(config: Any, trainer_class: type) -> None:
    """A pre-training stage (RaCT, S3Rec) is evaluated from the model RecBole's
    ``PretrainTrainer`` saves every ``save_step`` epochs; when ``pretrain_epochs`` is not a
    multiple of it, no file is written and evaluation would fail after training. Say so now."""
    from recbole.trainer.trainer import PretrainTrainer

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
            from recbole_rlmm.checkpoint import CheckpointError

            raise CheckpointError(
                "--resume (resume=) continues single-process runs; drop --nproc/--world_size (nproc=, world_size=)."
            )
        return _spawn(model, dataset, config_file_list, config_dict, saved, nproc, world_size, ip, port, group_offset)
    # every check that can run before training does (recbole_rlmm/checks, docs/CHECKS.md):
    # key values while the config is built, files before RecBole reads them, topk once the
    # dataset is loaded, feature values while the model is built
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
        data = _load_dataset(config)
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

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    net = build_model(model_class, config, train_data, valid_data)
    logger.info(net)
    content = net.content_summary() if hasattr(net, "content_summary") else f"content: none ({config['model']} reads no item features)"
    logger.info(set_color(content, "yellow"))
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)

    trainer_class = runner_trainer_class(config["MODEL_TYPE"], config["model"])
    if saved:
        check_pretrain_saves(config, trainer_class)
    trainer = trainer_class(config, net)
    trainer.saved_model_file = _shared(config, unique_checkpoint_path(config))
    if resume is not None:
        _check_resumable(resume, config)
        trainer.resume_checkpoint(resume)
    try:
        best_valid_score, best_valid_result = trainer.fit(
            train_data, valid_data, saved=saved, show_progress=config["show_progress"]
        )
    except KeyboardInterrupt:
        raise RunInterrupted(_interrupted_message(trainer, saved)) from None
    start = time.perf_counter()
    test_result = trainer.evaluate(
        test_data, load_best_model=saved, show_progress=config["show_progress"]
    )
    eval_seconds = time.perf_counter() - start

    logger.info(set_color("best valid ", "yellow") + f": {_metrics_line(best_valid_result)}")
    logger.info(set_color("test result", "yellow") + f": {_metrics_line(test_result)}")
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
        _leave_process_group()
    return result


def _metrics_line(result: Any) -> str:
    """``recall@10 : 0.117    recall@20 : ...`` (RecBole's ``dict2str``, as its valid lines)."""
    from recbole.utils import dict2str

    return dict2str(result) if isinstance(result, dict) else str(result)


def _spawn(
    model: Any, dataset: Any, config_file_list: Any, config_dict: Any, saved: bool,
    nproc: int, world_size: int, ip: str, port: str | int, group_offset: int,
) -> dict[str, Any] | None:
    """``nproc`` processes of our runner on this machine (RecBole's ``run``, with our runner)."""
    import torch.multiprocessing as mp

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


#: Where the cache paths point while a pickled cache is refused (a folder that holds none).
_NO_CACHE = ".recbole-rlmm-no-pickled-cache"


def _dataset_class_name(config: Any) -> str:
    """The dataset class RecBole's ``create_dataset`` builds (its cache file is named after it)."""
    import importlib

    from recbole.utils import ModelType

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
    from recbole_rlmm.checkpoint import is_trusted

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


def _leave_process_group() -> None:
    """End this rank's part in a distributed run so that the process can exit cleanly.

    The ranks first wait for each other (no rank tears its connections down while another
    still talks to it), then the last references to the process group (the trainer's
    ``DistributedDataParallel`` wrapper and its reducer, which sit in reference cycles) are
    collected and the group destroyed while the interpreter is fully alive. Left to the
    interpreter's exit, gloo's worker threads were destroyed during finalisation and the
    process aborted (``terminate called without an active exception``, SIGABRT) at random.
    """
    import gc

    import torch.distributed as dist

    dist.barrier()
    gc.collect()  # the DDP wrapper's cycles hold the group
    dist.destroy_process_group()


def user_key_sources(config: Any, config_file_list: Sequence[str] | None, config_dict: dict[str, Any] | None) -> dict[str, str]:
    """The keys the user set for this run and where (for the unread-key warnings)."""
    from recbole_rlmm.checks.keys import user_key_sources as sources
    from recbole_rlmm.data.format import config_file

    dataset_yaml = Path(config["data_path"]) / config_file(str(config["dataset"]))
    return sources(config_file_list, config_dict, dataset_yaml)


def _load_dataset(config: Any) -> Any:
    """RecBole's ``create_dataset``; what it still rejects after our checks (checks/data.py)
    becomes one line naming the dataset (``--debug`` shows RecBole's traceback)."""
    from recbole_rlmm.checks.data import DataFileError

    try:
        return create_dataset(config)
    except UserError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise DataFileError(
            f"RecBole cannot load dataset '{config['dataset']}' from {config['data_path']}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _interrupted_message(trainer: Any, saved: bool) -> str:
    epoch = trainer.last_epoch + 1
    if not saved:
        return f"interrupted in epoch {epoch} (--nosave: no checkpoint was kept)."
    best = (
        f"the best model so far (epoch {trainer.best_epoch}) is in {trainer.saved_model_file}"
        if Path(trainer.saved_model_file).is_file()
        else "no best model was saved yet"
    )
    resume = trainer.resume_file
    how = f"; continue with the same command and --resume {resume}" if Path(resume).is_file() else ""
    return f"interrupted in epoch {epoch}: {best}{how}."


#: Keys that may differ between an interrupted run and its continuation.
RESUME_MAY_CHANGE = frozenset({"epochs", "stopping_step", "show_progress", "log_dir", "tensorboard_dir", "state"})


def _check_resumable(path: str | os.PathLike[str], config: Any) -> None:
    """The run being resumed must be the same experiment: same settings and data."""
    from recbole_rlmm.checkpoint import (
        CheckpointError,
        check_data,
        config_from_dict,
        read_checkpoint,
    )
    from recbole_rlmm.experiment.common import VOLATILE_KEYS, changed_keys, fingerprint

    state = read_checkpoint(path)
    if state["format"] != "recbole-rlmm-checkpoint":
        return  # a trusted RecBole pickle: RecBole's own (unchecked) semantics
    stored = fingerprint(config_from_dict(state["config"]))
    current = fingerprint(config)
    differ = [k for k in changed_keys(stored, current) if k not in RESUME_MAY_CHANGE | VOLATILE_KEYS]
    if differ:
        shown = ", ".join(f"{k}={stored.get(k)!r} (now {current.get(k)!r})" for k in differ[:5])
        raise CheckpointError(
            f"{path} was trained with other settings: {shown}. Resume with the command and "
            "config files of the interrupted run (only epochs and stopping_step may change)."
        )
    check_data(state, config, Path(path), "resume")


def build_model(model_class: type, config: Any, train_data: Any, valid_data: Any) -> Any:
    """``model_class(config, train_data.dataset)`` on ``config['device']``, built with the
    validation interactions available to our models' content check
    (:mod:`recbole_rlmm.model.signal`); they never see the validation data otherwise."""
    from recbole_rlmm.model.signal import validation_probe

    valid = valid_data._dataset
    users, items = valid.inter_feat[valid.uid_field].numpy(), valid.inter_feat[valid.iid_field].numpy()
    with validation_probe(users, items):
        return model_class(config, train_data._dataset).to(config["device"])


# ---------------------------------------------------------------------------- RecBole's own functions
# recbole/quick_start/quick_start.py of RecBole 1.2.1, line for line, without its module-level
# ``from ray import tune`` (which fails on a current stack). Two additions: a model name of
# ours is found (RecBole's ``Config`` and ``get_model`` know only RecBole's), and
# ``run_recbole`` also takes ``run``'s process arguments. ``tests/test_guest.py`` checks that
# they give RecBole's results to the last digit.


def _recbole_model(model: Any, config_file_list: Any, config_dict: Any) -> Any:
    """``model`` as RecBole's ``Config`` takes it: our models as classes (RecBole looks names up
    among its own models only), anything else unchanged."""
    from recbole_rlmm.config import external_values
    from recbole_rlmm.registry import MODELS

    name = model
    if name is None:
        name = external_values(config_file_list, config_dict).get("model")
    if isinstance(name, str) and name in MODELS:
        return get_model(name)
    return model


def run(
    model: Any,
    dataset: Any,
    config_file_list: Any = None,
    config_dict: Any = None,
    saved: bool = True,
    nproc: int = 1,
    world_size: int = -1,
    ip: str = "localhost",
    port: str = "5678",
    group_offset: int = 0,
) -> Any:
    """RecBole's ``recbole.quick_start.run``: one process, or ``nproc`` processes (DDP)."""
    if nproc == 1 and world_size <= 0:
        res = run_recbole(
            model=model,
            dataset=dataset,
            config_file_list=config_file_list,
            config_dict=config_dict,
            saved=saved,
        )
    else:
        if world_size == -1:
            world_size = nproc
        import torch.multiprocessing as mp

        # Refer to https://discuss.pytorch.org/t/problems-with-torch-multiprocess-spawn-and-simplequeue/69674/2
        # https://discuss.pytorch.org/t/return-from-mp-spawn/94302/2
        queue = mp.get_context("spawn").SimpleQueue()

        config_dict = config_dict or {}
        config_dict.update(
            {
                "world_size": world_size,
                "ip": ip,
                "port": port,
                "nproc": nproc,
                "offset": group_offset,
            }
        )
        kwargs = {
            "config_dict": config_dict,
            "queue": queue,
        }

        mp.spawn(
            run_recboles,
            args=(model, dataset, config_file_list, kwargs),
            nprocs=nproc,
            join=True,
        )

        # Normally, there should be only one item in the queue
        res = None if queue.empty() else queue.get()
    return res


def run_recbole(
    model: Any = None,
    dataset: Any = None,
    config_file_list: Any = None,
    config_dict: Any = None,
    saved: bool = True,
    queue: Any = None,
    nproc: int = 1,
    world_size: int = -1,
    ip: str = "localhost",
    port: str = "5678",
    group_offset: int = 0,
) -> Any:
    """RecBole's ``recbole.quick_start.run_recbole``: RecBole's ``Config`` and defaults, its
    logger, trainer and checkpoint format; returns RecBole's dict (``best_valid_score``,
    ``valid_score_bigger``, ``best_valid_result``, ``test_result``). With ``nproc``/``world_size``
    it is RecBole's ``run``. Our defaults and checks: :func:`run_recbole_rlmm`."""
    if nproc != 1 or world_size > 0:
        return run(model, dataset, config_file_list, config_dict, saved, nproc, world_size, ip, port, group_offset)
    import torch.distributed as dist
    from recbole.config import Config
    from recbole.data.transform import construct_transform
    from recbole.utils import get_environment, get_flops, get_trainer, init_logger

    # configurations initialization
    config = Config(
        model=_recbole_model(model, config_file_list, config_dict),
        dataset=dataset,
        config_file_list=config_file_list,
        config_dict=config_dict,
    )
    init_seed(config["seed"], config["reproducibility"])
    # logger initialization
    init_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    logger.info(config)

    # dataset filtering
    dataset = create_dataset(config)
    logger.info(dataset)

    # dataset splitting
    train_data, valid_data, test_data = data_preparation(config, dataset)

    # model loading and initialization
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)

    transform = construct_transform(config)
    flops = get_flops(model, dataset, config["device"], logger, transform)
    logger.info(set_color("FLOPs", "blue") + f": {flops}")

    # trainer loading and initialization
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    # model training
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"]
    )

    # model evaluation
    test_result = trainer.evaluate(
        test_data, load_best_model=saved, show_progress=config["show_progress"]
    )

    environment_tb = get_environment(config)
    logger.info(
        "The running environment of this training is as follows:\n"
        + environment_tb.draw()
    )

    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")

    result = {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
    }

    if not config["single_spec"]:
        dist.destroy_process_group()

    if config["local_rank"] == 0 and queue is not None:
        queue.put(result)  # for multiprocessing, e.g., mp.spawn

    return result  # for the single process


def run_recboles(rank: int, *args: Any) -> None:
    """RecBole's ``run_recboles``: one process of :func:`run`."""
    kwargs = args[-1]
    if not isinstance(kwargs, MutableMapping):
        raise ValueError(
            f"The last argument of run_recboles should be a dict, but got {type(kwargs)}"
        )
    kwargs["config_dict"] = kwargs.get("config_dict", {})
    kwargs["config_dict"]["local_rank"] = rank
    run_recbole(
        *args[:3],
        **kwargs,
    )


def load_data_and_model(model_file: Any) -> tuple:
    """RecBole's ``load_data_and_model``: ``(config, model, dataset, train_data, valid_data,
    test_data)`` of a checkpoint RecBole's trainer wrote (a pickled file: loading it runs the
    code stored in it, as in RecBole). A checkpoint of our runner (pickle-free) is read by
    :func:`recbole_rlmm.checkpoint.load_for_inference`, which checks its data files too."""
    import torch
    from recbole.utils import init_logger

    from recbole_rlmm.compat import torch_loads_weights_only

    ours = _our_checkpoint(model_file)
    if ours is not None:
        return ours
    if torch_loads_weights_only():  # RecBole's torch.load, as on torch < 2.6 (compat.py)
        checkpoint = torch.load(model_file, weights_only=False)
    else:
        checkpoint = torch.load(model_file)
    config = checkpoint["config"]
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))

    return config, model, dataset, train_data, valid_data, test_data


def _our_checkpoint(model_file: Any) -> tuple | None:
    """:func:`load_data_and_model`'s tuple for a checkpoint in our format, None for any other file."""
    import torch

    from recbole_rlmm.checkpoint import FORMAT, load_for_inference

    try:
        state = torch.load(model_file, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not ours (RecBole's pickle, or unreadable): RecBole's path
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return None
    loaded = load_for_inference(model_file)
    return loaded.config, loaded.model, loaded.dataset, loaded.train_data, loaded.valid_data, loaded.test_data


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
