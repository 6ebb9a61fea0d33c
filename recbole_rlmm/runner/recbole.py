"""RecBole's own ``run_recbole``, ``run``, ``run_recboles`` and ``load_data_and_model``.

``recbole/quick_start/quick_start.py`` of RecBole 1.2.1, line for line (RecBole's ``Config``,
defaults, logger, FLOPs count, trainer and checkpoint format), so the same arguments give
RecBole's results to the last digit. They exist because RecBole's module imports ray 2.6.3 at
module level, which fails on a current stack; they also find our models by name, and
``load_data_and_model`` reads our runner's (pickle-free) checkpoints too.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from logging import getLogger
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.data.transform import construct_transform
from recbole.utils import get_environment, get_flops, get_trainer, init_logger, init_seed, set_color

from recbole_rlmm.checkpoint import FORMAT
from recbole_rlmm.compat import torch_loads_weights_only
from recbole_rlmm.keys.sources import external_values
from recbole_rlmm.registry import MODELS, get_model
from recbole_rlmm.runner.load import load_for_inference


def _recbole_model(model: Any, config_file_list: Any, config_dict: Any) -> Any:
    """``model`` as RecBole's ``Config`` takes it: our models as classes (RecBole looks names up
    among its own models only), anything else unchanged."""
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
    :func:`recbole_rlmm.runner.load_for_inference`, which checks its data files too."""
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
    try:
        state = torch.load(model_file, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not ours (RecBole's pickle, or unreadable): RecBole's path
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return None
    loaded = load_for_inference(model_file)
    return loaded.config, loaded.model, loaded.dataset, loaded.train_data, loaded.valid_data, loaded.test_data
