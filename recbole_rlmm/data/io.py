"""Writing files so that a reader never sees half of one.

Every file the package writes for later use (prepared datasets, run records, checkpoints)
goes through :func:`atomic_write`: the content is written to a temporary file in the target
folder, flushed to disk, then renamed over the final name. A failed or interrupted write
(full disk, killed process) leaves the previous file, if any, untouched.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a binary temporary file next to ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` (already JSON-safe) to ``path`` atomically, indented."""
    return write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def save_npy_atomic(path: str | Path, array: Any) -> Path:
    """``np.save`` without pickle, atomically."""
    import numpy as np

    return atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))
