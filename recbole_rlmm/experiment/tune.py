"""``recbole-rlmm tune``: grid or seeded random search, selected on the validation metric only.

``space.yaml`` maps config keys to lists of values. Every combination (grid search), or
``--trials N`` of them drawn without replacement with ``--seed`` (random search), is trained
with :func:`recbole_rlmm.runner.run_recbole_rlmm`; the best checkpoint of each trial
is reloaded for its test evaluation and deleted afterwards. The winner is the trial with
the best ``best_valid_score``; test metrics are recorded in the trials table for
information only and never take part in the choice. Written to ``--out``:

* ``<model>-<dataset>.yaml``: the chosen values, usable with ``compare --model-config`` and
  ``run --config_files``;
* ``<model>-<dataset>-trials.csv``: every trial's values, validation and test metrics.
"""

from __future__ import annotations

import itertools
import json
import math
import random
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
    FAIR_KEYS,
    ExperimentError,
    Progress,
    build_config,
    isolated_argv,
    parse_overrides,
    run_summary,
    score_key,
    set_threads,
)
from recbole_rlmm.keys.sources import read_yaml, split_config_files
from recbole_rlmm.keys.values import check_values
from recbole_rlmm.registry import get_model
from recbole_rlmm.runner import run_recbole_rlmm
from recbole_rlmm.runner.checks import validate_data

#: Keys a search space may not contain, and why.
RESERVED_KEYS: dict[str, str] = {
    "model": "the model is given with --model",
    "dataset": "the dataset is given with --dataset",
    "seed": "the training seed is given with --seed",
    "checkpoint_dir": "tune manages the trial checkpoints itself",
    **{
        key: "compare keeps it identical for every model (split, sampler, evaluator, schedule)"
        for key in FAIR_KEYS
    },
}


def load_space(space: str | Path | Mapping[str, Any]) -> dict[str, list[Any]]:
    """Read a search space: a yaml file (or a mapping) of config key -> non-empty list."""
    data = read_yaml(space, "search space", "check the path given to --space") if isinstance(space, (str, Path)) else space
    if not isinstance(data, Mapping) or not data:
        raise ExperimentError(f"search space {space} must map config keys to lists of values")
    out: dict[str, list[Any]] = {}
    for key, values in data.items():
        if key in RESERVED_KEYS:
            raise ExperimentError(f"search space key {key!r} cannot be tuned: {RESERVED_KEYS[key]}")
        if not isinstance(values, list) or not values:
            raise ExperimentError(
                f"search space key {key!r} must map to a non-empty list of values, "
                f"e.g. {key}: [{values!r}]"
            )
        out[str(key)] = list(values)
    return out


def _check_space(grid: Mapping[str, Sequence[Any]], model: str, space: Any) -> None:
    """Every value of the space must be allowed by the key table (checks/keys.py), so that no
    trial fails after others trained."""
    where = f"in the search space {space}" if isinstance(space, (str, Path)) else "in the search space"
    for key, values in grid.items():
        for value in values:
            check_values({key: value}, model, source=lambda _k: where, keys=[key])


def grid_size(space: Mapping[str, Sequence[Any]]) -> int:
    """Number of combinations of the full grid."""
    return math.prod(len(v) for v in space.values())


def _combination(space: Mapping[str, Sequence[Any]], index: int) -> dict[str, Any]:
    """The ``index``-th grid combination in ``itertools.product`` order (last key fastest)."""
    params: dict[str, Any] = {}
    for key in reversed(list(space)):
        values = space[key]
        index, pos = divmod(index, len(values))
        params[key] = values[pos]
    return {key: params[key] for key in space}


def combinations(
    space: Mapping[str, Sequence[Any]], trials: int | None, seed: int
) -> tuple[list[dict[str, Any]], str]:
    """The combinations to train and the search mode (``grid`` or ``random``).

    Grid search (every combination, in ``itertools.product`` order) when ``trials`` is None
    or at least the grid size; otherwise ``trials`` distinct combinations drawn with
    ``random.Random(seed)``.
    """
    size = grid_size(space)
    if trials is not None and trials < 1:
        raise ExperimentError(f"--trials must be at least 1, not {trials}")
    if trials is None or trials >= size:
        keys = list(space)
        return [dict(zip(keys, combo)) for combo in itertools.product(*space.values())], "grid"
    picks = random.Random(seed).sample(range(size), trials)
    return [_combination(space, i) for i in picks], "random"


def select_best(valid_scores: Sequence[float | None], bigger: bool) -> int:
    """Index of the best validation score (the first one on ties; NaN/None rank last).

    Only validation scores are passed in: test results cannot influence the choice.
    """
    if not valid_scores or all(score_key(s, bigger) == -math.inf for s in valid_scores):
        raise ExperimentError("no trial produced a validation score")
    return max(range(len(valid_scores)), key=lambda i: (score_key(valid_scores[i], bigger), -i))


def _cell(value: Any) -> Any:
    """A value for a CSV cell: lists and dicts as JSON."""
    return json.dumps(jsonable(value)) if isinstance(value, (list, dict, tuple)) else value


def trials_table(trials: Sequence[Mapping[str, Any]], best: int | None) -> pd.DataFrame:
    """One row per trial: its values, ``valid_score`` (the selection criterion), whether it
    was selected, best epoch, time, then every ``valid_*`` and (information only) ``test_*``
    metric."""
    rows = []
    for i, trial in enumerate(trials):
        row: dict[str, Any] = {"trial": trial["trial"]}
        row.update({k: _cell(v) for k, v in trial["params"].items()})
        row["valid_score"] = trial["valid_score"]
        row["selected"] = i == best
        row["best_epoch"] = trial["best_epoch"]
        row["epochs_run"] = trial["epochs_run"]
        row["seconds"] = round(trial["seconds"], 3)
        row.update({f"valid_{k}": v for k, v in trial["best_valid_result"].items()})
        row.update({f"test_{k}": v for k, v in trial["test_result"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def command_line(
    model: str,
    dataset: str,
    space: str | Path | Mapping[str, Any],
    trials: int | None,
    seed: int | None,
    config_files: Sequence[str],
    out: Path,
    overrides: Mapping[str, Any],
) -> str:
    """The ``recbole-rlmm tune`` command that reproduces a search."""
    args = ["recbole-rlmm", "tune", "--model", model, "--dataset", dataset]
    args += ["--space", str(space) if isinstance(space, (str, Path)) else "<mapping>"]
    if trials is not None:
        args += ["--trials", str(trials)]
    if seed is not None:
        args += ["--seed", str(seed)]
    if config_files:
        args += ["--config_files", *config_files]
    if overrides:
        args += ["--set", *(f"{k}={json.dumps(jsonable(v))}" for k, v in overrides.items())]
    args += ["--out", str(out)]
    return shlex.join(args)


def tuned_yaml(result: Mapping[str, Any], space: Mapping[str, Sequence[Any]]) -> str:
    """The tuned config: a comment header (score, search, command) and the chosen values."""
    direction = "higher" if result["valid_score_bigger"] else "lower"
    header = [
        f"recbole-rlmm tune: {result['model']} on {result['dataset']}, "
        f"{len(result['trials'])} trial(s), {result['mode']} search over a grid of "
        f"{result['grid_size']}",
        f"selected by validation {result['valid_metric']} = {result['best_valid_score']:.4f} "
        f"({direction} is better), trial {result['best_trial']}; test metrics were not used",
        f"training seed {result['seed']}; fixed overrides: {json.dumps(jsonable(result['overrides']))}",
        f"command: {result['command']}",
        f"written {time.strftime('%Y-%m-%d %H:%M:%S')}",
        "use: recbole-rlmm compare --model-config "
        f"{result['model']}=<this file> ...  or  recbole-rlmm run --config_files <this file>",
        "search space:",
        *(f"  {k}: {json.dumps(jsonable(list(v)))}" for k, v in space.items()),
    ]
    body = yaml.safe_dump(
        jsonable(result["best_params"]), sort_keys=False, default_flow_style=False
    )
    return "".join(f"# {line}\n" for line in header) + body


def tune(
    model: str,
    dataset: str,
    space: str | Path | Mapping[str, Any],
    trials: int | None = None,
    seed: int | None = None,
    config_files: Sequence[str] | str | None = None,
    out: str | Path = "tuned",
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    threads: int | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Search ``space`` for ``model`` on ``dataset`` and keep the best validation score.

    Args:
        model: our model or a RecBole built-in.
        dataset: dataset folder name under ``data_path``.
        space: a yaml file (or mapping) of config key -> list of values.
        trials: random search over this many distinct combinations; None (or at least the
            grid size) trains the full grid.
        seed: seeds both the random draw of combinations and every trial's training;
            default: the config's ``seed``.
        config_files: yaml files applied to every trial.
        out: output folder for the tuned yaml and the trials csv.
        overrides: fixed config values for every trial (``{"epochs": 50}`` / ``["epochs=50"]``).
        threads: if given, ``torch.set_num_threads(threads)``.
        echo: where progress lines go.

    Returns:
        ``model``, ``dataset``, ``mode``, ``grid_size``, ``trials`` (one dict per trial),
        ``best_trial``, ``best_params``, ``best_valid_score``, ``valid_metric``,
        ``valid_score_bigger``, ``seed``, ``overrides``, ``command``, ``yaml`` and
        ``trials_csv`` (the written paths).
    """
    out = Path(out)
    files = split_config_files(config_files)
    fixed = parse_overrides(overrides)
    grid = load_space(space)
    clash = sorted(set(grid) & set(fixed))
    if clash:
        raise ExperimentError(f"{', '.join(clash)} both searched and fixed by an override")
    if "seed" in fixed:
        raise ExperimentError("set the seed with --seed, not with an override")
    base = build_config(model, dataset, files, fixed)
    name = str(base["model"])
    _check_space(grid, name, space)
    validate_data(base, get_model(name))  # the files, before any trial trains
    for key in grid:
        if key not in base.final_config_dict:
            echo(
                f"warning: {key!r} is not a configuration key of {name} (its yaml files do not "
                "define it); check the spelling"
            )
    train_seed = int(base["seed"]) if seed is None else int(seed)
    picked, mode = combinations(grid, trials, train_seed)
    set_threads(threads)

    stem = f"{name}-{base['dataset']}"
    csv_path = out / f"{stem}-trials.csv"
    ckpt_root = out / ".checkpoints"
    echo(
        f"tuning {name} on {base['dataset']}: {mode} search, {len(picked)} of "
        f"{grid_size(grid)} combinations, selected by validation {base['valid_metric']}"
    )
    progress = Progress(len(picked), len(picked), echo)
    done: list[dict[str, Any]] = []
    for index, params in enumerate(picked, start=1):
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        started = progress.begin(index, shown)
        # a private folder: tunings of other models/datasets may share ``out``
        ckpt_root.mkdir(parents=True, exist_ok=True)
        ckpt = Path(tempfile.mkdtemp(prefix=f"{stem}-trial-{index}-", dir=ckpt_root))
        try:
            with isolated_argv():
                result = run_recbole_rlmm(
                    model=name,
                    dataset=dataset,
                    config_file_list=files,
                    config_dict={
                        **fixed,
                        **params,
                        "seed": train_seed,
                        "checkpoint_dir": str(ckpt),
                    },
                    saved=True,
                )
        finally:
            shutil.rmtree(ckpt, ignore_errors=True)
        summary = run_summary(result)
        done.append(
            {
                "trial": index,
                "params": params,
                "valid_score": summary["best_valid_score"],
                "valid_score_bigger": bool(summary["valid_score_bigger"]),
                "best_valid_result": summary["best_valid_result"],
                "test_result": summary["test_result"],
                "best_epoch": summary["best_epoch"],
                "epochs_run": summary["epochs_run"],
                "seconds": progress.end(started),
            }
        )
        bigger = done[0]["valid_score_bigger"]
        best = select_best([t["valid_score"] for t in done], bigger)
        echo(
            f"    valid {base['valid_metric']} {done[-1]['valid_score']:.4f} "
            f"(best so far {done[best]['valid_score']:.4f}, trial {done[best]['trial']})"
        )
        write_text_atomic(csv_path, trials_table(done, best).to_csv(index=False))
    if ckpt_root.is_dir() and not any(ckpt_root.iterdir()):
        ckpt_root.rmdir()

    bigger = done[0]["valid_score_bigger"]
    best = select_best([t["valid_score"] for t in done], bigger)
    result = {
        "model": name,
        "dataset": str(base["dataset"]),
        "mode": mode,
        "grid_size": grid_size(grid),
        "trials": done,
        "best_trial": done[best]["trial"],
        "best_params": dict(done[best]["params"]),
        "best_valid_score": done[best]["valid_score"],
        "valid_metric": str(base["valid_metric"]).lower(),
        "valid_score_bigger": bigger,
        "seed": train_seed,
        "overrides": fixed,
        "command": command_line(name, dataset, space, trials, seed, files, out, fixed),
        "yaml": str(out / f"{stem}.yaml"),
        "trials_csv": str(csv_path),
    }
    write_text_atomic(result["yaml"], tuned_yaml(result, grid))
    echo(
        f"best: trial {result['best_trial']} ({', '.join(f'{k}={v}' for k, v in result['best_params'].items())}), "
        f"valid {result['valid_metric']} {result['best_valid_score']:.4f}; "
        f"wrote {result['yaml']} and {csv_path}"
    )
    return result
