"""Command line: ``recbole-rlmm run|prepare|compare|tune``.

``run`` accepts RecBole's ``--key=value`` overrides after the known options, exactly like
``run_recbole_rlmm.py``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="train and evaluate one model (RecBole --key=value overrides accepted)",
        description="Train and evaluate one model with RecBole's trainer and full-ranking evaluator.",
    )
    add_run_arguments(p)
    p.set_defaults(func=_run)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default="RLMultimodalRec", help="our model or any RecBole built-in")
    p.add_argument("--dataset", "-d", default="amazon", help="dataset folder name under data_path")
    p.add_argument("--config_files", type=str, default=None, help="space-separated yaml files")
    p.add_argument("--nosave", action="store_true", help="do not save/reload the best checkpoint")


def _run(args: argparse.Namespace) -> int:
    from recbole_rlmm.experiment.report import format_result
    from recbole_rlmm.quick_start import run_recbole_rlmm, silence_recbole_warnings

    silence_recbole_warnings()
    files = args.config_files.split() if args.config_files else None
    result = run_recbole_rlmm(
        model=args.model, dataset=args.dataset, config_file_list=files, saved=not args.nosave
    )
    print(format_result(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recbole-rlmm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    # later commands live in their own modules and register themselves when present
    for module in ("recbole_rlmm.prepare", "recbole_rlmm.experiment.compare", "recbole_rlmm.experiment.tune"):
        if importlib.util.find_spec(module) is not None:
            register = getattr(importlib.import_module(module), "register", None)
            if register is not None:
                register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    bad = [a for a in unknown if not (a.startswith("--") and "=" in a)]
    if bad:
        parser.error(f"unrecognised arguments {bad}; config overrides are written --key=value")
    if args.command == "run":
        # RecBole's Config reads --key=value overrides from sys.argv itself
        sys.argv = [sys.argv[0], *unknown]
    elif unknown and hasattr(args, "set"):
        # compare/tune record their overrides explicitly: --key=value joins --set key=value
        args.set = [*(args.set or []), *(a[2:] for a in unknown)]
    elif unknown:
        parser.error(f"unrecognised arguments {unknown}")
    from recbole_rlmm.data.features import FeatureFileError
    from recbole_rlmm.registry import MissingExtraError

    try:
        return int(args.func(args) or 0)
    except (FeatureFileError, MissingExtraError) as exc:  # bad user data, a missing extra: one line
        print(f"recbole-rlmm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
