"""Optuna behind ``recbole-rlmm tune``: the study's storage, sampler and pruner, resuming
after a crash, the trials table and the history plot.

Optuna is optional (``pip install 'recbole-rlmm[tune]'``): it is imported when a study is
opened, and its absence is one line.

Resuming. The study lives in a database (SQLite in the output folder by default), so a
killed or stopped ``tune`` finds its finished trials there. A trial that was running when
its process died is failed and its parameters are queued again: at once when the process
ran on this machine (its pid is gone), through Optuna's heartbeat (``grace_period``) when it
ran elsewhere. A trial stopped with Ctrl-C is queued again too.

Seeds. The sampler draws trial ``i`` (counting the trials that did not fail) with a seed made
from ``--seed`` and ``i`` only, from the history of the trials before it; so a resumed study
draws the same trials as an uninterrupted one.
"""

from __future__ import annotations

import inspect
import io
import itertools
import json
import os
import random
import socket
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recbole_rlmm.data.io import atomic_write
from recbole_rlmm.experiment.common import ExperimentError
from recbole_rlmm.experiment.space import Param, decode

#: ``--sampler`` choices.
SAMPLERS: tuple[str, ...] = ("tpe", "random", "grid")
#: ``--pruner`` choices.
PRUNERS: tuple[str, ...] = ("median", "none")
#: Seconds between the heartbeats of a running trial, and after which a silent one is failed
#: and queued again (a process on another machine that died).
HEARTBEAT_INTERVAL = 30
GRACE_PERIOD = 120
#: The study's record of what it searches (a later call must match it).
RECORD_ATTR = "recbole_rlmm"
HOST = socket.gethostname()


def optuna_module() -> Any:
    """``optuna``, or one line saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ExperimentError(
            "recbole-rlmm tune needs optuna, which is not installed: pip install 'recbole-rlmm[tune]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # tune prints its own progress
    return optuna


def default_storage(out: Path, stem: str) -> str:
    """``sqlite:///<out>/<stem>.db``."""
    return f"sqlite:///{(out / f'{stem}.db').resolve()}"


def open_storage(url: str) -> Any:
    """An Optuna ``RDBStorage`` with heartbeats (stale trials of dead processes are failed and
    queued again); SQLite waits up to a minute for a lock held by another process."""
    optuna = optuna_module()
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        Path(url.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    # Optuna 4.9 renamed failed_trial_callback to heartbeat_stale_trial_callback
    params = inspect.signature(optuna.storages.RDBStorage).parameters
    name = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params else "failed_trial_callback"
    kwargs[name] = requeue
    last: Exception | None = None
    for attempt in range(5):  # processes creating one new database at once may collide
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # heartbeats are an experimental argument
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD, **kwargs
                )
        except Exception as exc:  # a bad URL, a missing driver, a refused connection
            last = exc
            time.sleep(0.2 + 0.3 * attempt + random.random() / 5)
    raise ExperimentError(f"--storage {url}: {last.__class__.__name__}: {last}".splitlines()[0])


def derived_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th trial (independent streams for every index)."""
    import numpy as np

    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, index]).generate_state(1)[0])


def trial_index(study: Any, number: int) -> int:
    """How many trials before trial ``number`` did not fail (a retried trial takes the index
    of the one it replaces)."""
    optuna = optuna_module()
    failed = optuna.trial.TrialState.FAIL
    return sum(1 for t in study.get_trials(deepcopy=False) if t.number < number and t.state != failed)


def grid_order(params: Mapping[str, Param], seed: int) -> list[dict[str, Any]]:
    """Every combination of an all-list space (values as Optuna stores them), in an order
    shuffled by ``seed``."""
    combos = [dict(zip(params, c)) for c in itertools.product(*(p.encoded_choices() for p in params.values()))]
    random.Random(seed).shuffle(combos)
    return combos


def tpe_startup_trials(total: int) -> int:
    """Trials TPE draws at random before it models the history: Optuna's 10 for budgets of 30
    and more, a third of a smaller budget (at least 3), so that a 10-trial study is searched by
    TPE for 7 of its trials instead of being random search."""
    return min(10, max(3, total // 3))


def make_sampler(kind: str, seed: int, params: Mapping[str, Param], total: int) -> Any:
    """``tpe`` (default), ``random`` or ``grid`` (lists only), reseeded for every trial from
    ``seed`` and the trial's index (see the module docstring). ``tpe`` draws the first
    :func:`tpe_startup_trials` of the study's ``total`` at random. ``grid``: trial ``i`` takes
    the ``i``-th combination of :func:`grid_order`, so processes sharing a study split the
    grid."""
    optuna = optuna_module()
    samplers = optuna.samplers
    grid: list[dict[str, Any]] = []
    if kind == "grid":
        bad = [p.name for p in params.values() if p.kind != "categorical"]
        if bad:
            raise ExperimentError(
                f"--sampler grid needs lists of values, but {', '.join(bad)} is a range; "
                "write it as a list or use --sampler tpe"
            )
        grid = grid_order(params, seed)

    def build(index: int) -> Any:
        trial_seed = derived_seed(seed, index)
        if kind == "tpe":
            return samplers.TPESampler(seed=trial_seed, n_startup_trials=tpe_startup_trials(total))
        return samplers.RandomSampler(seed=trial_seed)

    class PerTrialSeed(samplers.BaseSampler):
        """Delegates to a sampler made for the trial at hand, seeded by its index."""

        def __init__(self) -> None:
            self._current: tuple[int, int, Any] | None = None

        def _inner(self, study: Any, trial: Any) -> tuple[int, Any]:
            if self._current is None or self._current[0] != trial.number:
                index = trial_index(study, trial.number)
                self._current = (trial.number, index, build(index))
            return self._current[1], self._current[2]

        def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
            return self._inner(study, trial)[1].infer_relative_search_space(study, trial)

        def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
            return self._inner(study, trial)[1].sample_relative(study, trial, search_space)

        def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
            index, inner = self._inner(study, trial)
            if grid:
                return grid[index % len(grid)][name]
            return inner.sample_independent(study, trial, name, distribution)

        def before_trial(self, study: Any, trial: Any) -> None:
            self._inner(study, trial)[1].before_trial(study, trial)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            self._inner(study, trial)[1].after_trial(study, trial, state, values)

        def reseed_rng(self) -> None:  # the seed of every trial is fixed by its index
            return None

    return PerTrialSeed()


def make_pruner(kind: str, startup_trials: int, warmup_steps: int) -> Any:
    """``median``: stop a trial whose best validation score so far is worse than the median of
    earlier trials at the same epoch (after ``startup_trials`` finished trials and
    ``warmup_steps`` epochs); ``none``: never."""
    optuna = optuna_module()
    if kind == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps)


def suggest(trial: Any, param: Param) -> Any:
    """The trial's value of ``param``."""
    if param.kind == "categorical":
        return decode(trial.suggest_categorical(param.name, param.encoded_choices()))
    if param.kind == "int":
        return trial.suggest_int(param.name, param.low, param.high, step=param.step or 1, log=param.log)
    return trial.suggest_float(param.name, param.low, param.high, step=param.step, log=param.log)


# --------------------------------------------------------------------------- resuming


def requeue(study: Any, trial: Any) -> bool:
    """Queue ``trial``'s parameters again (a trial whose process died or was stopped), once;
    whether it was queued now."""
    if trial.number in {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}:
        return False
    if trial.system_attrs.get("fixed_params"):
        # a queued trial (the starting configuration, an earlier retry): all its values were
        # fixed before it began, and the retry gets them again
        values = dict(trial.system_attrs["fixed_params"])
    elif "params" in trial.user_attrs:  # recorded once every value is drawn
        values = dict(trial.params)
    else:
        # stopped while drawing: fixing the values drawn so far would change which draw of the
        # trial's seed each other value gets, so none is queued; the retry takes the trial's
        # index, hence its seed, and draws them all again, as the uninterrupted study did
        values = {}
    attrs = {"retry_of": trial.number}
    if trial.user_attrs.get("starting_config"):
        attrs["starting_config"] = True
    study.enqueue_trial(values, user_attrs=attrs, skip_if_exists=False)
    return True


def queue_starting_config(study: Any, params: Mapping[str, Param], config: Any) -> tuple[dict[str, Any], list[str]]:
    """Queue the configuration a run without tuning would train (the model's defaults with the
    config files and overrides) as the study's first trial, so that tuning starts from it and
    can only select something better on validation. Returns its values and the keys whose
    starting value the space cannot hold (then nothing is queued and trial 0 is drawn)."""
    values = {key: config[key] for key in params}
    outside = [key for key, p in params.items() if not p.holds(values[key])]
    if not outside:
        study.enqueue_trial(
            {key: p.stored(values[key]) for key, p in params.items()},
            user_attrs={"starting_config": True},
            skip_if_exists=True,
        )
    return values, outside


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def recover(study: Any) -> list[int]:
    """Fail the trials left running by dead processes of this machine, and queue again those
    and the trials stopped with Ctrl-C; returns the numbers of the trials queued again."""
    optuna = optuna_module()
    state = optuna.trial.TrialState
    storage = study._storage
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental in Optuna 3-4
        optuna.storages.fail_stale_trials(study)  # other machines' (heartbeat expired): requeue()
    queued = []
    for t in study.get_trials(deepcopy=False):
        if t.state == state.RUNNING:
            host, pid = t.user_attrs.get("host"), t.user_attrs.get("pid")
            if host != HOST or pid is None or _pid_alive(int(pid)):
                continue  # alive, or on another machine (the heartbeat's grace period decides)
            storage.set_trial_user_attr(t._trial_id, "interrupted", "its process died")
            storage.set_trial_state_values(t._trial_id, state=state.FAIL)
        elif not (t.state == state.FAIL and t.user_attrs.get("interrupted")):
            continue
        if requeue(study, t):
            queued.append(t.number)
    return queued


# --------------------------------------------------------------------------- reading the study


def counted(study: Any, exclude: int | None = None) -> int:
    """Trials that count towards ``--trials``: finished (complete or pruned) or running
    (another process's), except ``exclude``."""
    state = optuna_module().trial.TrialState
    live = (state.COMPLETE, state.PRUNED, state.RUNNING)
    return sum(1 for t in study.get_trials(deepcopy=False, states=live) if t.number != exclude)


def finished(study: Any) -> list[Any]:
    """Complete and pruned trials, by number."""
    state = optuna_module().trial.TrialState
    return study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED))


def best_trial(study: Any) -> Any | None:
    """The complete trial with the best validation score (the first on ties), or None."""
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def check_record(study: Any, record: Mapping[str, Any], storage: str, name: str) -> None:
    """A study made by an earlier call must search the same thing; a new one gets ``record``."""
    stored = study.user_attrs.get(RECORD_ATTR)
    current = json.loads(json.dumps(record, default=str))
    if stored is None:
        study.set_user_attr(RECORD_ATTR, current)
        return
    diff = [k for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k)]
    if diff:
        raise ExperimentError(
            f"study {name!r} in {storage} was made with other settings ({', '.join(diff)}: "
            f"{json.dumps({k: stored.get(k) for k in diff}, default=str)[:300]}); use another "
            "--out, --study-name or --storage, or delete that study to start again"
        )


def history_plot(
    trials: Sequence[Any], path: Path, title: str, metric: str, bigger: bool
) -> str | None:
    """The study's history: every finished trial's validation score (pruned trials at their
    last reported epoch) and the best so far; None when written, else why not."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return (
            f"{path.name} skipped: matplotlib is not installed "
            "(pip install 'recbole-rlmm[plot]' installs the plot extra)"
        )
    state = optuna_module().trial.TrialState
    fig = Figure(figsize=(7.0, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    done = [(t.number, t.value) for t in trials if t.state == state.COMPLETE and t.value is not None]
    pruned = [
        (t.number, t.intermediate_values[max(t.intermediate_values)])
        for t in trials
        if t.state == state.PRUNED and t.intermediate_values
    ]
    if done:
        ax.scatter(*zip(*done), label="complete", color="tab:blue", zorder=3)
        best, xs, ys = None, [], []
        for number, value in done:
            if best is None or (value > best if bigger else value < best):
                best = value
            xs.append(number)
            ys.append(best)
        ax.step(xs, ys, where="post", color="tab:red", label="best so far")
    if pruned:
        ax.scatter(*zip(*pruned), marker="x", color="tab:gray", label="pruned (last epoch)", zorder=3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if done or pruned:
        ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return None


def state_name(trial: Any) -> str:
    """``complete``, ``pruned``, ``fail``..."""
    return str(trial.state.name).lower()

