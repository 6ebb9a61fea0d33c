"""The ``run`` command (and ``run_recbole_rlmm.py``): train and evaluate one model."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from recbole_rlmm.cli.common import Formatter, add_config_files
from recbole_rlmm.keys.sources import external_values, split_config_files
from recbole_rlmm.keys.values import check_process_counts
from recbole_rlmm.registry import DEFAULT_DATASET, DEFAULT_MODEL

RUN_EXAMPLES = """examples:
  recbole-rlmm run                                   # RLMultimodalRec on the embedded movielens-mm
  recbole-rlmm run -m LightGCN -d movielens-mm --learning_rate=0.002
  recbole-rlmm run -d amazon --fusion=none           # Amazon Baby, ID only (features: README)
  recbole-rlmm run --config_files my.yaml            # model/dataset may come from the yaml
  recbole-rlmm run --nproc 2                         # RecBole's DDP on 2 processes (gloo on CPU)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="train and evaluate one model (RecBole --key=value overrides accepted)",
        description="Train and evaluate one model with RecBole's dataloaders, trainer and "
        "full-ranking evaluator; prints the best epoch, timings and the metric tables.",
        formatter_class=Formatter,
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
    check_process_counts(args.nproc, args.world_size, args.group_offset)  # before torch loads
    from recbole_rlmm.checkpoint import trusted_checkpoints  # lazy: torch loads when a run starts
    from recbole_rlmm.experiment.report import (
        format_result,  # lazy: RecBole loads when a run starts
    )
    from recbole_rlmm.runner import (  # lazy: torch and RecBole
        run_recbole_rlmm,
        silence_recbole_warnings,
    )

    silence_recbole_warnings()
    files = split_config_files(args.config_files, must_exist=False)
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


