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


def register_compare(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    """Add the ``compare`` subcommand."""
    p = subparsers.add_parser(
        "compare",
        help="run several models x seeds with identical split, evaluator and schedule",
        description="Train every model with every seed on the same split, sampler, evaluator and "
        "schedule; resumable; writes results.{csv,json,md,png}.",
        formatter_class=formatter,
        epilog="example:\n  recbole-rlmm compare -d movielens-mm -m LightGCN FREEDOM RLMultimodalRec "
        "--seeds 2020 2021 --out results/",
    )
    p.add_argument("--models", "-m", nargs="+", required=True, help="our models or any RecBole built-in")
    p.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), help="one run per seed")
    p.add_argument(
        "--model-config",
        dest="model_config",
        nargs="+",
        action="extend",
        default=None,
        metavar="MODEL=FILE",
        help="an extra yaml for one model only, e.g. RLMultimodalRec=tuned/RLMultimodalRec-D.yaml",
    )
    add_common_arguments(p, each="model", out="results")
    p.set_defaults(func=_compare)


def register_tune(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    """Add the ``tune`` subcommand."""
    p = subparsers.add_parser(
        "tune",
        help="grid / random hyperparameter search, selected on the validation metric only",
        description="Grid or seeded random search over a yaml space; the winner is chosen on the "
        "validation metric only and written as a yaml for run/compare.",
        formatter_class=formatter,
        epilog="example:\n  recbole-rlmm tune -m RLMultimodalRec -d movielens-mm "
        "--space bench/spaces/RLMultimodalRec.yaml --out tuned/",
    )
    p.add_argument("--model", "-m", required=True, help="our model or any RecBole built-in")
    p.add_argument("--space", required=True, help="yaml: config key -> list of values")
    p.add_argument("--trials", type=int, default=None, help="random search over N combinations (default: grid)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random draw and of every trial")
    add_common_arguments(p, each="trial", out="tuned")
    p.set_defaults(func=_tune)


def _compare(args: argparse.Namespace) -> int:
    from recbole_rlmm.experiment.compare import (
        compare,  # lazy: torch and RecBole load when the command runs
    )

    compare(models=args.models, seeds=args.seeds, model_configs=args.model_config, **common_options(args))
    print((Path(args.out) / "results.md").read_text(encoding="utf-8"))
    return 0


def _tune(args: argparse.Namespace) -> int:
    from recbole_rlmm.experiment.tune import (
        tune,  # lazy: torch and RecBole load when the command runs
    )

    tune(model=args.model, space=args.space, trials=args.trials, seed=args.seed, **common_options(args))
    return 0
