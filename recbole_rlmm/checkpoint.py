"""Checkpoints that load without unpickling code, written so a failure cannot lose the last one.

RecBole 1.2.1 pickles its ``Config`` object into every checkpoint and loads checkpoints with
``torch.load(weights_only=False)``: loading a crafted ``.pth`` runs whatever code it holds.
A checkpoint of this package holds only tensors and JSON-compatible values, so it loads with
``torch.load(weights_only=True)`` (docs/CHECKPOINTS.md has the format):

* ``format``/``version``, ``kind`` (``best``: the best model of a run; ``resume``: the state
  at the start of an epoch, to continue an interrupted run), ``model``, ``dataset``;
* ``state_dict``, ``other_parameter`` (RecBole's extra model state; cached full-sort
  embeddings are stored as None, so scores are always recomputed from the weights);
* ``config``: the final configuration as JSON-compatible data (enums and devices tagged);
* ``data``: size and SHA-256 of every dataset and feature file the model was trained on;
* ``epoch``, ``cur_step``, ``best_valid_score``, ``best_valid_result``, ``optimizer``, and for
  ``resume`` the random states (torch, numpy, Python, the training dataloader's generator).

Files are written to a temporary file in the same folder and renamed
(:func:`recbole_rlmm.data.io.atomic_write`): a full disk or a killed process leaves the
previous checkpoint loadable, and a refused write is one line naming the file and the reason.
Our runner's trainer (:mod:`recbole_rlmm.runner.trainer`) writes this format; RecBole's own trainer,
in a user's own code, keeps writing RecBole's pickled files. Our loaders read both: RecBole's
pickled files only with an explicit ``trust_checkpoint=True`` (``--trust-checkpoint``) or
inside :func:`trusted_checkpoints`.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import math
import os
import pickle
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recbole_rlmm.config import RLMMConfig
from recbole_rlmm.data.fingerprint import changed_files, data_fingerprint
from recbole_rlmm.data.io import atomic_write
from recbole_rlmm.errors import DEFAULT_TRUST_HINT, TRUST_HINT, UserError
from recbole_rlmm.registry import get_model

FORMAT = "recbole-rlmm-checkpoint"
VERSION = 1

_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar("recbole_rlmm_trusted", default=False)


class CheckpointError(UserError):
    """A checkpoint cannot be used; the message names the file and what to do."""


def is_trusted() -> bool:
    """Whether the current code runs inside :func:`trusted_checkpoints`."""
    return _TRUSTED.get()


@contextlib.contextmanager
def trusted_checkpoints() -> Iterator[None]:
    """Inside the block, RecBole's pickled checkpoints may be loaded (their code runs)."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


# ---------------------------------------------------------------------------- values
def _encode(value: Any) -> Any:
    """A value made of dicts, lists, str, int, float, bool, None and tensors."""
    if isinstance(value, enum.Enum):
        return {"__enum__": f"{type(value).__name__}.{value.name}"}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        return _encode(value.item())
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(value))}
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_encode(v) for v in value]
    try:
        import scipy.sparse as sp

        if sp.issparse(value):
            coo = sp.coo_matrix(value)
            return {
                "__sparse__": value.format,
                "row": torch.from_numpy(coo.row.astype(np.int64)),
                "col": torch.from_numpy(coo.col.astype(np.int64)),
                "data": torch.from_numpy(coo.data),
                "shape": list(coo.shape),
            }
    except ImportError:  # pragma: no cover - scipy ships with RecBole
        pass
    if isinstance(value, torch.nn.Module):
        return {"__module__": type(value).__name__}  # its weights are in the state_dict
    return {"__repr__": repr(value)}


def _decode(value: Any, device: torch.device | None = None) -> Any:
    if isinstance(value, list):
        return [_decode(v, device) for v in value]
    if not isinstance(value, dict):
        return value
    if "__enum__" in value:
        from recbole.utils import enum_type

        cls_name, member = value["__enum__"].split(".", 1)
        return getattr(getattr(enum_type, cls_name), member)
    if "__device__" in value:
        return device if device is not None else torch.device(value["__device__"])
    if "__ndarray__" in value:
        return value["__ndarray__"].numpy()
    if "__sparse__" in value:
        import scipy.sparse as sp

        coo = sp.coo_matrix(
            (value["data"].numpy(), (value["row"].numpy(), value["col"].numpy())),
            shape=tuple(value["shape"]),
        )
        return coo.asformat(value["__sparse__"])
    if "__module__" in value or "__repr__" in value:
        return value
    return {k: _decode(v, device) for k, v in value.items()}


def _is_cache(name: str) -> bool:
    """RecBole's full-sort caches (``restore_user_e``, ...): recomputed, never stored."""
    return name.startswith("restore_")


def encode_other_parameter(other: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if other is None:
        return None
    return {k: (None if _is_cache(k) else _encode(v)) for k, v in other.items()}


def decode_other_parameter(other: Mapping[str, Any] | None, model: Any = None) -> dict[str, Any] | None:
    """RecBole's ``other_parameter`` dict; modules are taken from ``model`` (their weights
    come with the state_dict)."""
    if other is None:
        return None
    out = {}
    for key, value in other.items():
        decoded = _decode(value)
        if isinstance(decoded, dict) and "__module__" in decoded:
            if model is None or not hasattr(model, key):
                continue
            decoded = getattr(model, key)
        out[key] = decoded
    return out


# ---------------------------------------------------------------------------- config
def config_to_dict(config: Any) -> dict[str, Any]:
    """The final configuration of a RecBole ``Config`` as JSON-compatible data."""
    return {
        "model": str(config["model"]),
        "dataset": str(config["dataset"]),
        "final": _encode(dict(config.final_config_dict)),
        "parameters": _encode(dict(getattr(config, "parameters", {}) or {})),
    }


def config_from_dict(data: Mapping[str, Any], device: torch.device | None = None) -> Any:
    """A RecBole ``Config`` (our subclass) holding exactly the stored final configuration.

    ``device`` replaces the stored device (default: the stored one if usable here, else CPU).
    """
    if device is None:
        stored = str(_decode(data["final"].get("device", {"__device__": "cpu"})))
        device = torch.device(stored if stored.startswith("cpu") or torch.cuda.is_available() else "cpu")
    config = RLMMConfig.__new__(RLMMConfig)
    config.final_config_dict = _decode(dict(data["final"]), device)
    config.final_config_dict["device"] = device
    config.final_config_dict["use_gpu"] = device.type == "cuda"
    config.final_config_dict["single_spec"] = True  # a loaded model runs in one process
    config.final_config_dict["local_rank"] = 0
    config.parameters = _decode(dict(data.get("parameters", {})))
    config.model = data["model"]
    config.dataset = data["dataset"]
    config.model_class = get_model(data["model"])
    config.internal_config_dict, config.external_config_dict = {}, {}
    config.compatibility_settings()
    return config


# ---------------------------------------------------------------------------- states
def random_states(train_data: Any = None) -> dict[str, Any]:
    """torch, CUDA, numpy and Python random states (and the training dataloader's generator)."""
    np_state = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(_plain, np_state[2:])],
        "python": _encode(random.getstate()),
    }
    if torch.cuda.is_available():
        states["cuda"] = list(torch.cuda.get_rng_state_all())
    generator = getattr(train_data, "generator", None)
    if isinstance(generator, torch.Generator):
        states["train_data"] = generator.get_state()
    return states


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def restore_random_states(states: Mapping[str, Any], train_data: Any = None) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    python = states["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    generator = getattr(train_data, "generator", None)
    if "train_data" in states and isinstance(generator, torch.Generator):
        generator.set_state(states["train_data"])


def _score(value: Any) -> Any:
    value = _plain(value)
    return None if isinstance(value, float) and math.isinf(value) else value


def trainer_state(trainer: Any, epoch: int, kind: str = "best", train_data: Any = None) -> dict[str, Any]:
    """What a checkpoint of ``trainer`` holds (see the module docstring)."""
    config = trainer.config
    state: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "model": str(config["model"]),
        "dataset": str(config["dataset"]),
        "config": config_to_dict(config),
        "data": data_fingerprint(config),
        "epoch": int(epoch),
        "cur_step": int(trainer.cur_step),
        "best_valid_score": _score(trainer.best_valid_score),
        "best_valid_result": _encode(dict(getattr(trainer, "checkpoint_valid_result", None) or {})),
        "state_dict": {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()},
        "other_parameter": encode_other_parameter(trainer.model.other_parameter()),
        "optimizer": trainer.optimizer.state_dict(),
    }
    if kind == "resume":
        state["random"] = random_states(train_data)
        state["best_epoch"] = int(getattr(trainer, "best_epoch", -1))
        state["best_checkpoint"] = str(trainer.saved_model_file)
        state["best_valid_result"] = _encode(dict(trainer.best_valid_result or {}))
    return state


def write_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (a failed write leaves the old file intact)."""
    return atomic_write(path, lambda f: torch.save(dict(state), f))


@contextlib.contextmanager
def trust_hint(text: str) -> Iterator[None]:
    """Inside the block, a refused pickled checkpoint's message says ``text`` (the argument or
    setting that lets it load where the refusal is raised, e.g. ``pass --trust-checkpoint``)."""
    token = TRUST_HINT.set(text)
    try:
        yield
    finally:
        TRUST_HINT.reset(token)


def read_checkpoint(
    path: str | os.PathLike[str],
    map_location: Any = "cpu",
    trust_checkpoint: bool = False,
) -> dict[str, Any]:
    """Load a checkpoint without running code stored in it.

    Our format loads with ``weights_only=True``. A pickled file (RecBole's own checkpoints,
    or anything else) is refused unless ``trust_checkpoint`` is given or the call runs inside
    :func:`trusted_checkpoints`; then it is unpickled as RecBole does. The refusal names the
    way to let it load that exists where it is raised (:func:`trust_hint`).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (or is not a file).")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not (trust_checkpoint or _TRUSTED.get()):
            raise CheckpointError(
                f"{path} is a pickled checkpoint (RecBole's own format, or a file of unknown "
                "origin): loading it would run code stored in it. If you wrote it yourself, "
                f"{TRUST_HINT.get()}; checkpoints written by recbole-rlmm's runner need no trust."
            ) from exc
        state = torch.load(path, map_location=map_location, weights_only=False)
        if isinstance(state, dict):
            state.setdefault("format", "recbole-pickle")
        return state
    except Exception as exc:  # noqa: BLE001 - any other failure means the file is not readable
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(exc).__name__}: {str(exc)[:200]}); it may "
            "be truncated or corrupted."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} holds no recbole-rlmm checkpoint (a bare state_dict or another program's "
            "file); checkpoints are written by `recbole-rlmm run` (run_recbole_rlmm) and by "
            "RecBole's trainer (a pickled file)."
        )
    if int(state.get("version", 0)) > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer recbole-rlmm (checkpoint version {state['version']}); "
            "upgrade the package to read it."
        )
    state["other_parameter"] = decode_other_parameter(state.get("other_parameter"))
    return state


def resume_trainer(trainer: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint into a RecBole trainer to continue training (our runner's
    ``resume_checkpoint``, :mod:`recbole_rlmm.runner.trainer`).

    A ``resume`` checkpoint continues exactly where the interrupted run stopped: weights,
    optimizer, the epoch to run next, early-stopping counter, best score and result, the
    random states (the training dataloader's is applied when ``fit`` starts) and the file
    the best model goes to. A ``best`` checkpoint continues after its epoch, as in RecBole.
    """
    path = Path(path)
    state = read_checkpoint(path, map_location=trainer.device)
    if str(state["config"]["model"] if isinstance(state["config"], dict) else state["config"]["model"]).lower() != str(trainer.config["model"]).lower():
        raise CheckpointError(
            f"{path} holds a {state['config']['model']} model; this run trains "
            f"{trainer.config['model']}. Resume with the model the checkpoint was trained with."
        )
    trainer.model.load_state_dict(state["state_dict"])
    trainer.model.load_other_parameter(state.get("other_parameter"))
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.cur_step = int(state["cur_step"])
    best = state["best_valid_score"]
    if best is None:
        best = -np.inf if trainer.valid_metric_bigger else np.inf
    trainer.best_valid_score = best
    if state.get("kind") == "resume":
        trainer.start_epoch = int(state["epoch"])
        trainer.saved_model_file = state["best_checkpoint"]
        trainer.best_valid_result = _decode(state.get("best_valid_result")) or None
        trainer.best_epoch = int(state.get("best_epoch", -1))
        random_state = state["random"]
        restore_random_states(random_state)
        trainer._pending_train_data_state = random_state.get("train_data")
    else:
        trainer.start_epoch = int(state["epoch"]) + 1
        trainer.saved_model_file = str(path)
    trainer.logger.info(f"Checkpoint {path} loaded. Resume training from epoch {trainer.start_epoch}")
    return state


# ---------------------------------------------------------------------------- data of a checkpoint
def check_data(state: Mapping[str, Any], config: Any, path: Path, changed_data: str = "error") -> list[str]:
    """Compare the stored data fingerprint with the files now on disk.

    ``changed_data``: ``error`` (default) stops with a message naming the changed files (``resume``:
    the same, with the fix for a resumed run, which cannot accept changed data); ``recompute`` goes on (scores are computed from the weights and today's files; nothing
    stale is reused). Returns the names of the changed files.
    """
    stored = state.get("data")
    if not stored:
        return []
    changed = changed_files(stored, data_fingerprint(config))
    if changed and changed_data == "resume":
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise CheckpointError(
            f"{path} was trained on other data: {shown} changed since, so the run cannot continue "
            "as it was. Restore the files, or start the run again without --resume."
        )
    if changed and changed_data != "recompute":
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise CheckpointError(
            f"{path} was trained on other data: {shown} changed since. Scores would mix the "
            "trained weights with today's files. Retrain, restore the files, or accept it with "
            "--changed-data=recompute (Python: changed_data='recompute')."
        )
    return changed


def _python_hint(function: str) -> Any:
    """The refusal hint for a Python caller of ``function`` (which takes ``trust_checkpoint``),
    unless a caller (the command line) set its own."""
    if TRUST_HINT.get() != DEFAULT_TRUST_HINT:
        return contextlib.nullcontext()
    return trust_hint(f"pass trust_checkpoint=True to {function}")
