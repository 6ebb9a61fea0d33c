"""The end of a benchmark script: its table printed, and its rows written as JSON with ``--out``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def finish(rows: list[dict], markdown: Callable[[list[dict]], str], out: Path | None, title: str | None = None) -> int:
    """Print ``title`` (if any) and ``markdown(rows)``; write ``rows`` to ``out`` atomically; 0."""
    print()
    if title:
        print(title)
    print(markdown(rows), end="")
    if out is not None:
        from recbole_rlmm.data.io import write_text_atomic

        write_text_atomic(out, json.dumps(rows, indent=1) + "\n")
    return 0
