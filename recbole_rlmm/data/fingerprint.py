"""Which data a model was trained on: size and SHA-256 of every dataset and feature file.

Stored in checkpoints (a model loaded against changed files stops instead of scoring stale) and
in ``compare``'s run records (changed data retrains). Hashes are cached per process by path,
size and modification time, so a file is read once however often it is fingerprinted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recbole_rlmm.data.features import feature_sources
from recbole_rlmm.data.io import file_sha256

#: RecBole's atomic file suffixes.
ATOMIC_SUFFIXES = ("inter", "user", "item", "kg", "link", "net")



def dataset_files(config: Any) -> list[Path]:
    """The files a run of ``config`` reads: the dataset's atomic files (with the benchmark
    splits) and, for each configured modality, its feature file and item index."""
    folder = Path(config["data_path"])
    name = str(config["dataset"])
    files: list[Path] = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            parts = path.name.split(".")
            if path.is_file() and parts[0] == name and parts[-1] in ATOMIC_SUFFIXES:
                files.append(path)
    for feature, index in feature_sources(config):
        files.append(feature)
        if index is not None:
            files.append(index)
    return list(dict.fromkeys(files))


def data_fingerprint(config: Any) -> dict[str, dict[str, Any]]:
    """``{file name: {"size": bytes, "sha256": hex}}`` of :func:`dataset_files` (missing files
    are listed with size -1)."""
    out: dict[str, dict[str, Any]] = {}
    for path in dataset_files(config):
        key = os.path.relpath(path, Path(config["data_path"]))
        if path.is_file():
            out[key] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
        else:
            out[key] = {"size": -1, "sha256": ""}
    return out


def changed_files(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Files added, removed or changed between two fingerprints."""
    return sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
