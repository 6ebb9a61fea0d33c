"""Wall time and memory of the start-up phases of a run (features, feature reduction, kNN item
graphs), for the log and for ``bench/perf.py``.

``with phase("knn_graphs"):`` adds the block's seconds to a per-process total; :func:`totals`
reads them and :func:`reset` clears them (the benchmark resets before building a model).
:func:`peak_rss_mb` is the process's peak resident memory so far (``VmHWM``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

_TOTALS: dict[str, float] = {}


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the wall time of the block to the total of ``name`` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        _TOTALS[name] = _TOTALS.get(name, 0.0) + time.perf_counter() - start


def totals() -> dict[str, float]:
    """Seconds spent in each phase since the last :func:`reset`."""
    return dict(_TOTALS)


def reset() -> None:
    _TOTALS.clear()


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:  # not Linux
        return None
    return None


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MB (``VmHWM``; ``ru_maxrss`` where
    ``/proc`` is missing)."""
    kb = _status_kb("VmHWM")
    if kb is None:
        try:
            import resource
            import sys

            kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
        except (ImportError, OSError):
            return None
    return kb / 1024.0


def rss_mb() -> float | None:
    """Resident memory of this process now, in MB (``VmRSS``)."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0
