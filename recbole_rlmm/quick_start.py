"""Train and evaluate any model (ours or RecBole's) with RecBole's own pipeline.

Drop-in replacements for ``recbole.quick_start`` (which imports ray 2.6.3 at module level and
breaks on a current stack), with RecBole's signatures:

* :func:`run_recbole` / :func:`run`: one process, or ``nproc`` processes on this machine and
  ``world_size`` processes over several machines (RecBole's DDP; ``gloo`` on CPUs);
* :func:`run_recboles`: the per-process entry point ``torch.multiprocessing.spawn`` calls;
* :func:`load_data_and_model`: config, model and data of a saved checkpoint.

The pipeline is RecBole's: ``create_dataset`` -> ``data_preparation`` (its dataloaders and
negative sampler) -> the model's RecBole trainer -> its full-ranking evaluator, so numbers
compare directly with RecBole's built-in models.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from logging import getLogger
from pathlib import Path
from typing import Any

from recbole.data import create_dataset, data_preparation
from recbole.utils import get_trainer, init_seed, set_color

from recbole_rlmm.checks.keys import unread_key_warnings
from recbole_rlmm.checks.run import validate_before_dataset, validate_dataset
from recbole_rlmm.config import ConfigError, create_config
from recbole_rlmm.data.cold import restrict_negatives
from recbole_rlmm.errors import UserError
from recbole_rlmm.registry import get_model


def _switched_off(value: Any) -> bool:
    """``log_dir``/``tensorboard_dir`` turned off: ``~`` in yaml, ``None`` or ``~`` on the
    command line, ``false`` or an empty value."""
    return value is None or value is False or str(value).strip().lower() in ("", "~", "none", "null", "false")


class _NullWriter:
    """Stands in for tensorboard's ``SummaryWriter`` when ``tensorboard_dir`` is off."""

    def __getattr__(self, name: str) -> Any:
        return lambda *_args, **_kwargs: None


class RunInterrupted(UserError):
    """Ctrl-C during a run; the message says where the best model is and how to resume."""


class _RunStats:
    """Mixin for a RecBole trainer class, used by our runner:

    * records epoch and evaluation times and the best epoch;
    * puts tensorboard files where ``tensorboard_dir`` says (or nowhere);
    * when saving, writes a *resume* checkpoint at the start of every epoch
      (``<best checkpoint>.resume.pth``, removed when training ends normally), so that an
      interrupted run continues with ``--resume`` exactly as if it had not stopped.

    It wraps the trainer's own methods and changes nothing they compute.
    """

    def __init__(self, config: Any, model: Any) -> None:
        from recbole.trainer import trainer as trainer_module

        original = trainer_module.get_tensorboard
        trainer_module.get_tensorboard = lambda logger: _tensorboard_writer(config, logger)
        try:
            super().__init__(config, model)
        finally:
            trainer_module.get_tensorboard = original
        self.train_seconds: list[float] = []
        self.valid_seconds: list[float] = []
        self.best_epoch: int = -1
        self.last_epoch: int = -1
        self.checkpoint_valid_result: dict[str, float] | None = None
        self._resumable = False

    @property
    def resume_file(self) -> str:
        """Where the state at the start of the current epoch is kept while training."""
        return str(Path(self.saved_model_file).with_suffix(".resume.pth"))

    def fit(self, train_data: Any, valid_data: Any = None, *args: Any, saved: bool = True, **kwargs: Any) -> Any:
        self._resumable = saved and (self.config["single_spec"] or self.config["local_rank"] == 0)
        out = super().fit(train_data, valid_data, *args, saved=saved, **kwargs)
        if self._resumable:
            Path(self.resume_file).unlink(missing_ok=True)  # finished: nothing to resume
        return out

    def _train_epoch(self, train_data: Any, epoch_idx: int, *args: Any, **kwargs: Any) -> Any:
        if self._resumable:
            from recbole_rlmm.checkpoint import trainer_state, write_checkpoint

            write_checkpoint(self.resume_file, trainer_state(self, epoch_idx, "resume", train_data))
        start = time.perf_counter()
        out = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        self.train_seconds.append(time.perf_counter() - start)
        self.last_epoch = epoch_idx
        return out

    def _valid_epoch(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = super()._valid_epoch(*args, **kwargs)
        self.valid_seconds.append(time.perf_counter() - start)
        self.checkpoint_valid_result = dict(out[1])  # stored with a best checkpoint
        return out

    def _save_checkpoint(self, epoch: int, *args: Any, **kwargs: Any) -> Any:
        self.best_epoch = epoch
        return super()._save_checkpoint(epoch, *args, **kwargs)


def _tensorboard_writer(config: Any, logger: Any) -> Any:
    """``<tensorboard_dir>/<run name>`` (the log file's name, as RecBole does), or no writer."""
    target = config["tensorboard_dir"] if "tensorboard_dir" in config else "log_tensorboard"  # noqa: SIM401 (Config has no .get)
    if _switched_off(target):
        return _NullWriter()
    from torch.utils.tensorboard import SummaryWriter

    handlers = [*logger.handlers, *logging.getLogger().handlers]
    names = [Path(h.baseFilename).stem for h in handlers if hasattr(h, "baseFilename")]
    return SummaryWriter(os.path.join(str(target), names[0] if names else _run_name(config)))


def _with_stats(trainer_class: type) -> type:
    return type(trainer_class.__name__, (_RunStats, trainer_class), {})


def _run_name(config: Any) -> str:
    """``<model>-<dataset>-<time>-<pid>-<random>``: no two runs share it, even when started in
    the same second (parallel jobs, ``compare``, the ranks of a distributed run)."""
    from recbole.utils import get_local_time

    return f"{config['model']}-{config['dataset']}-{get_local_time()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def unique_checkpoint_path(config: Any) -> str:
    """A checkpoint file name no other run can take (RecBole's ``<model>-<time>.pth`` is
    shared by two runs of one model started in the same second)."""
    return os.path.join(config["checkpoint_dir"], _run_name(config) + ".pth")


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
    console.setFormatter(
        colorlog.ColoredFormatter(
            "%(log_color)s%(asctime)-15s %(levelname)s  %(message)s",
            "%d %b %H:%M",
            log_colors=log_colors_config,
        )
    )
    if not getattr(console.stream, "isatty", lambda: False)():
        console.addFilter(RemoveColorFilter())  # no colour codes in redirected output
    handlers: list[logging.Handler] = [console]
    log_dir = config["log_dir"] if "log_dir" in config else "log/"  # noqa: SIM401 (Config has no .get)
    path = None
    if not _switched_off(log_dir):
        path = Path(log_dir) / str(config["model"]) / f"{_run_name(config)}.log"
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
) -> dict[str, Any]:
    """Train ``model`` on ``dataset`` in this process and evaluate it on the test split.

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
    # every check that can run before training does (recbole_rlmm/checks, docs/CHECKS.md):
    # key values while the config is built, files before RecBole reads them, topk once the
    # dataset is loaded, feature values while the model is built
    config = create_config(model, dataset, config_file_list, config_dict)
    if isinstance(model, type) and model.__name__ == config["model"]:
        model_class = model
    else:
        model_class = get_model(config["model"])
    validate_before_dataset(config, model_class, saved)
    init_seed(config["seed"], config["reproducibility"])
    log_file = init_run_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    for line in unread_key_warnings(user_key_sources(config, config_file_list, config_dict), config["model"]):
        logger.warning(line)
    logger.info(config)

    data = _load_dataset(config)
    logger.info(data)
    validate_dataset(config, data)
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

    trainer_class = _with_stats(get_trainer(config["MODEL_TYPE"], config["model"]))
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

    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
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
    check_data(state, config, Path(path))


def build_model(model_class: type, config: Any, train_data: Any, valid_data: Any) -> Any:
    """``model_class(config, train_data.dataset)`` on ``config['device']``, built with the
    validation interactions available to our models' content check
    (:mod:`recbole_rlmm.model.signal`); they never see the validation data otherwise."""
    from recbole_rlmm.model.signal import validation_probe

    valid = valid_data._dataset
    users, items = valid.inter_feat[valid.uid_field].numpy(), valid.inter_feat[valid.iid_field].numpy()
    with validation_probe(users, items):
        return model_class(config, train_data._dataset).to(config["device"])


def run_recbole(
    model: str | type | None = None,
    dataset: str | None = None,
    config_file_list: Sequence[str] | None = None,
    config_dict: dict[str, Any] | None = None,
    saved: bool = True,
    queue: Any = None,
    nproc: int = 1,
    world_size: int = -1,
    ip: str = "localhost",
    port: str | int = "5678",
    group_offset: int = 0,
) -> dict[str, Any] | None:
    """RecBole's ``run_recbole`` and ``run`` in one: train and test ``model`` on ``dataset``.

    With ``nproc == 1`` and ``world_size <= 0`` this process trains (see
    :func:`run_recbole_rlmm` for the result). Otherwise ``nproc`` processes are spawned on this
    machine as ranks ``group_offset .. group_offset + nproc - 1`` of ``world_size`` (default
    ``nproc``), meeting at ``ip:port``; every machine of a multi-machine run calls this with
    its own ``group_offset``. The result (of rank 0, without ``config``) is returned on the
    machine that holds rank 0, None on the others.
    """
    if nproc == 1 and world_size <= 0:
        return run_recbole_rlmm(model, dataset, config_file_list, config_dict, saved, queue)
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
    mp.spawn(run_recboles, args=(model, dataset, config_file_list, kwargs), nprocs=nproc, join=True)
    return None if queue.empty() else queue.get()


def run(
    model: str | type | None,
    dataset: str | None,
    config_file_list: Sequence[str] | None = None,
    config_dict: dict[str, Any] | None = None,
    saved: bool = True,
    nproc: int = 1,
    world_size: int = -1,
    ip: str = "localhost",
    port: str | int = "5678",
    group_offset: int = 0,
) -> dict[str, Any] | None:
    """RecBole's ``recbole.quick_start.run`` (same arguments): :func:`run_recbole`."""
    return run_recbole(
        model, dataset, config_file_list, config_dict, saved, None, nproc, world_size, ip, port, group_offset
    )


def run_recboles(rank: int, *args: Any) -> None:
    """One process of a distributed run (RecBole's signature): ``args`` are ``model,
    dataset, config_file_list, kwargs`` with ``kwargs`` holding ``config_dict`` and ``queue``."""
    kwargs = args[-1]
    if not isinstance(kwargs, dict):
        raise ValueError(f"The last argument of run_recboles should be a dict, but got {type(kwargs)}")
    kwargs = dict(kwargs)
    kwargs["config_dict"] = {**kwargs.get("config_dict", {}), "local_rank": rank}
    run_recbole_rlmm(*args[:3], **kwargs)


def load_data_and_model(model_file: str | os.PathLike[str], trust_checkpoint: bool = False) -> tuple:
    """RecBole's ``load_data_and_model``: ``(config, model, dataset, train_data, valid_data,
    test_data)`` of a saved checkpoint, its model in evaluation mode.

    Checkpoints written by this package load without unpickling anything. A RecBole
    checkpoint (a pickled ``Config``) loads only with ``trust_checkpoint=True``: unpickling
    runs whatever code the file holds, so pass it only for files you wrote yourself.
    """
    from recbole_rlmm.checkpoint import load_for_inference

    loaded = load_for_inference(model_file, trust_checkpoint=trust_checkpoint)
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
