"""Writing files so that a reader never sees half of one.

Every file the package writes for later use (prepared datasets, run records, checkpoints)
goes through :func:`atomic_write`: the content is written to a temporary file in the target
folder, flushed to disk, then renamed over the final name. A failed or interrupted write
(full disk, killed process) leaves the previous file, if any, untouched, and a write the
system refuses (no space, quota, file-size limit, permission) is a :class:`WriteError` naming
the file, the reason and the fix.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import IO, Any

from recbole_rlmm.errors import UserError

#: SHA-256 of files already hashed: (path, size, mtime) -> digest.
_HASHES: dict[tuple[str, int, int], str] = {}


class WriteError(UserError):
    """The system refused to write a file; the message names the file, the reason and the fix."""


def _refusal(exc: BaseException, folder: Path, written: int) -> str | None:
    """Why the system refused a write, with the fix, or None when ``exc`` is no refusal.

    torch's zip writer reports a refused write as ``RuntimeError: ... unexpected pos``, without
    the errno; the reason is then read from the file system and the process's limits."""
    import errno
    import resource

    code = exc.errno if isinstance(exc, OSError) else None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    try:
        stats = os.statvfs(folder)
        free = stats.f_bavail * stats.f_frsize
    except OSError:
        free = None
    if code == errno.EDQUOT:
        return "the disk quota is used up; free space within your quota, or write to another folder"
    if code == errno.EFBIG or (
        code is None and limit != resource.RLIM_INFINITY and written + (1 << 20) >= limit
    ):
        return (
            f"the file would exceed this process's file-size limit ({limit:,} bytes, `ulimit -f`); "
            "raise the limit, or write to another file system"
        )
    if code == errno.ENOSPC or (code is None and free is not None and free < (1 << 20)):
        shown = f" ({free / 2**20:.1f} MiB free)" if free is not None else ""
        return f"no space left on the device{shown}; free some space there, or write to another folder"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (or a read-only file system); write to a folder you can write to"
    return None


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a binary temporary file next to ``path``, then rename it to ``path``.

    A write the system refuses raises :class:`WriteError` (the previous ``path``, if any, is
    intact and no temporary file is left)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        reason = _refusal(exc, path.parent, written) if isinstance(exc, (OSError, RuntimeError)) else None
        if reason is None:
            raise
        kept = " (the previous file is intact)" if path.exists() else ""
        raise WriteError(f"cannot write {path}{kept}: {reason}.") from exc
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def jsonable(value: Any) -> Any:
    """A JSON-safe copy: containers recursively, numpy scalars as numbers, NaN as None,
    anything else (enums, devices) as its string."""
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return jsonable(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data``, made JSON-safe by :func:`jsonable`, to ``path`` atomically, indented."""
    return write_text_atomic(path, json.dumps(jsonable(data), indent=2) + "\n")


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when the file is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_npy_atomic(path: str | Path, array: Any) -> Path:
    """``np.save`` without pickle, atomically."""
    import numpy as np

    return atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content (cached by path, size and mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]
