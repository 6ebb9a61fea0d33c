"""Our runner's logging: RecBole's format and levels, a log file per run, colour codes only on a
terminal, result lines as RecBole prints them, and third-party noise silenced."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import colorlog
from recbole.utils import dict2str
from recbole.utils.logger import RemoveColorFilter, log_colors_config

from recbole_rlmm.keys.values import switched_off
from recbole_rlmm.runner.trainer import run_name


def is_terminal(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())

def init_run_logger(config: Any) -> Path | None:
    """RecBole's logging (same format and levels) with a log file of this run's own.

    The file is ``<log_dir>/<model>/<run name>.log`` (``log_dir`` defaults to RecBole's
    ``log/``; ``log_dir: ~`` logs to the console only). Returns the file's path.
    """

    state = str(config["state"] or "info").lower()
    level = {
        "debug": logging.DEBUG,
        "warning": logging.WARNING,
        "error": logging.ERROR,
        "critical": logging.CRITICAL,
    }.get(state, logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(level)
    if is_terminal(console.stream):
        console.setFormatter(
            colorlog.ColoredFormatter(
                "%(log_color)s%(asctime)-15s %(levelname)s  %(message)s",
                "%d %b %H:%M",
                log_colors=log_colors_config,
            )
        )
    else:  # redirected: no colour codes (colorlog's formatter adds its reset code to every line)
        console.setFormatter(logging.Formatter("%(asctime)-15s %(levelname)s  %(message)s", "%d %b %H:%M"))
        console.addFilter(RemoveColorFilter())  # the codes RecBole writes into its messages
    handlers: list[logging.Handler] = [console]
    log_dir = config["log_dir"] if "log_dir" in config else "log/"  # noqa: SIM401 (Config has no .get)
    path = None
    if not switched_off(log_dir):
        path = Path(log_dir) / str(config["model"]) / f"{run_name(config)}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(path)
        file.setLevel(level)
        file.setFormatter(
            logging.Formatter("%(asctime)-15s %(levelname)s  %(message)s", "%a %d %b %Y %H:%M:%S")
        )
        file.addFilter(RemoveColorFilter())
        handlers.append(file)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_rlmm", False)]:
        root.removeHandler(handler)  # the previous run's (compare, tune: many runs, one process)
        handler.close()
    for handler in handlers:
        handler._rlmm = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    return path

def metrics_line(result: Any) -> str:
    """``recall@10 : 0.117    recall@20 : ...`` (RecBole's ``dict2str``, as its valid lines)."""

    return dict2str(result) if isinstance(result, dict) else str(result)

def silence_recbole_warnings() -> None:
    """Quiet third-party deprecation noise that RecBole 1.2.1 triggers on current libraries."""

    for category, pattern in (
        (FutureWarning, ".*GradScaler.*"),
        (UserWarning, ".*non-writable tensors.*"),
        (UserWarning, ".*not writable.*"),
        (UserWarning, ".*Sparse invariant checks.*"),
    ):
        warnings.filterwarnings("ignore", message=pattern, category=category)
    # RecBole's dataset.py still calls chained fillna(inplace=True); compat fills correctly
    warnings.filterwarnings("ignore", message=".*chained assignment.*")
    logging.getLogger("PIL").setLevel(logging.WARNING)
