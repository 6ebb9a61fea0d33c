"""``recbole-rlmm compare``: several models on the identical split, evaluator and schedule.

One training run per (model, seed) through :func:`recbole_rlmm.runner.run_recbole_rlmm`.
Every run is stored as ``<out>/runs/<model>-<seed>.json`` (written atomically) together with
the fingerprint of its resolved config, so an interrupted comparison resumes where it
stopped and a run whose settings changed is trained again instead of being reused. The
summary is written as ``results.csv``, ``results.json``, ``results.md`` and ``results.png``.

Fairness is checked before anything trains: the split, sampler, evaluator and training
schedule (``FAIR_KEYS``) must resolve to the same values for every model.
"""

from __future__ import annotations

import io
import math
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from recbole.utils import ModelType

from recbole_rlmm.config import changed_keys, fingerprint
from recbole_rlmm.data.fingerprint import changed_files
from recbole_rlmm.data.io import (
    atomic_write,
    jsonable,
    read_json,
    write_json_atomic,
    write_text_atomic,
)
from recbole_rlmm.experiment import DEFAULT_SEEDS
from recbole_rlmm.experiment.common import (
    EARLY_STOP_FRACTION,
    FAIR_KEYS,
    PLOT_METRICS,
    REPORT_METRICS,
    ExperimentError,
    Progress,
    build_config,
    isolated_argv,
    mean_std,
    metric_label,
    parse_overrides,
    run_summary,
    set_threads,
)
from recbole_rlmm.experiment.space import check_space, load_space
from recbole_rlmm.experiment.study import optuna_module
from recbole_rlmm.experiment.tune import tune
from recbole_rlmm.keys.sources import split_config_files
from recbole_rlmm.registry import get_model
from recbole_rlmm.runner import run_recbole_rlmm
from recbole_rlmm.runner.checks import data_fingerprint, validate_data

#: The fingerprint entry holding the size and SHA-256 of each data file a run reads.
DATA_KEY = "data_files"

#: Output files, in ``out``.
OUTPUT_FILES: tuple[str, ...] = ("results.csv", "results.json", "results.md", "results.png")


@dataclass
class PlannedRun:
    """One (model, seed) run of a comparison, fully resolved before anything trains."""

    model: str
    seed: int
    config_files: list[str]
    config_dict: dict[str, Any]
    fingerprint: dict[str, Any]
    record_path: Path
    checkpoint_dir: Path
    epochs: int
    traditional: bool
    stored: dict[str, Any] | None = None
    why_rerun: str = ""

    @property
    def label(self) -> str:
        """``BPR seed 2020``."""
        return f"{self.model} seed {self.seed}"


# --------------------------------------------------------------------------- planning


def canonical_model(name: str) -> str:
    """The class name RecBole will use for ``name`` (case-insensitive for our models)."""
    try:
        return get_model(name).__name__
    except ValueError as exc:
        raise ExperimentError(str(exc)) from exc


def model_file_pairs(items: Iterable[str], flag: str) -> dict[str, list[str]]:
    """``["M=a.yaml", "M=b.yaml"]`` -> ``{"M": ["a.yaml", "b.yaml"]}`` (``flag`` for messages)."""
    pairs: dict[str, list[str]] = {}
    for item in items:
        name, sep, path = str(item).partition("=")
        if not sep or not name or not path:
            raise ExperimentError(f"{flag} {item!r} is not of the form MODEL=file.yaml")
        pairs.setdefault(name, []).append(path)
    return pairs


def _model_config_files(
    model_configs: Mapping[str, str | Sequence[str]] | Iterable[str] | None, models: list[str]
) -> dict[str, list[str]]:
    """``{"RLMultimodalRec": "tuned/rlmm.yaml"}`` or ``["RLMultimodalRec=tuned/rlmm.yaml"]``
    -> canonical model name -> its extra config files (checked to exist)."""
    if model_configs is None:
        return {}
    if not isinstance(model_configs, Mapping):
        model_configs = model_file_pairs(model_configs, "--model-config")
    out: dict[str, list[str]] = {}
    for name, files in model_configs.items():
        model = canonical_model(name)
        if model not in models:
            raise ExperimentError(
                f"--model-config names {name!r}, which is not among the compared models "
                f"({', '.join(models)})"
            )
        out.setdefault(model, []).extend(split_config_files(files))
    return out


def _check_fair(runs: list[PlannedRun]) -> None:
    """Every run must share the values of :data:`FAIR_KEYS`."""
    ref = runs[0]
    problems = []
    for run in runs[1:]:
        for key in FAIR_KEYS:
            if run.fingerprint.get(key) != ref.fingerprint.get(key):
                problems.append(
                    f"  {key}: {run.model} has {run.fingerprint.get(key)!r}, "
                    f"{ref.model} has {ref.fingerprint.get(key)!r}"
                )
    if problems:
        raise ExperimentError(
            "compare gives every model the same split, sampler, evaluator and schedule, but "
            "these settings differ (from a --model-config file or a model's own properties "
            "yaml):\n" + "\n".join(dict.fromkeys(problems)) + "\nSet them once for all "
            "models, in a shared --config_files yaml or with --set key=value."
        )


def _check_metrics(run: PlannedRun) -> None:
    """The reported metrics must be computed by the evaluator."""
    metrics = {str(m).lower() for m in run.fingerprint.get("metrics") or []}
    topk = {int(k) for k in run.fingerprint.get("topk") or []}
    missing = [
        m
        for m in REPORT_METRICS
        if m.split("@")[0] not in metrics or int(m.split("@")[1]) not in topk
    ]
    if missing:
        raise ExperimentError(
            f"compare reports {', '.join(metric_label(m) for m in REPORT_METRICS)}, but the "
            f"evaluator is set to metrics={sorted(metrics)} topk={sorted(topk)}; add "
            "Recall and NDCG to metrics and 10, 20 to topk"
        )


def plan_runs(
    dataset: str,
    models: Sequence[str],
    seeds: Sequence[int],
    config_files: Sequence[str] | str | None,
    model_configs: Mapping[str, str | Sequence[str]] | Iterable[str] | None,
    out: Path,
    overrides: Mapping[str, Any] | Iterable[str] | None,
) -> list[PlannedRun]:
    """Resolve the config of every (model, seed), check fairness and find reusable runs.

    Raises :class:`ExperimentError` for an unknown model, a missing file, an override of
    ``seed`` or settings that differ between models, all before any training.
    """
    names = list(dict.fromkeys(canonical_model(m) for m in models))
    seed_list = list(dict.fromkeys(int(s) for s in seeds))
    if not names:
        raise ExperimentError("no models to compare")
    if not seed_list:
        raise ExperimentError("no seeds given")
    shared_files = split_config_files(config_files)
    per_model = _model_config_files(model_configs, names)
    fixed = parse_overrides(overrides)
    if "seed" in fixed:
        raise ExperimentError("set the seeds with --seeds (seeds=...), not with an override")

    runs = []
    for model in names:
        files = shared_files + per_model.get(model, [])
        for seed in seed_list:
            ckpt = out / "checkpoints" / f"{model}-{seed}"
            config_dict = {**fixed, "seed": seed, "checkpoint_dir": str(ckpt)}
            config = build_config(model, dataset, files, config_dict)
            model_class = get_model(model)
            validate_data(config, model_class)  # files checked before anything trains (cached)
            # the data is part of the fingerprint: changed files retrain
            fp = {**fingerprint(config), DATA_KEY: data_fingerprint(config, model_class)}
            runs.append(
                PlannedRun(
                    model=model,
                    seed=seed,
                    config_files=files,
                    config_dict=config_dict,
                    fingerprint=fp,
                    record_path=out / "runs" / f"{model}-{seed}.json",
                    checkpoint_dir=ckpt,
                    epochs=int(config["epochs"]),
                    traditional=config["MODEL_TYPE"] == ModelType.TRADITIONAL,
                )
            )
    _check_fair(runs)
    _check_metrics(runs[0])
    for run in runs:
        stored = read_json(run.record_path)
        if stored is None:
            continue
        if stored.get("fingerprint") == run.fingerprint and isinstance(stored.get("result"), dict):
            run.stored = stored
        else:
            run.why_rerun = _why_rerun(stored.get("fingerprint") or {}, run.fingerprint)
    return runs


def _why_rerun(stored: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """``settings changed since the stored run (epochs)``, ``data changed since the stored
    run (tiny.image.npy)``, or both."""
    diff = [k for k in changed_keys(stored, current) if k != DATA_KEY]
    reasons = []
    if diff:
        reasons.append(f"settings changed since the stored run ({', '.join(diff[:6])}{', ...' if len(diff) > 6 else ''})")
    if stored.get(DATA_KEY) != current.get(DATA_KEY):
        if DATA_KEY not in stored:
            reasons.append("the stored run has no data fingerprint")
        else:
            files = changed_files(stored[DATA_KEY], current.get(DATA_KEY) or {})
            reasons.append(f"data changed since the stored run ({', '.join(files[:6])}{', ...' if len(files) > 6 else ''})")
    return "; ".join(reasons) or "incomplete record"


# --------------------------------------------------------------------------- running


def early_stopped(record: Mapping[str, Any]) -> bool:
    """True when a run's best epoch lies in the first 20% of its epoch budget.

    Traditional (non-gradient) models train a single epoch by design and are never flagged.
    """
    if record.get("traditional"):
        return False
    return int(record["result"]["best_epoch"]) < EARLY_STOP_FRACTION * int(record["epochs"])


def _train(run: PlannedRun, dataset: str) -> dict[str, Any]:
    """Train one run (its checkpoint folder is emptied first) and store its record."""
    shutil.rmtree(run.checkpoint_dir, ignore_errors=True)
    started = time.perf_counter()
    with isolated_argv():
        result = run_recbole_rlmm(
            model=run.model,
            dataset=dataset,
            config_file_list=run.config_files,
            config_dict=run.config_dict,
            saved=True,
        )
    record = {
        "model": run.model,
        "dataset": dataset,
        "seed": run.seed,
        "config_files": run.config_files,
        "config_dict": jsonable(run.config_dict),
        "epochs": run.epochs,
        "traditional": run.traditional,
        "result": run_summary(result),
        "wall_seconds": time.perf_counter() - started,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "checkpoint": result.get("checkpoint"),
        "fingerprint": run.fingerprint,
    }
    write_json_atomic(run.record_path, record)
    return record


def execute_runs(
    runs: list[PlannedRun], dataset: str, echo: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Train the runs that have no matching record, reuse the others; print progress."""
    progress = Progress(len(runs), sum(run.stored is None for run in runs), echo)
    records = []
    for index, run in enumerate(runs, start=1):
        if run.stored is not None:
            progress.show(index, f"{run.label}: finished earlier, reusing {run.record_path}")
            records.append(run.stored)
            continue
        text = run.label + (f": {run.why_rerun}, training again" if run.why_rerun else "")
        started = progress.begin(index, text)
        record = _train(run, dataset)
        progress.end(started)
        res = record["result"]
        test = res.get("test_result", {})
        echo(
            f"    best epoch {res.get('best_epoch')} (0-based) of {res.get('epochs_run')} run, valid "
            f"{res.get('best_valid_score', math.nan):.4f}, test "
            + ", ".join(f"{metric_label(m)} {test[m]:.4f}" for m in PLOT_METRICS if m in test)
        )
        records.append(record)
    return records


# --------------------------------------------------------------------------- summary


def summarise(records: Sequence[Mapping[str, Any]], valid_metric: str) -> pd.DataFrame:
    """One row per model (in order of first appearance): cost, best epochs and metrics.

    Metric columns come in pairs ``<split>_<metric>_mean`` / ``_std`` (sample std over
    seeds, NaN with one seed).
    """
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_model.setdefault(record["model"], []).append(record)
    rows = []
    for model, recs in by_model.items():
        results = [r["result"] for r in recs]
        flags = [early_stopped(r) for r in recs]
        row: dict[str, Any] = {
            "model": model,
            "seeds": len(recs),
            "parameters": max(int(r.get("n_params") or 0) for r in results),
            "seconds_per_train_epoch": mean_std(
                [r.get("train_seconds_per_epoch") for r in results]
            )[0],
            "seconds_per_eval": mean_std([r.get("eval_seconds") for r in results])[0],
            "best_epochs": ", ".join(
                f"{r.get('best_epoch')}{'*' if flag else ''}" for r, flag in zip(results, flags)
            ),
            "best_epoch_mean": mean_std([r.get("best_epoch") for r in results])[0],
            "early_stopped_runs": sum(flags),
        }
        columns = [("valid", valid_metric, "best_valid_result")] + [
            ("test", m, "test_result") for m in REPORT_METRICS
        ]
        for split, metric, key in columns:
            mean, std = mean_std([(r.get(key) or {}).get(metric) for r in results])
            row[f"{split}_{metric}_mean"] = mean
            row[f"{split}_{metric}_std"] = std
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean: float, std: float, bold: bool = False) -> str:
    if math.isnan(mean):
        return "–"
    text = f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"
    return f"**{text}**" if bold else text


def markdown_table(
    table: pd.DataFrame, valid_metric: str, dataset: str, schedule: Mapping[str, Any]
) -> str:
    """``results.md``: a header with the shared settings and one row per model."""
    metric_cols = [("valid", valid_metric)] + [("test", m) for m in REPORT_METRICS]
    header = [
        "Model",
        "Parameters",
        "s / train epoch",
        "s / full eval",
        "Best epoch (per seed)",
        *[f"{'Valid' if s == 'valid' else 'Test'} {metric_label(m)}" for s, m in metric_cols],
    ]
    best = {
        (s, m): table[f"{s}_{m}_mean"].max(skipna=True) if len(table) > 1 else math.nan
        for s, m in metric_cols
    }
    lines = [
        f"# Comparison on {dataset}",
        "",
        f"Seeds: {', '.join(str(s) for s in schedule['seeds'])}. Every model: the same split, "
        f"negative sampler and full-ranking evaluator; a budget of {schedule['epochs']} epochs, "
        f"validation every {schedule['eval_step']} epoch(s), patience {schedule['stopping_step']} "
        f"evaluations; the best epoch is chosen by validation {metric_label(valid_metric)}. "
        "Metrics: mean ± sample std over seeds; best mean in bold.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * 3 + ["---"] + ["---:"] * len(metric_cols)) + "|",
    ]
    for _, row in table.iterrows():
        cells = [
            str(row["model"]),
            f"{int(row['parameters']):,}",
            f"{row['seconds_per_train_epoch']:.3f}",
            f"{row['seconds_per_eval']:.3f}",
            str(row["best_epochs"]),
        ]
        for s, m in metric_cols:
            mean = float(row[f"{s}_{m}_mean"])
            cells.append(_pm(mean, float(row[f"{s}_{m}_std"]), bold=mean == best[(s, m)]))
        lines.append("| " + " | ".join(cells) + " |")
    if table["early_stopped_runs"].sum():
        lines += [
            "",
            f"\\* best epoch (0-based) below {EARLY_STOP_FRACTION:.0%} of the "
            f"{schedule['epochs']}-epoch budget: that run may have stopped too early.",
        ]
    return "\n".join(lines) + "\n"


def plot_results(table: pd.DataFrame, dataset: str, n_seeds: int, path: Path) -> str | None:
    """Bar chart of test Recall@20 and NDCG@20 (mean, std error bars) with Agg.

    Returns None on success, else why the plot was skipped (matplotlib missing).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return (
            f"{path.name} skipped: matplotlib is not installed "
            "(pip install 'recbole-rlmm[plot]' installs the plot extra)"
        )
    models = list(table["model"])
    fig = Figure(figsize=(max(6.0, 1.1 * len(models) + 2.0), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / len(PLOT_METRICS)
    for j, metric in enumerate(PLOT_METRICS):
        means = table[f"test_{metric}_mean"].fillna(0.0)
        stds = table[f"test_{metric}_std"].fillna(0.0)
        xs = [i + (j - (len(PLOT_METRICS) - 1) / 2) * width for i in range(len(models))]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=f"test {metric_label(metric)}")
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(models, rotation=20, ha="right")
    ax.set_ylabel("score")
    ax.set_title(f"Test metrics on {dataset}: mean ± std over {n_seeds} seed(s)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))  # a refused write is one line
    return None


def write_results(
    out: Path,
    table: pd.DataFrame,
    records: Sequence[Mapping[str, Any]],
    dataset: str,
    valid_metric: str,
    schedule: Mapping[str, Any],
) -> list[str]:
    """Write the four result files; returns messages about files that were skipped."""
    write_text_atomic(out / "results.csv", table.to_csv(index=False))
    runs = [
        {
            "model": r["model"],
            "seed": r["seed"],
            "record": str(out / "runs" / f"{r['model']}-{r['seed']}.json"),
            "early_stopped": early_stopped(r),
            **r["result"],
        }
        for r in records
    ]
    write_json_atomic(
        out / "results.json",
        {
            "dataset": dataset,
            "valid_metric": valid_metric,
            "schedule": schedule,
            "summary": table.to_dict(orient="records"),
            "runs": runs,
        },
    )
    write_text_atomic(out / "results.md", markdown_table(table, valid_metric, dataset, schedule))
    skipped = plot_results(table, dataset, len(schedule["seeds"]), out / "results.png")
    return [skipped] if skipped else []


def _spaces(spaces: Mapping[str, str] | Iterable[str] | None, models: list[str]) -> dict[str, str]:
    """``["LightGCN=space.yaml"]`` or a mapping -> canonical model name -> its space file."""
    if spaces is None:
        return {}
    if not isinstance(spaces, Mapping):
        spaces = {name: paths[-1] for name, paths in model_file_pairs(spaces, "--space").items()}
    out = {}
    for name, path in spaces.items():
        model = canonical_model(name)
        if model not in models:
            raise ExperimentError(f"--space names {name!r}, which is not among the compared models ({', '.join(models)})")
        out[model] = str(path)
    return out


def tune_models(
    dataset: str,
    models: list[str],
    trials: int,
    seed: int,
    config_files: Sequence[str] | str | None,
    model_files: Mapping[str, list[str]],
    spaces: Mapping[str, str] | Iterable[str] | None,
    out: Path,
    overrides: Mapping[str, Any] | Iterable[str] | None,
    echo: Callable[[str], None] = print,
) -> dict[str, str]:
    """Tune every model with the same budget of ``trials`` Optuna trials (a finished study is
    reused); returns model -> its tuned yaml. Every space is checked before any trial trains."""
    if trials < 1:
        raise ExperimentError(f"--tune-trials must be at least 1, not {trials}")
    given = _spaces(spaces, models)
    shared = split_config_files(config_files)
    fixed = parse_overrides(overrides)
    optuna_module()
    for model in models:  # every space checked before the first trial trains
        params, where = load_space(given.get(model), model)
        config = build_config(model, dataset, shared + list(model_files.get(model, [])), fixed)
        check_space(params, model, where, config.final_config_dict)
    tuned = {}
    for model in models:
        echo(f"tuning {model}: {trials} trials (the same budget for every model)")
        result = tune(
            model,
            dataset,
            given.get(model),
            trials=trials,
            seed=seed,
            config_files=shared + list(model_files.get(model, [])),
            out=out,
            overrides=fixed,
            echo=echo,
        )
        tuned[model] = result["yaml"]
    return tuned


def compare(
    dataset: str,
    models: Sequence[str],
    seeds: Sequence[int] = DEFAULT_SEEDS,
    config_files: Sequence[str] | str | None = None,
    model_configs: Mapping[str, str | Sequence[str]] | Iterable[str] | None = None,
    out: str | Path = "results",
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    tune_trials: int | None = None,
    spaces: Mapping[str, str] | Iterable[str] | None = None,
    threads: int | None = None,
    echo: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Run every model for every seed on ``dataset`` and summarise the results.

    Args:
        dataset: dataset folder name under ``data_path``.
        models: our models or any RecBole built-in names.
        seeds: one run per model and seed; within a seed every model sees the same split.
        config_files: yaml files applied to every model.
        model_configs: extra yaml files for one model only, e.g. a tuned config:
            ``{"RLMultimodalRec": "tuned/RLMultimodalRec-D.yaml"}`` or ``["M=path"]``.
        out: output folder (``runs/``, ``checkpoints/`` and the ``results.*`` files).
        overrides: config values for every model (``{"epochs": 50}`` or ``["epochs=50"]``).
        tune_trials: first tune every model with this many Optuna trials (the same budget for
            each; :func:`recbole_rlmm.experiment.tune.tune`, seeded with the first seed, into
            ``out/tuned``, resumable) and compare the tuned configs.
        spaces: search spaces for ``tune_trials``, ``{"LightGCN": "space.yaml"}`` or
            ``["LightGCN=space.yaml"]``; a model without one uses its shipped space.
        threads: if given, ``torch.set_num_threads(threads)``.
        echo: where progress lines go.

    Returns:
        The summary table (one row per model), as written to ``results.csv``.
    """
    out = Path(out)
    runs = plan_runs(dataset, models, seeds, config_files, model_configs, out, overrides)
    set_threads(threads)
    if tune_trials is not None:
        names = list(dict.fromkeys(run.model for run in runs))
        extra = tune_models(
            dataset, names, tune_trials, runs[0].seed, config_files,
            _model_config_files(model_configs, names), spaces, out / "tuned", overrides, echo,
        )
        model_configs = {m: [*_model_config_files(model_configs, names).get(m, []), f] for m, f in extra.items()}
        runs = plan_runs(dataset, models, seeds, config_files, model_configs, out, overrides)
    fp = runs[0].fingerprint
    valid_metric = str(fp["valid_metric"]).lower()
    schedule = {
        "seeds": list(dict.fromkeys(run.seed for run in runs)),
        **{k: fp.get(k) for k in ("epochs", "eval_step", "stopping_step")},
    }
    records = execute_runs(runs, dataset, echo)
    table = summarise(records, valid_metric)
    for message in write_results(out, table, records, dataset, valid_metric, schedule):
        echo(message)
    for record in records:
        if early_stopped(record):
            echo(
                f"warning: {record['model']} seed {record['seed']} reached its best validation "
                f"score at epoch {record['result']['best_epoch']}, within the first "
                f"{EARLY_STOP_FRACTION:.0%} of its {record['epochs']}-epoch budget; it may have "
                f"stopped too early (stopping_step={fp.get('stopping_step')}, "
                f"eval_step={fp.get('eval_step')})"
            )
    echo(f"results written to {out}/: " + ", ".join(f for f in OUTPUT_FILES if (out / f).is_file()))
    return table
