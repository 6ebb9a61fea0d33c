"""Several processes: distributed runs and DDP on CPUs (RecBole 1.2.1 assumes CUDA), and ``ensure_dir``'s race."""

from __future__ import annotations

import types
from typing import Any


def distributed_on_cpu(configurator: types.ModuleType) -> None:
    """RecBole 1.2.1 distributes only over CUDA.

    Breakage: for a multi-process run (``local_rank`` set by ``run``/``run_recboles``)
    ``Config._init_device`` asserts one GPU id per process and initialises the ``nccl`` backend
    on a CUDA device, so on a machine without CUDA the run crashes before training. Repair,
    only for a multi-process run where CUDA is not available: RecBole's ``gpu_id`` handling,
    then the ``gloo`` backend on the CPU, with RecBole's settings for the other ranks. Every
    other case (one process; CUDA available) runs RecBole's own method.
    """
    import os

    original = configurator.Config._init_device
    if getattr(original, "_rlmm", False):
        return

    def _init_device(self: Any) -> None:
        import torch

        config = self.final_config_dict
        if "local_rank" not in config or torch.cuda.is_available():
            return original(self)
        gpu_id = config["gpu_id"]
        config["gpu_id"] = ",".join(map(str, gpu_id)) if isinstance(gpu_id, tuple) else str(gpu_id)
        os.environ["CUDA_VISIBLE_DEVICES"] = config["gpu_id"]
        join_cpu_process_group(config)
        return None

    _init_device._rlmm = True  # type: ignore[attr-defined]
    configurator.Config._init_device = _init_device

def join_cpu_process_group(config: dict[str, Any]) -> None:
    """This rank joins its distributed run with the ``gloo`` backend on the CPU, with RecBole's
    settings for ranks other than 0 (``config``: a ``Config``'s ``final_config_dict``)."""
    import torch

    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(
            backend="gloo",
            rank=config["local_rank"] + config["offset"],
            world_size=config["world_size"],
            init_method=f"tcp://{config['ip']}:{config['port']}",
        )
    config["device"] = torch.device("cpu")
    config["single_spec"] = False
    if config["local_rank"] != 0:
        config["state"] = "error"
        config["show_progress"] = False
        config["verbose"] = False

def ddp_on_cpu(trainer: types.ModuleType) -> None:
    """RecBole 1.2.1 wraps the model in ``DistributedDataParallel(device_ids=[rank])``.

    Breakage: ``device_ids`` must be None for a model on the CPU, so a multi-process CPU run
    fails when the trainer is built. Repair: for a model on the CPU, ``AbstractTrainer.__init__``
    passes ``device_ids=None``; on a GPU and in one process RecBole's own method runs.
    """
    import torch

    original = trainer.AbstractTrainer.__init__
    if getattr(original, "_rlmm", False):
        return

    def __init__(self: Any, config: Any, model: Any) -> None:  # noqa: N807 - the method it replaces
        if config["single_spec"] or config["device"].type == "cuda":
            return original(self, config, model)
        self.config = config
        self.model = model
        self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.distributed_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=None)
        return None

    __init__._rlmm = True  # type: ignore[attr-defined]
    trainer.AbstractTrainer.__init__ = __init__

def _safe_ensure_dir(dir_path: str) -> None:
    """``os.makedirs(dir_path, exist_ok=True)``."""
    import os

    os.makedirs(dir_path, exist_ok=True)

def ensure_dir(module: types.ModuleType) -> None:
    """RecBole's ``ensure_dir`` races with itself.

    Breakage: ``ensure_dir`` checks ``os.path.exists`` then calls ``os.makedirs``; two
    processes starting together (the ranks of a distributed run, parallel jobs) both see the
    folder missing and one fails with ``FileExistsError: 'saved/'``. Repair: ``ensure_dir`` is
    ``os.makedirs(path, exist_ok=True)`` in every RecBole module that imported it.
    """
    if hasattr(module, "ensure_dir"):
        module.ensure_dir = _safe_ensure_dir
