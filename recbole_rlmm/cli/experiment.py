"""The ``compare`` and ``tune`` command lines (light: the experiment code is imported when a
command runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recbole_rlmm.cli.common import add_config_files
from recbole_rlmm.experiment import DEFAULT_SEEDS


def add_common_arguments(parser: argparse.ArgumentParser, *, each: str, out: str) -> None:
    """The options ``compare`` and ``tune`` share: ``--dataset``, ``--config_files``,
    ``--set``, ``--out`` (default ``out``) and ``--threads``; ``each`` names what the shared
    files and overrides apply to (``model``, ``trial``). Read back with :func:`common_options`.
    """
    group = parser.add_argument_group("dataset, shared settings and output")
    group.add_argument("--dataset", "-d", required=True, help="dataset folder name under data_path")
    add_config_files(group, f"yaml files applied to every {each}")
    group.add_argument(
        "--set",
        dest="set",
        nargs="+",
        action="extend",
        default=None,
        metavar="KEY=VALUE",
        help=f"config override for every {each}, e.g. --set epochs=100 stopping_step=10 "
        "(--key=value works too)",
    )
    group.add_argument("--out", default=out, help="output folder")
    group.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")


def common_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`add_common_arguments` as keyword arguments of ``compare``/``tune``."""
    return {
        "dataset": args.dataset,
        "config_files": args.config_files,
        "out": args.out,
        "overrides": args.set,
        "threads": args.threads,
    }


def _per_model_files(parser: argparse.ArgumentParser, flag: str, help: str) -> None:
    """An option of ``MODEL=FILE`` pairs, repeatable (``--model-config``, ``--space``)."""
    parser.add_argument(
        flag, dest=flag[2:].replace("-", "_"), nargs="+", action="extend", default=None,
        metavar="MODEL=FILE", help=help,
    )


def register_compare(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    """Add the ``compare`` subcommand."""
    p = subparsers.add_parser(
        "compare",
        help="run several models x seeds with identical split, evaluator and schedule",
        description="Train every model with every seed on the same split, sampler, evaluator and "
        "schedule; resumable; writes results.{csv,json,md,png}.",
        formatter_class=formatter,
        epilog="examples:\n  recbole-rlmm compare -d movielens-mm -m LightGCN FREEDOM RLMultimodalRec "
        "--seeds 2020 2021 --out results/\n"
        "  recbole-rlmm compare -d movielens-mm -m LightGCN FREEDOM RLMultimodalRec --tune-trials 30 "
        "--out results/",
    )
    p.add_argument("--models", "-m", nargs="+", required=True, help="our models or any RecBole built-in")
    p.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), help="one run per seed")
    _per_model_files(p, "--model-config", "an extra yaml for one model only, e.g. RLMultimodalRec=tuned/RLMultimodalRec-D.yaml")
    p.add_argument(
        "--tune-trials",
        dest="tune_trials",
        type=int,
        default=None,
        metavar="N",
        help="first tune every model with the same budget of N Optuna trials (seeded with the "
        "first seed, into <out>/tuned/, resumable) and compare the tuned configs; needs optuna",
    )
    _per_model_files(p, "--space", "a search space for --tune-trials (default: the model's shipped space)")
    add_common_arguments(p, each="model", out="results")
    p.set_defaults(func=_compare)


def register_tune(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    """Add the ``tune`` subcommand."""
    p = subparsers.add_parser(
        "tune",
        help="Optuna hyperparameter search (TPE, pruning, resumable), selected on validation only",
        description="An Optuna study over a yaml search space (docs/TUNE.md): TPE by default, "
        "hopeless trials pruned from per-epoch validation, the study stored in SQLite in --out (a "
        "stopped call resumes; --trials is the study's total) or in --storage (shared by several "
        "processes or machines). The winner is chosen on the validation metric only and written "
        "as a yaml for run/compare. Needs optuna: pip install 'recbole-rlmm[tune]'.",
        formatter_class=formatter,
        epilog="examples:\n  recbole-rlmm tune -m RLMultimodalRec -d movielens-mm --trials 30 --out tuned/\n"
        "  recbole-rlmm tune -m LightGCN -d movielens-mm --space my-space.yaml --trials 30 \\\n"
        "      --storage sqlite:////shared/studies.db     (run it on several machines)",
    )
    p.add_argument("--model", "-m", required=True, help="our model or any RecBole built-in")
    p.add_argument(
        "--space",
        default=None,
        help="yaml: config key -> list of values or {low, high, log, step} "
        "(default: the model's shipped space, recbole_rlmm/experiment/spaces/)",
    )
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help="the study's total of finished trials (default 20; grid: the grid's size)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the sampler and of every trial's training")
    p.add_argument("--sampler", choices=["tpe", "random", "grid"], default="tpe", help="Optuna sampler")
    p.add_argument("--pruner", choices=["median", "none"], default="median", help="prune hopeless trials")
    for flag, default, text in (
        ("--prune-startup-trials", 3, "finished trials before any trial can be pruned"),
        ("--prune-warmup-epochs", None, "epochs a trial trains before it can be pruned (default: the "
         "patience, stopping_step x eval_step)"),
    ):
        p.add_argument(flag, dest=flag[2:].replace("-", "_"), type=int, default=default, help=text)
    p.add_argument(
        "--first-trial",
        dest="first_trial",
        choices=["config", "drawn"],
        default="config",
        help="config: a new study's first trial is the untuned configuration (defaults, "
        "--config_files, --set), so tuning never selects worse on validation; drawn: the "
        "sampler draws every trial",
    )
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL shared by several processes/machines (default: "
        "sqlite:///<out>/<model>-<dataset>.db)",
    )
    p.add_argument("--study-name", dest="study_name", default=None, help="default <model>-<dataset>")
    add_common_arguments(p, each="trial", out="tuned")
    p.set_defaults(func=_tune)


def _compare(args: argparse.Namespace) -> int:
    from recbole_rlmm.experiment.compare import (
        compare,  # lazy: torch and RecBole load when the command runs
    )

    compare(models=args.models, seeds=args.seeds, model_configs=args.model_config,
            tune_trials=args.tune_trials, spaces=args.space, **common_options(args))
    print((Path(args.out) / "results.md").read_text(encoding="utf-8"))
    return 0


def _tune(args: argparse.Namespace) -> int:
    from recbole_rlmm.experiment.tune import (
        tune,  # lazy: torch and RecBole load when the command runs
    )

    names = ("model", "space", "trials", "seed", "sampler", "pruner", "prune_startup_trials",
             "prune_warmup_epochs", "first_trial", "storage", "study_name")
    tune(**{name: getattr(args, name) for name in names}, **common_options(args))
    return 0
