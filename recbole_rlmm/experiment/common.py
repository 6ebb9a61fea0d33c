"""Shared machinery of ``compare`` and ``tune``.

* ``--set key=value`` overrides and RecBole-compatible YAML reading;
* building a RecBole ``Config`` exactly as :func:`recbole_rlmm.runner.run_recbole_rlmm`
  will, but without the process's own command line leaking into it;
* a JSON fingerprint of a resolved config, to decide whether a stored run still matches;
* JSON reading and the JSON-safe summary of one run;
* mean / standard deviation over seeds and a progress line with an ETA;
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from recbole_rlmm.config import create_config
from recbole_rlmm.data.io import jsonable
from recbole_rlmm.errors import UserError
from recbole_rlmm.keys.sources import parse_value
from recbole_rlmm.registry import UnknownModelError

#: Test metrics every comparison reports (RecBole's lower-case result keys).
REPORT_METRICS: tuple[str, ...] = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
#: Test metrics drawn in ``results.png``.
PLOT_METRICS: tuple[str, ...] = ("recall@20", "ndcg@20")
#: A run whose best epoch is below this fraction of its epoch budget is flagged.
EARLY_STOP_FRACTION: float = 0.2

#: Settings that ``compare`` keeps identical for every model: the data and its split, the
#: training negative sampler, the evaluator and the training schedule / patience. ``tune``
#: refuses to search them, so that a tuned config never changes them for one model.
FAIR_KEYS: tuple[str, ...] = (
    "data_path",
    "benchmark_filename",
    "user_inter_num_interval",
    "item_inter_num_interval",
    "val_interval",
    "rm_dup_inter",
    "filter_inter_by_user_or_item",
    "eval_args",
    "repeatable",
    "train_neg_sample_args",
    "valid_neg_sample_args",
    "test_neg_sample_args",
    "metrics",
    "topk",
    "valid_metric",
    "valid_metric_bigger",
    "epochs",
    "eval_step",
    "stopping_step",
    "reproducibility",
)

_METRIC_NAMES = {
    "recall": "Recall",
    "ndcg": "NDCG",
    "precision": "Precision",
    "mrr": "MRR",
    "hit": "Hit",
    "map": "MAP",
    "itemcoverage": "ItemCoverage",
}


class ExperimentError(UserError):
    """A problem with the request (unknown model, bad override, unfair setup...).

    Raised before any training starts; the command line prints it without a traceback.
    """


# --------------------------------------------------------------------------- values & yaml


def parse_overrides(items: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``["epochs=5", "--stopping_step=10"]`` -> ``{"epochs": 5, "stopping_step": 10}``.

    A mapping is returned as a plain dict unchanged (the Python API passes values directly).
    """
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise ExperimentError(f"override {item!r} is not of the form key=value")
        out[key] = parse_value(value.strip())
    return out


def metric_label(key: str) -> str:
    """``recall@20`` -> ``Recall@20``, ``ndcg@10`` -> ``NDCG@10``."""
    name, at, k = key.partition("@")
    return _METRIC_NAMES.get(name.lower(), name.capitalize()) + at + k


# --------------------------------------------------------------------------- configs


@contextmanager
def isolated_argv() -> Iterator[None]:
    """Hide the process's command line from RecBole while inside the block.

    RecBole's ``Config`` reads ``--key=value`` from ``sys.argv`` on its own; for ``compare``
    and ``tune`` every setting must come from their explicit arguments instead, so that the
    stored fingerprint describes exactly what ran.
    """
    saved = sys.argv
    sys.argv = saved[:1] or ["recbole-rlmm"]
    try:
        yield
    finally:
        sys.argv = saved


def build_config(
    model: str,
    dataset: str,
    config_files: Sequence[str] | None,
    config_dict: Mapping[str, Any] | None,
) -> Any:
    """The RecBole ``Config`` that ``run_recbole_rlmm`` would build for these arguments.

    An unknown model name becomes an :class:`ExperimentError`.
    """
    try:
        with isolated_argv():
            return create_config(model, dataset, list(config_files or []), dict(config_dict or {}))
    except UnknownModelError as exc:
        raise ExperimentError(str(exc)) from exc


# --------------------------------------------------------------------------- files


# --------------------------------------------------------------------------- results

#: Keys of ``run_recbole_rlmm``'s result kept in a run record (``config`` is dropped).
RESULT_KEYS: tuple[str, ...] = (
    "best_valid_score",
    "valid_score_bigger",
    "best_valid_result",
    "test_result",
    "n_params",
    "best_epoch",
    "epochs_run",
    "train_seconds_per_epoch",
    "eval_seconds",
)


def run_summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of a ``run_recbole_rlmm`` result (its ``config`` is dropped)."""
    out = {k: jsonable(result[k]) for k in RESULT_KEYS if k in result}
    for key in ("best_valid_result", "test_result"):
        out[key] = {str(k).lower(): v for k, v in (out.get(key) or {}).items()}
    return out


def score_key(score: float | None, bigger: bool) -> float:
    """A sort key where larger is better; a missing or NaN score ranks last."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return -math.inf
    return float(score) if bigger else -float(score)


def mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of the non-missing values.

    NaN mean without values; NaN std with fewer than two.
    """
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return math.nan, math.nan
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, math.nan
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, math.sqrt(var)


def format_duration(seconds: float) -> str:
    """``3725`` -> ``1:02:05``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Progress lines ``[i/n] ... (elapsed, ETA)`` for a batch of runs.

    ``total`` counts every item shown; ``to_run`` those that will actually train. The ETA is
    the mean duration of the runs finished so far times the runs still to train.
    """

    def __init__(self, total: int, to_run: int, echo: Callable[[str], None] = print) -> None:
        self.total = total
        self.to_run = to_run
        self.echo = echo
        self.start = time.perf_counter()
        self.durations: list[float] = []

    def eta(self) -> str:
        """Estimated time left, or ``?`` before the first run has finished."""
        if not self.durations:
            return "?"
        left = self.to_run - len(self.durations)
        return format_duration(left * sum(self.durations) / len(self.durations))

    def show(self, index: int, text: str) -> None:
        """Print ``[index/total] text``."""
        self.echo(f"[{index}/{self.total}] {text}")

    def begin(self, index: int, text: str) -> float:
        """Announce a run that is about to train; returns its start time."""
        elapsed = format_duration(time.perf_counter() - self.start)
        self.show(
            index,
            f"{text} (training {len(self.durations) + 1} of {self.to_run}; "
            f"elapsed {elapsed}, ETA {self.eta()})",
        )
        return time.perf_counter()

    def end(self, started: float) -> float:
        """Record a finished run; returns its duration in seconds."""
        seconds = time.perf_counter() - started
        self.durations.append(seconds)
        return seconds


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` when ``threads`` is given (not None or 0)."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))
