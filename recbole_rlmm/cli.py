"""Command line: ``recbole-rlmm run | prepare | compare | tune | recommend | export | gates``
(``run_recbole_rlmm.py`` is ``run``).

Every command accepts RecBole's ``--key=value`` overrides after its own options. This module
imports neither torch nor RecBole: ``--help`` answers at once, and each command imports what it
needs when it runs. An expected failure (bad input, a refused request) prints one line
``recbole-rlmm: error: ...`` and exits with status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import Any

from recbole_rlmm.registry import DEFAULT_DATASET, DEFAULT_MODEL

RUN_EXAMPLES = """examples:
  recbole-rlmm run                                   # RLMultimodalRec on the embedded movielens-mm
  recbole-rlmm run -m LightGCN -d movielens-mm --learning_rate=0.002
  recbole-rlmm run -d amazon --fusion=none           # Amazon Baby, ID only (features: README)
  recbole-rlmm run --config_files my.yaml            # model/dataset may come from the yaml
  recbole-rlmm run --nproc 2                         # RecBole's DDP on 2 processes (gloo on CPU)
"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the examples' line breaks."""


def add_config_files(parser: Any, help_text: str) -> None:
    """``--config_files a.yaml b.yaml`` (a quoted ``"a.yaml b.yaml"`` works too), as in every
    command; read back with :func:`config_files`."""
    parser.add_argument("--config_files", nargs="+", default=None, metavar="YAML", help=help_text)


def config_files(value: Sequence[str] | None) -> list[str]:
    """The files of ``--config_files``: each item may hold several space-separated paths."""
    return [part for item in value or [] for part in str(item).split()]


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="train and evaluate one model (RecBole --key=value overrides accepted)",
        description="Train and evaluate one model with RecBole's dataloaders, trainer and "
        "full-ranking evaluator; prints the best epoch, timings and the metric tables.",
        formatter_class=_Formatter,
        epilog=RUN_EXAMPLES,
    )
    p.add_argument(
        "--model", "-m", default=None,
        help=f"our model or any RecBole built-in (default: the config files' `model`, else {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--dataset", "-d", default=None,
        help=f"folder under data_path (default: the config files' `dataset`, else {DEFAULT_DATASET})",
    )
    add_config_files(p, "yaml files, above our defaults and the dataset's own yaml")
    p.add_argument("--nosave", action="store_true", help="do not save/reload the best checkpoint")
    p.add_argument(
        "--resume", default=None, metavar="PATH",
        help="continue an interrupted run from the .resume.pth it left (same command otherwise)",
    )
    p.add_argument(
        "--trust-checkpoint", dest="trust_checkpoint", action="store_true",
        help="allow --resume from RecBole's own pickled checkpoints (runs code stored in the file)",
    )
    dist = p.add_argument_group("several processes (RecBole's DDP; nccl on GPUs, gloo on CPUs)")
    dist.add_argument("--nproc", type=int, default=1, help="processes on this machine")
    dist.add_argument("--world_size", type=int, default=-1, help="processes on all machines (-1: nproc)")
    dist.add_argument("--ip", default="localhost", help="address of the machine holding rank 0")
    dist.add_argument("--port", default="5678", help="free port on that machine")
    dist.add_argument("--group_offset", type=int, default=0, help="rank of this machine's first process")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from recbole_rlmm.checks.run import check_process_counts

    check_process_counts(args.nproc, args.world_size, args.group_offset)  # before torch loads
    from recbole_rlmm.checkpoint import trusted_checkpoints
    from recbole_rlmm.config import external_values
    from recbole_rlmm.experiment.report import format_result
    from recbole_rlmm.quick_start import run_recbole_rlmm, silence_recbole_warnings

    silence_recbole_warnings()
    files = config_files(args.config_files)
    config_dict: dict[str, Any] = {}
    if sys.stderr.isatty() and "show_progress" not in external_values(files, None):
        config_dict["show_progress"] = True  # RecBole's progress bars, in a terminal only
    context = trusted_checkpoints() if args.trust_checkpoint else contextlib.nullcontext()
    with context:
        result = run_recbole_rlmm(
            model=args.model,
            dataset=args.dataset,
            config_file_list=files,
            config_dict=config_dict,
            saved=not args.nosave,
            resume=args.resume,
            nproc=args.nproc,
            world_size=args.world_size,
            ip=args.ip,
            port=args.port,
            group_offset=args.group_offset,
        )
    if result is not None:  # None on the machines that do not hold rank 0
        print(format_result(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from recbole_rlmm import __version__
    from recbole_rlmm.experiment.cli import register_compare, register_tune
    from recbole_rlmm.inference.cli import register_export, register_gates, register_recommend
    from recbole_rlmm.prepare.cli import register as register_prepare

    parser = argparse.ArgumentParser(
        prog="recbole-rlmm",
        description="Multimodal recommendation for RecBole: RLMultimodalRec and multimodal "
        "baselines, trained with RecBole's own dataloaders, trainer and evaluator.",
        formatter_class=_Formatter,
        epilog="Run `recbole-rlmm COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of expected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    register_prepare(sub)
    register_compare(sub, _Formatter)
    register_tune(sub, _Formatter)
    register_recommend(sub, _Formatter)
    register_export(sub, _Formatter)
    register_gates(sub, _Formatter)
    return parser


#: Options of ``recbole-rlmm`` itself, accepted anywhere in a command line.
_GLOBAL_OPTIONS = ("--version", "--debug")


def main(argv: Sequence[str] | None = None, command: str | None = None) -> int:
    """``recbole-rlmm [--version] [--debug] COMMAND ...``; with ``command`` (``run_recbole_rlmm.py``
    is ``command="run"``) ``argv`` holds that command's arguments, the global options anywhere."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if command is not None:
        argv = [*(a for a in argv if a in _GLOBAL_OPTIONS), command, *(a for a in argv if a not in _GLOBAL_OPTIONS)]
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    bad = [a for a in unknown if not (a.startswith("--") and "=" in a)]
    if bad:
        parser.error(f"unrecognised arguments {bad}; config overrides are written --key=value")
    if args.command == "run":
        # RecBole's Config reads --key=value overrides from sys.argv itself; it ignores a
        # value holding '=' without a word and raises on a key given twice: say so / let
        # the last one win, as for every other option
        split = [a[2:].split("=") for a in unknown]
        bad = [a for a, parts in zip(unknown, split) if len(parts) != 2]
        if bad:
            print(f"recbole-rlmm: error: override {bad[0]!r} holds more than one '='; RecBole cannot read "
                  "it (write the value without '=').", file=sys.stderr)
            return 2
        last = {parts[0]: a for a, parts in zip(unknown, split)}
        sys.argv = [sys.argv[0], *last.values()]
    elif unknown and hasattr(args, "set"):
        # compare/tune record their overrides explicitly: --key=value joins --set key=value
        args.set = [*(args.set or []), *(a[2:] for a in unknown)]
    elif unknown:
        parser.error(f"unrecognised arguments {unknown}")
    from recbole_rlmm.errors import TRUST_HINT, UserError

    # a refused pickled checkpoint names the option of this command (for this call only)
    hint = TRUST_HINT.set("pass --trust-checkpoint") if hasattr(args, "trust_checkpoint") else None
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        if args.debug:
            raise
        message = str(exc).strip().replace("\n", " ")
        interrupted = type(exc).__name__ == "RunInterrupted"
        print(f"recbole-rlmm: {'' if interrupted else 'error: '}{message}", file=sys.stderr)
        return 130 if interrupted else 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("recbole-rlmm: interrupted before training started; nothing was saved.", file=sys.stderr)
        return 130
    finally:
        if hint is not None:
            TRUST_HINT.reset(hint)


if __name__ == "__main__":
    sys.exit(main())
