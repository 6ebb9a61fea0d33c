"""The trainer of our runner: RecBole's trainer for the model, with our choices added.

:func:`runner_trainer_class` returns RecBole's own trainer class for a model
(``recbole.utils.get_trainer``) with :class:`RunnerTrainer` mixed in. Only our runner
(:func:`recbole_rlmm.runner.run_recbole_rlmm`, the ``recbole-rlmm`` commands) and our
benchmarks build it; RecBole's trainer classes themselves are left as RecBole wrote them
(plus the repairs of :mod:`recbole_rlmm.compat`), so a user's own RecBole code keeps RecBole's
checkpoints and behaviour after ``import recbole_rlmm``.

What the mixin adds, changing nothing the trainer computes:

* checkpoints in :mod:`recbole_rlmm.checkpoint`'s pickle-free format, written atomically
  (best model, RecBole's pre-training files), read without unpickling (RecBole's pickled files
  only when trusted); a best model that cannot be written (full disk, file-size limit) is kept
  in memory and the run goes on, saying so;
* resume: a ``<best checkpoint>.resume.pth`` at the start of every epoch (removed when training
  ends), restoring weights, optimizer, epoch, early-stopping state and random states;
* the epoch number told to models with ``set_epoch`` (our models run their per-epoch work once
  per epoch with it, even when RecBole's dynamic negative sampling switches modes);
* cold items placed among warm ones before every validation evaluation, for models that score
  them (:mod:`recbole_rlmm.runner.calibration`; RLMultimodalRec with ``cold_offset: auto``);
* epoch and evaluation times and the best epoch (also without saving);
* tensorboard files where ``tensorboard_dir`` says, or none.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from recbole_rlmm import checkpoint as ckpt
from recbole_rlmm.data.io import WriteError
from recbole_rlmm.keys.values import switched_off
from recbole_rlmm.runner.calibration import calibrate_cold_offset


class _NullWriter:
    """Stands in for tensorboard's ``SummaryWriter`` when ``tensorboard_dir`` is off."""

    def __getattr__(self, name: str) -> Any:
        return lambda *_args, **_kwargs: None


def run_name(config: Any) -> str:
    """``<model>-<dataset>-<time>-<pid>-<random>``: no two runs share it, even when started in
    the same second (parallel jobs, ``compare``, the ranks of a distributed run)."""
    import uuid

    from recbole.utils import get_local_time

    return f"{config['model']}-{config['dataset']}-{get_local_time()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def tensorboard_writer(config: Any, logger: Any) -> Any:
    """``<tensorboard_dir>/<run name>`` (the log file's name, as RecBole does), or no writer."""
    target = config["tensorboard_dir"] if "tensorboard_dir" in config else "log_tensorboard"  # noqa: SIM401 (Config has no .get)
    if switched_off(target):
        return _NullWriter()
    from torch.utils.tensorboard import SummaryWriter

    handlers = [*logger.handlers, *logging.getLogger().handlers]
    names = [Path(h.baseFilename).stem for h in handlers if hasattr(h, "baseFilename")]
    return SummaryWriter(os.path.join(str(target), names[0] if names else run_name(config)))


def _recbole(name: str) -> Any:
    from recbole.trainer import trainer as trainer_module

    return getattr(trainer_module, name)


class RunnerTrainer:
    """Mixin for a RecBole trainer class (see the module docstring)."""

    def __init__(self, config: Any, model: Any) -> None:
        from recbole.trainer import trainer as trainer_module

        original = trainer_module.get_tensorboard
        trainer_module.get_tensorboard = lambda logger: tensorboard_writer(config, logger)
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
        self._pending_train_data_state: Any = None
        self._unsaved_best: dict[str, Any] | None = None  # a best model the disk refused

    # ------------------------------------------------------------------ which methods are RecBole's
    def _recbole_method(self, name: str) -> bool:
        """Whether the trainer class uses RecBole's ``Trainer``/``PretrainTrainer`` method
        ``name`` (the ones that read or write checkpoints with ``torch``); a trainer with its
        own (XGBoost, LightGBM) keeps it."""
        owner = "PretrainTrainer" if name == "save_pretrained_model" else "Trainer"
        for cls in type(self).__mro__:
            if cls is not RunnerTrainer and name in vars(cls):
                return cls is _recbole(owner)
        return False

    @property
    def resume_file(self) -> str:
        """Where the state at the start of the current epoch is kept while training."""
        return str(Path(self.saved_model_file).with_suffix(".resume.pth"))

    # ------------------------------------------------------------------ training
    def fit(self, train_data: Any, valid_data: Any = None, *args: Any, saved: bool = True, **kwargs: Any) -> Any:
        import torch

        pending = self._pending_train_data_state
        if pending is not None:  # a resumed run continues the dataloader's random stream
            generator = getattr(train_data, "generator", None)
            if isinstance(generator, torch.Generator):
                generator.set_state(pending)
            self._pending_train_data_state = None
        self._resumable = saved and (self.config["single_spec"] or self.config["local_rank"] == 0)
        out = super().fit(train_data, valid_data, *args, saved=saved, **kwargs)
        if self._resumable:
            Path(self.resume_file).unlink(missing_ok=True)  # finished: nothing to resume
        return out

    def _train_epoch(self, train_data: Any, epoch_idx: int, *args: Any, **kwargs: Any) -> Any:
        if self._resumable:
            try:
                ckpt.write_checkpoint(self.resume_file, ckpt.trainer_state(self, epoch_idx, "resume", train_data))
            except WriteError as exc:
                self.logger.warning(f"{exc} Training goes on; an interrupted run can resume only from an earlier epoch.")
        if hasattr(self.model, "set_epoch"):
            # per-epoch work of our models runs once per epoch, even when RecBole's dynamic
            # negative sampling switches the model between eval and train inside an epoch
            self.model.set_epoch(epoch_idx)
        start = time.perf_counter()
        out = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        self.train_seconds.append(time.perf_counter() - start)
        self.last_epoch = epoch_idx
        return out

    def _valid_epoch(self, valid_data: Any, *args: Any, **kwargs: Any) -> Any:
        from recbole.utils import early_stopping

        start = time.perf_counter()
        if getattr(self.model, "calibrate_cold", False):
            # cold items' place among warm ones, chosen on validation before it is scored
            calibration = calibrate_cold_offset(self.model, valid_data, self.config["valid_metric"])
            if calibration is not None:
                self.logger.info(str(calibration))
        out = super()._valid_epoch(valid_data, *args, **kwargs)
        self.valid_seconds.append(time.perf_counter() - start)
        self.checkpoint_valid_result = dict(out[1])  # stored with a best checkpoint
        improves = early_stopping(
            out[0], self.best_valid_score, self.cur_step, max_step=self.stopping_step, bigger=self.valid_metric_bigger
        )[3]
        if improves:  # the epoch RecBole's fit keeps as best, saved or not
            self.best_epoch = self.last_epoch
        return out

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, epoch: int, *args: Any, **kwargs: Any) -> Any:
        self.best_epoch = epoch
        if not self._recbole_method("_save_checkpoint"):
            return super()._save_checkpoint(epoch, *args, **kwargs)
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return None
        from recbole.utils import set_color

        verbose = kwargs.get("verbose", args[0] if args else True)
        saved_model_file = kwargs.get("saved_model_file", self.saved_model_file)
        state = ckpt.trainer_state(self, epoch, "best")
        try:
            ckpt.write_checkpoint(saved_model_file, state)
        except WriteError as exc:
            self._unsaved_best = _cloned(state)  # training goes on changing the weights
            kept = (
                f"the previous best model is intact in {saved_model_file}"
                if Path(saved_model_file).is_file()
                else "no earlier best model was saved"
            )
            self.logger.warning(
                f"{exc} The best model of epoch {epoch} is kept in memory instead ({kept}); training "
                "goes on and the test evaluation uses the model kept in memory."
            )
            return None
        self._unsaved_best = None
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")
        return None

    def save_pretrained_model(self, epoch: int, saved_model_file: str) -> None:
        if not self._recbole_method("save_pretrained_model"):
            return super().save_pretrained_model(epoch, saved_model_file)
        ckpt.write_checkpoint(saved_model_file, ckpt.trainer_state(self, epoch, "pretrained"))
        self.saved_model_file = saved_model_file
        return None

    def resume_checkpoint(self, resume_file: Any) -> None:
        ckpt.resume_trainer(self, resume_file)

    def evaluate(
        self, eval_data: Any, load_best_model: bool = True, model_file: Any = None, show_progress: bool = False
    ) -> Any:
        if load_best_model and eval_data and self._recbole_method("evaluate"):
            if model_file is None and self._unsaved_best is not None:
                state = self._unsaved_best
                source = f"memory (the best model of epoch {state['epoch']}, which could not be saved)"
                other = ckpt.decode_other_parameter(state["other_parameter"])
            else:
                source = str(model_file or self.saved_model_file)
                state = ckpt.read_checkpoint(source, map_location=self.device)
                other = state.get("other_parameter")
            self.model.load_state_dict(state["state_dict"])
            self.model.load_other_parameter(other)
            self.logger.info(f"Loading model structure and parameters from {source}")
            load_best_model = False
        return super().evaluate(eval_data, load_best_model=load_best_model, model_file=model_file, show_progress=show_progress)


def _cloned(value: Any) -> Any:
    """``value`` with every tensor copied (a CPU model's ``state_dict`` shares its storage)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: _cloned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cloned(v) for v in value]
    return value


def runner_trainer_class(model_type: Any, model_name: str) -> type:
    """RecBole's trainer class for ``model_name`` with :class:`RunnerTrainer` mixed in."""
    from recbole.utils import get_trainer

    trainer_class = get_trainer(model_type, model_name)
    return type(trainer_class.__name__, (RunnerTrainer, trainer_class), {})

