"""Interrupted runs: the message that says where the best model is, and the check that a resumed
run is the same experiment on the same data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from recbole_rlmm.checkpoint import CheckpointError, check_data, config_from_dict, read_checkpoint
from recbole_rlmm.config import VOLATILE_KEYS, changed_keys, fingerprint
from recbole_rlmm.errors import UserError


class RunInterrupted(UserError):
    """Ctrl-C during a run; the message says where the best model is and how to resume."""

def interrupted_message(trainer: Any, saved: bool) -> str:
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

def check_resumable(path: str | os.PathLike[str], config: Any) -> None:
    """The run being resumed must be the same experiment: same settings and data."""
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
