"""Where the inference commands write (light: no torch, no RecBole).

Files are never overwritten silently: an output folder must be new or empty, and an output
file must not exist, unless ``overwrite`` is given. Every file is written atomically
(:mod:`recbole_rlmm.data.io`).
"""

from __future__ import annotations

from pathlib import Path

from recbole_rlmm.errors import UserError


class OutputExistsError(UserError):
    """The output would replace the user's files."""


def check_out_dir(path: str | Path, overwrite: bool = False, option: str = "--out") -> Path:
    """``path`` as a folder to write into: refused when it is a file, or a non-empty folder
    without ``overwrite`` (with it, only the files of the same names are replaced)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{option} {path} is a file; give a folder.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{option} {path} exists and is not empty; choose a new folder or pass --overwrite "
            "(Python: overwrite=True) to replace the files written there."
        )
    return path


def check_out_file(path: str | Path, overwrite: bool = False, option: str = "--out") -> Path:
    """``path`` as a file to write: refused when it is a folder, or exists without ``overwrite``."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{option} {path} is a folder; give a file name.")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{option} {path} exists; choose another name or pass --overwrite.")
    return path
