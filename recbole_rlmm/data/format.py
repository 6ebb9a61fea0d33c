"""The dataset file contract: what a dataset folder holds and how feature rows map to items.

``recbole-rlmm prepare`` writes it and the feature loader (:mod:`recbole_rlmm.data.features`)
reads it; both import the names below, so the two sides cannot drift apart::

    <data_path>/<name>/<name>.{train,valid,test}.inter   RecBole atomic files (tab-separated)
    <data_path>/<name>/<name>.item_index                 one item token per line
    <data_path>/<name>/<name>.<modality>.npy             one feature row per item_index line
    <data_path>/<name>/<name>.yaml                       the dataset's RecBole config

Rules:

* row ``r`` of a feature file belongs to the item token on line ``r + 1`` of the item index
  (``item_index_file`` overrides its name; without the file, row ``r`` belongs to token
  ``str(r)``, MMRec's convention);
* an all-zero row means the item lacks that modality (:func:`present_rows`);
* feature files are plain ``.npy`` arrays of one of :data:`FEATURE_FILE_DTYPES`, loaded without
  pickle;
* the dataset yaml names its modalities under :data:`MODALITIES_KEY`, each a file name
  relative to the dataset folder or a mapping ``{file: ..., index: ..., dim: ...}``.
"""

from __future__ import annotations

import numpy as np

#: The three splits of a prepared dataset, in RecBole's ``benchmark_filename`` order.
SPLITS: tuple[str, str, str] = ("train", "valid", "test")

#: Config key naming the modalities and their feature files.
MODALITIES_KEY = "modalities"
#: Config key overriding the item index file name (default :func:`item_index_file`).
ITEM_INDEX_KEY = "item_index_file"

#: dtypes a feature file may have (converted to float32 on load).
FEATURE_FILE_DTYPES: tuple[type, ...] = (np.float16, np.float32, np.float64)


def inter_file(name: str, split: str) -> str:
    """``<name>.<split>.inter``: one split's interactions."""
    return f"{name}.{split}.inter"


def item_index_file(name: str) -> str:
    """``<name>.item_index``: the item token of every feature row, one per line."""
    return f"{name}.item_index"


def feature_file(name: str, modality: str) -> str:
    """``<name>.<modality>.npy``: one feature row per item index line."""
    return f"{name}.{modality}.npy"


def config_file(name: str) -> str:
    """``<name>.yaml``: the dataset's own RecBole config."""
    return f"{name}.yaml"


def report_file(name: str) -> str:
    """``<name>.report.txt``: what ``prepare`` printed when it wrote the dataset."""
    return f"{name}.report.txt"


def present_rows(matrix: np.ndarray) -> np.ndarray:
    """Which rows carry the modality: any non-zero value (an all-zero row means missing)."""
    return np.any(matrix != 0, axis=1)
