"""torch >= 2.6: RecBole's own checkpoints and pre-trained files read again (``weights_only=False``, as on torch < 2.6)."""

from __future__ import annotations

import types
from typing import Any

from recbole_rlmm.compat.stack import ModuleProxy, torch_loads_weights_only


def recbole_checkpoints(module: types.ModuleType) -> None:
    """torch >= 2.6 refuses RecBole's own checkpoints.

    Breakage: RecBole pickles its ``Config`` into every checkpoint (``Trainer._save_checkpoint``,
    ``PretrainTrainer.save_pretrained_model``) and reads them back with a bare ``torch.load``
    (``Trainer.evaluate``, ``Trainer.resume_checkpoint``, ``load_data_and_model``, and the
    models that read a pre-trained file: NeuMF, ConvNCF, NAIS, RaCT, S3Rec, KD_DAGFM). Since
    torch 2.6 ``torch.load`` defaults to ``weights_only=True`` and refuses them
    (``UnpicklingError``). Repair, on torch >= 2.6 only: inside these RecBole modules
    ``torch.load`` defaults to ``weights_only=False`` again, which is what it did on
    torch < 2.6. The cost in safety is exactly plain RecBole's on torch < 2.6: loading a
    crafted ``.pth`` runs code stored in it (docs/CHECKPOINTS.md). Global ``torch.load`` and
    RecBole's checkpoint files are unchanged.
    """
    if not torch_loads_weights_only():
        return
    if hasattr(module, "load_data_and_model"):  # recbole.quick_start.quick_start
        load_data_and_model(module)
        return
    if not isinstance(getattr(module, "torch", None), types.ModuleType) or isinstance(module.torch, ModuleProxy):
        return
    real = module.torch

    def load(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("weights_only") is None:
            kwargs["weights_only"] = False  # torch < 2.6's default, which RecBole was written for
        return real.load(*args, **kwargs)

    module.torch = ModuleProxy(real, load=load)

def load_data_and_model(quick_start: types.ModuleType) -> None:
    """RecBole's ``load_data_and_model`` imports torch inside the function: the same function,
    line for line, with ``torch.load(model_file, weights_only=False)`` (torch < 2.6's default)."""
    original = quick_start.load_data_and_model
    if getattr(original, "_rlmm", False):
        return
    q = quick_start

    def load_data_and_model(model_file: Any) -> tuple:
        import torch

        checkpoint = torch.load(model_file, weights_only=False)
        config = checkpoint["config"]
        q.init_seed(config["seed"], config["reproducibility"])
        q.init_logger(config)
        logger = q.getLogger()
        logger.info(config)

        dataset = q.create_dataset(config)
        logger.info(dataset)
        train_data, valid_data, test_data = q.data_preparation(config, dataset)

        q.init_seed(config["seed"], config["reproducibility"])
        model = q.get_model(config["model"])(config, train_data._dataset).to(config["device"])
        model.load_state_dict(checkpoint["state_dict"])
        model.load_other_parameter(checkpoint.get("other_parameter"))

        return config, model, dataset, train_data, valid_data, test_data

    load_data_and_model.__doc__ = original.__doc__
    load_data_and_model._rlmm = True  # type: ignore[attr-defined]
    quick_start.load_data_and_model = load_data_and_model
