"""``recbole-rlmm tune``: an Optuna study, selected on the validation metric only (docs/TUNE.md).

The search space is a yaml file per model (:mod:`.space`; shipped defaults for our models
and RecBole's LightGCN, a ``--space`` file replaces them). Every trial trains with
:func:`recbole_rlmm.runner.run_recbole_rlmm`; each validation (RecBole's ``eval_step``) is
reported to the trial, and a trial the pruner finds hopeless stops there (``pruned``). A
complete trial's best checkpoint is reloaded for its test evaluation and deleted afterwards.
The winner is the complete trial with the best ``best_valid_score``; test metrics are
recorded for information only and never take part in the choice.

The study lives in ``--storage`` (default: SQLite, ``<out>/<model>-<dataset>.db``), so a
killed or stopped call resumes, ``--trials N`` is the study's total (a second identical call
trains nothing), and several processes or machines given one storage URL split the trials
(:mod:`.study`). Written to ``--out``:

* ``<model>-<dataset>.yaml``: the chosen values, usable with ``compare --model-config`` and
  ``run --config_files``;
* ``<model>-<dataset>-trials.csv``: every finished trial's values, state, validation and test
  metrics;
* ``<model>-<dataset>-history.png``: validation score per trial and the best so far.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from recbole_rlmm.data.io import jsonable, write_text_atomic
from recbole_rlmm.experiment.common import (
    ExperimentError,
    Progress,
    build_config,
    isolated_argv,
    parse_overrides,
    run_summary,
    set_threads,
)
from recbole_rlmm.experiment.space import Param, check_space, load_space
from recbole_rlmm.experiment.study import (
    HOST,
    PRUNERS,
    SAMPLERS,
    best_trial,
    check_record,
    counted,
    default_storage,
    finished,
    history_plot,
    make_pruner,
    make_sampler,
    open_storage,
    optuna_module,
    queue_starting_config,
    recover,
    state_name,
    suggest,
)
from recbole_rlmm.keys.sources import split_config_files
from recbole_rlmm.registry import get_model
from recbole_rlmm.runner import RunInterrupted, run_recbole_rlmm
from recbole_rlmm.runner.checks import validate_data

#: ``--trials`` when not given (``grid``: the grid's size).
DEFAULT_TRIALS = 20
#: ``--first-trial`` choices: the untuned configuration first, or every trial drawn.
FIRST_TRIALS: tuple[str, ...] = ("config", "drawn")


class _Surplus(Exception):
    """This trial would go past ``--trials`` (another process started one at the same time)."""


def _cell(value: Any) -> Any:
    """A value for a CSV cell: lists and dicts as JSON."""
    return json.dumps(jsonable(value)) if isinstance(value, (list, dict, tuple)) else value


#: the columns of a trials table that are not the trial's values of the search space (those come
#: between ``state`` and ``valid_score``) nor its ``valid_*`` / ``test_*`` metrics
TRIAL_COLUMNS = ("trial", "state", "valid_score", "selected", "starting_config", "best_epoch", "epochs_run", "seconds")


def trials_table(trials: Sequence[Any], best: int | None) -> pd.DataFrame:
    """One row per finished trial: its number, state, values, ``valid_score`` (the selection
    criterion; a pruned trial's last reported one), whether it was selected, best epoch,
    time, then every ``valid_*`` and (information only) ``test_*`` metric."""
    rows = []
    for t in trials:
        attrs = t.user_attrs
        row: dict[str, Any] = {"trial": t.number, "state": state_name(t)}
        row.update({k: _cell(v) for k, v in (attrs.get("params") or {}).items()})
        score = t.value
        if score is None and t.intermediate_values:
            score = t.intermediate_values[max(t.intermediate_values)]
        row["valid_score"] = score
        row["selected"] = t.number == best
        row["starting_config"] = bool(attrs.get("starting_config"))
        row["best_epoch"] = attrs.get("best_epoch")
        row["epochs_run"] = attrs.get("epochs_run")
        row["seconds"] = round(float(attrs.get("seconds") or 0.0), 3)
        row.update({f"valid_{k}": v for k, v in (attrs.get("valid_result") or {}).items()})
        row.update({f"test_{k}": v for k, v in (attrs.get("test_result") or {}).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def command_line(
    model: str,
    dataset: str,
    space: str | None,
    options: Mapping[str, Any],
    config_files: Sequence[str],
    out: Path,
    overrides: Mapping[str, Any],
) -> str:
    """The ``recbole-rlmm tune`` command that reproduces (or resumes) a study."""
    args = ["recbole-rlmm", "tune", "--model", model, "--dataset", dataset]
    if space is not None:
        args += ["--space", space]
    for flag, value in options.items():
        if value is not None:
            args += [f"--{flag}", str(value)]
    if config_files:
        args += ["--config_files", *config_files]
    if overrides:
        args += ["--set", *(f"{k}={json.dumps(jsonable(v))}" for k, v in overrides.items())]
    args += ["--out", str(out)]
    return shlex.join(args)


def tuned_yaml(result: Mapping[str, Any], params: Mapping[str, Param]) -> str:
    """The tuned config: a comment header (score, study, command) and the chosen values."""
    direction = "higher" if result["valid_score_bigger"] else "lower"
    header = [
        f"recbole-rlmm tune: {result['model']} on {result['dataset']}, {result['finished']} "
        f"finished trial(s) ({result['pruned']} pruned), {result['sampler']} sampler",
        f"selected by validation {result['valid_metric']} = {result['best_valid_score']:.4f} "
        f"({direction} is better), trial {result['best_trial']}; test metrics were not used",
        f"training seed {result['seed']}; fixed overrides: {json.dumps(jsonable(result['overrides']))}",
        f"study {result['study_name']} in {result['storage']}",
        f"command: {result['command']}",
        f"written {time.strftime('%Y-%m-%d %H:%M:%S')}",
        "use: recbole-rlmm compare --model-config "
        f"{result['model']}=<this file> ...  or  recbole-rlmm run --config_files <this file>",
        f"search space ({result['space']}):",
        *(f"  {k}: {json.dumps(jsonable(p.describe()))}" for k, p in params.items()),
    ]
    body = yaml.safe_dump(jsonable(result["best_params"]), sort_keys=False, default_flow_style=False)
    return "".join(f"# {line}\n" for line in header) + body


def _short(value: Any) -> Any:
    """A float with 4 significant digits for progress lines (the yaml and csv keep all)."""
    return f"{value:.4g}" if isinstance(value, float) else value


def _file_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


def _remove_dead_checkpoints(root: Path, stem: str) -> None:
    """Trial checkpoint folders left by killed processes of this machine."""
    if not root.is_dir():
        return
    for folder in root.glob(f"{stem}-trial-*"):
        parts = folder.name.split("@")
        if len(parts) < 3 or parts[1] != HOST:
            continue
        try:
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def tune(
    model: str,
    dataset: str,
    space: str | Path | Mapping[str, Any] | None = None,
    trials: int | None = None,
    seed: int | None = None,
    config_files: Sequence[str] | str | None = None,
    out: str | Path = "tuned",
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    sampler: str = "tpe",
    pruner: str = "median",
    prune_startup_trials: int = 3,
    prune_warmup_epochs: int | None = None,
    first_trial: str = "config",
    storage: str | None = None,
    study_name: str | None = None,
    threads: int | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or resume) an Optuna study of ``model`` on ``dataset``; keep the best validation score.

    Args:
        model: our model or a RecBole built-in.
        dataset: dataset folder name under ``data_path``.
        space: a yaml file (or mapping) of config key -> list of values or range; None: the
            model's shipped space.
        trials: the study's total number of finished trials (complete or pruned); a call
            finding that many trains nothing. Default 20 (``grid``: the grid's size).
        seed: seeds the sampler (trial ``i``'s draw) and every trial's training; default:
            the config's ``seed``.
        config_files: yaml files applied to every trial.
        out: output folder (tuned yaml, trials csv, history plot, default SQLite study).
        overrides: fixed config values for every trial (``{"epochs": 50}`` / ``["epochs=50"]``).
        sampler: ``tpe``, ``random`` or ``grid``.
        pruner: ``median`` or ``none``; ``prune_startup_trials`` finished trials and
            ``prune_warmup_epochs`` epochs before a trial can be pruned (default: the
            config's patience, ``stopping_step`` x ``eval_step`` epochs, so that pruning never
            acts before early stopping could).
        first_trial: ``config`` (default): a new study's first trial is the configuration a
            run without tuning trains (the model's defaults with ``config_files`` and
            ``overrides``), so the selected one is never worse than it on validation; trial 0
            is drawn instead when a searched key's starting value lies outside the space.
            ``drawn``: every trial is drawn by the sampler.
        storage: an Optuna storage URL (``sqlite:///...``, ``postgresql://...``) to share
            one study between processes or machines; default SQLite in ``out``.
        study_name: default ``<model>-<dataset>``.
        threads: if given, ``torch.set_num_threads(threads)``.
        echo: where progress lines go.

    Returns:
        ``model``, ``dataset``, ``sampler``, ``trials`` (the CSV's rows as dicts),
        ``best_trial``, ``best_params``, ``best_valid_score``, ``valid_metric``,
        ``valid_score_bigger``, ``seed``, ``overrides``, ``command``, ``storage``,
        ``study_name``, ``ran`` (trials trained by this call), ``finished``, ``pruned``,
        ``yaml``, ``trials_csv`` and ``history_png`` (the written paths).
    """
    out = Path(out)
    if sampler not in SAMPLERS:
        raise ExperimentError(f"--sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise ExperimentError(f"--pruner {pruner!r}: choose one of {', '.join(PRUNERS)}")
    if trials is not None and trials < 1:
        raise ExperimentError(f"--trials must be at least 1, not {trials}")
    if first_trial not in FIRST_TRIALS:
        raise ExperimentError(f"--first-trial {first_trial!r}: choose one of {', '.join(FIRST_TRIALS)}")
    optuna = optuna_module()  # missing: one line, before anything else
    files = split_config_files(config_files)
    fixed = parse_overrides(overrides)
    if "seed" in fixed:
        raise ExperimentError("set the seed with --seed, not with an override")
    if space is not None:  # a given file is read first: a wrong path is the first thing said
        params, where = load_space(space, model)
    base = build_config(model, dataset, files, fixed)
    name = str(base["model"])
    if space is None:
        params, where = load_space(None, name)
    clash = sorted(set(params) & set(fixed))
    if clash:
        raise ExperimentError(
            f"{', '.join(clash)} both searched (search space {where}) and fixed by an override; "
            "drop one of them"
        )
    check_space(params, name, where, base.final_config_dict)
    validate_data(base, get_model(name))  # the files, before any trial trains
    grid_size = 1
    for p in params.values():
        grid_size *= len(p.choices) if p.kind == "categorical" else 0
    total = trials or (grid_size if sampler == "grid" else DEFAULT_TRIALS)
    if sampler != "grid" and grid_size and total > grid_size:
        echo(
            f"warning: the space has only {grid_size} combinations and {total} trials will repeat "
            "some; --sampler grid tries each once"
        )
    if sampler == "grid" and total > grid_size:
        echo(f"--trials {total} is more than the grid's {grid_size} combinations: {grid_size} trials")
        total = grid_size
    train_seed = int(base["seed"]) if seed is None else int(seed)
    bigger = bool(base["valid_metric_bigger"])
    if prune_warmup_epochs is None:
        prune_warmup_epochs = int(base["stopping_step"]) * int(base["eval_step"])
    elif prune_warmup_epochs < 0:
        raise ExperimentError(f"--prune-warmup-epochs must be 0 or more, not {prune_warmup_epochs}")
    metric = str(base["valid_metric"]).lower()
    set_threads(threads)

    stem = f"{name}-{base['dataset']}"
    study_name = study_name or stem
    url = storage or default_storage(out, stem)
    record = {
        "model": name,
        "dataset": str(base["dataset"]),
        "space": {k: p.describe() for k, p in params.items()},
        "sampler": sampler,
        "seed": train_seed,
        "pruner": [pruner, prune_startup_trials, prune_warmup_epochs],
        "overrides": jsonable(fixed),
        "config_files": [_file_digest(f) for f in files],
        "valid_metric": metric,
    }
    chooser = make_sampler(sampler, train_seed, params, total)  # refuses a grid of ranges
    study = optuna.create_study(
        storage=open_storage(url),
        study_name=study_name,
        direction="maximize" if bigger else "minimize",
        sampler=chooser,
        pruner=make_pruner(pruner, prune_startup_trials, prune_warmup_epochs),
        load_if_exists=True,
    )
    check_record(study, record, url, study_name)
    ckpt_root = out / ".checkpoints"
    _remove_dead_checkpoints(ckpt_root, stem)
    queued = recover(study)
    new_study = not study.get_trials(deepcopy=False)
    done_before = len(finished(study))
    echo(
        f"tuning {name} on {base['dataset']}: study {study_name!r} in {url}, {sampler} sampler, "
        f"{total} trials in all ({done_before} finished earlier), selected by validation {metric}"
        + (
            f"; a trial can be pruned from epoch {prune_warmup_epochs} on, once {prune_startup_trials} "
            "trials have finished"
            if pruner == "median"
            else ""
        )
    )
    if queued:
        echo(f"trial(s) {', '.join(map(str, queued))} stopped before finishing: their values are tried again")
    if new_study and first_trial == "config" and sampler != "grid":
        start, outside = queue_starting_config(study, params, base)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in start.items())
        if outside:
            echo(
                f"trial 0 is drawn: the starting value of {', '.join(f'{k} ({start[k]!r})' for k in outside)} "
                "lies outside the search space, so the untuned configuration cannot be its first trial"
            )
        else:
            echo(f"trial 0 is the untuned configuration ({shown}); the others are drawn by the sampler")

    progress = Progress(total, max(total - counted(study), 0), echo)
    mine: list[int] = []

    def objective(trial: Any) -> float:
        if counted(study, exclude=trial.number) >= total:
            trial.set_user_attr("surplus", True)
            raise _Surplus(f"the study already has {total} trials")
        trial.set_user_attr("host", HOST)
        trial.set_user_attr("pid", os.getpid())
        values = {key: suggest(trial, p) for key, p in params.items()}
        trial.set_user_attr("params", jsonable(values))
        mine.append(trial.number)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
        index = len(finished(study)) + 1
        started = progress.begin(index, f"trial {trial.number}: {shown}")
        ckpt_root.mkdir(parents=True, exist_ok=True)
        ckpt = Path(tempfile.mkdtemp(prefix=f"{stem}-trial-{trial.number}@{HOST}@{os.getpid()}@", dir=ckpt_root))

        def report(epoch: int, score: float) -> None:
            trial.report(float(score), int(epoch))
            trial.set_user_attr("epochs_run", int(epoch) + 1)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        try:
            with isolated_argv():
                result = run_recbole_rlmm(
                    model=name,
                    dataset=dataset,
                    config_file_list=files,
                    config_dict={**fixed, **values, "seed": train_seed, "checkpoint_dir": str(ckpt)},
                    saved=True,
                    callback_fn=report,
                )
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", progress.end(started))
            raise
        except (KeyboardInterrupt, RunInterrupted):
            trial.set_user_attr("interrupted", "stopped")  # tried again by the next call
            raise
        finally:
            shutil.rmtree(ckpt, ignore_errors=True)
        summary = run_summary(result)
        for key, value in (
            ("valid_result", summary["best_valid_result"]),
            ("test_result", summary["test_result"]),  # information only, never selected on
            ("best_epoch", summary["best_epoch"]),
            ("epochs_run", summary["epochs_run"]),
            ("seconds", progress.end(started)),
        ):
            trial.set_user_attr(key, value)
        return float(summary["best_valid_score"])

    def better(a: float, b: float) -> bool:
        return a > b if bigger else a < b

    while True:
        queued = recover(study)  # trials of processes that died meanwhile (other machines too)
        if queued:
            echo(f"trial(s) {', '.join(map(str, queued))} stopped before finishing: their values are tried again")
        if counted(study) >= total:
            break
        before = best_trial(study)
        count = len(mine)
        study.optimize(objective, n_trials=1, catch=(_Surplus,), gc_after_trial=False)
        if len(mine) == count:
            continue  # a surplus trial: the loop condition ends it
        t = study.get_trials(deepcopy=False)[mine[-1]]
        if state_name(t) == "pruned":
            last = max(t.intermediate_values) if t.intermediate_values else None
            score = t.intermediate_values.get(last, float("nan"))
            line = f"    pruned at epoch {last}: valid {metric} {score:.4f}, worse than earlier trials there"
        else:
            line = f"    valid {metric} {t.value:.4f}"
        improved = state_name(t) == "complete" and (before is None or better(t.value, before.value))
        best = t if improved else before
        if best is not None:
            line += f" (best so far {best.value:.4f}, trial {best.number})"
        echo(line)
    if ckpt_root.is_dir() and not any(ckpt_root.iterdir()):
        ckpt_root.rmdir()

    done = finished(study)
    best = best_trial(study)
    if best is None:
        raise ExperimentError(
            f"study {study_name!r} has no complete trial ({len(done)} pruned): nothing to select; "
            "raise --trials or use --pruner none"
        )
    options = {
        "trials": trials,
        "seed": seed,
        "sampler": None if sampler == "tpe" else sampler,
        "pruner": None if pruner == "median" else pruner,
        "first-trial": None if first_trial == "config" else first_trial,
        "storage": storage,
        "study-name": None if study_name == stem else study_name,
    }
    table = trials_table(done, best.number)
    result = {
        "model": name,
        "dataset": str(base["dataset"]),
        "sampler": sampler,
        "space": where,
        "trials": table.to_dict(orient="records"),
        "best_trial": best.number,
        "best_params": dict(best.user_attrs["params"]),
        "best_valid_score": float(best.value),
        "valid_metric": metric,
        "valid_score_bigger": bigger,
        "seed": train_seed,
        "overrides": fixed,
        "command": command_line(name, dataset, where if space is not None else None, options, files, out, fixed),
        "storage": url,
        "study_name": study_name,
        "ran": len(mine),
        "finished": len(done),
        "pruned": sum(state_name(t) == "pruned" for t in done),
        "yaml": str(out / f"{stem}.yaml"),
        "trials_csv": str(out / f"{stem}-trials.csv"),
        "history_png": str(out / f"{stem}-history.png"),
    }
    write_text_atomic(result["trials_csv"], table.to_csv(index=False))
    write_text_atomic(result["yaml"], tuned_yaml(result, params))
    skipped = history_plot(
        done, Path(result["history_png"]), f"{name} on {base['dataset']}: {len(done)} trials", metric, bigger
    )
    if skipped:
        echo(skipped)
    echo(
        f"best: trial {best.number} ({', '.join(f'{k}={_short(v)}' for k, v in result['best_params'].items())}), "
        f"valid {metric} {result['best_valid_score']:.4f}; {result['ran']} trial(s) trained now, "
        f"{result['finished']} finished ({result['pruned']} pruned); wrote {result['yaml']}, "
        f"{result['trials_csv']}" + ("" if skipped else f", {result['history_png']}")
    )
    return result
