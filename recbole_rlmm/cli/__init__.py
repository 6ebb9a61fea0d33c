"""Command line: ``recbole-rlmm run | prepare | compare | tune | recommend | export | gates | serve``
(``run_recbole_rlmm.py`` is ``run``).

Every command accepts RecBole's ``--key=value`` overrides after its own options. This module
imports neither torch nor RecBole: ``--help`` answers at once, and each command imports what it
needs when it runs. An expected failure (bad input, a refused request) prints one line
``recbole-rlmm: error: ...`` and exits with status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recbole_rlmm import __version__
from recbole_rlmm.cli.common import Formatter
from recbole_rlmm.cli.experiment import register_compare, register_tune
from recbole_rlmm.cli.inference import (
    register_export,
    register_gates,
    register_recommend,
    register_serve,
)
from recbole_rlmm.cli.prepare import register as register_prepare
from recbole_rlmm.cli.run import register as register_run
from recbole_rlmm.errors import TRUST_HINT, UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recbole-rlmm",
        description="Multimodal recommendation for RecBole: RLMultimodalRec and multimodal "
        "baselines, trained with RecBole's own dataloaders, trainer and evaluator.",
        formatter_class=Formatter,
        epilog="Run `recbole-rlmm COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of expected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_run(sub)
    register_prepare(sub)
    register_compare(sub, Formatter)
    register_tune(sub, Formatter)
    register_recommend(sub, Formatter)
    register_export(sub, Formatter)
    register_gates(sub, Formatter)
    register_serve(sub, Formatter)
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
