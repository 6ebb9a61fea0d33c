"""Plain-text rendering of run results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def metric_table(result: Mapping[str, float], title: str = "") -> str:
    """A table with one row per metric family and one column per cut-off, e.g. Recall@10."""
    by_metric: dict[str, dict[int, float]] = {}
    for key, value in result.items():
        name, _, k = str(key).partition("@")
        if k.isdigit():
            by_metric.setdefault(name, {})[int(k)] = float(value)
    cutoffs = sorted({k for values in by_metric.values() for k in values})
    header = ["metric", *[f"@{k}" for k in cutoffs]]
    rows = [[name, *[f"{values[k]:.4f}" if k in values else "" for k in cutoffs]] for name, values in by_metric.items()]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def format_result(result: Mapping[str, Any]) -> str:
    """Summary printed at the end of ``run``: best epoch, training and evaluation time, and
    the validation and test metric tables."""
    processes = int(result.get("world_size", 1) or 1)
    head = (
        f"{result['model']} on {result['dataset']}: best epoch {result['best_epoch']} of "
        f"{result['epochs_run']}, {result['n_params']:,} parameters"
        + (f", {processes} processes" if processes > 1 else "")
        + "\n"
        f"time: training {result['train_seconds_per_epoch']:.2f} s/epoch "
        f"({result.get('train_seconds', 0.0):.1f} s in all), validation "
        f"{result.get('valid_seconds', 0.0):.1f} s in all, test evaluation "
        f"{result['eval_seconds']:.2f} s"
    )
    content = [result["content"]] if result.get("content") else []
    return "\n".join(
        [
            head,
            *content,
            metric_table(result.get("best_valid_result") or {}, "validation (best epoch)"),
            metric_table(result.get("test_result") or {}, "test"),
        ]
    )
