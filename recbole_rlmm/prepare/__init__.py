"""``recbole-rlmm prepare``: turn raw multimodal data into a ready RecBole dataset.

Three paths share one output format (see :mod:`recbole_rlmm.prepare.atomic` and
``docs/DATA.md``):

* ``prepare mmrec DIR``: an MMRec data folder (``NAME.inter`` + ``*_feat.npy``);
* ``prepare table --inter X.csv --items Y.csv --images DIR``: generic tables + posters;
* ``prepare amazon --reviews ... --meta ...``: raw Amazon review dumps (2014 or 2018).

The command line is :mod:`recbole_rlmm.cli.prepare`; the Python functions :func:`prepare_mmrec`, :func:`prepare_table` and :func:`prepare_amazon` do the
same work from code.
"""

from __future__ import annotations

import importlib
from typing import Any

from .defaults import DEFAULT_SPLIT_RATIO, FEATURES_EXTRA, SPLITS

#: Public names imported on first use (the prepare code needs pandas and numpy).
_LAZY = {
    "PrepareError": "recbole_rlmm.prepare.atomic",
    "prepare_amazon": "recbole_rlmm.prepare.amazon",
    "prepare_mmrec": "recbole_rlmm.prepare.mmrec",
    "prepare_table": "recbole_rlmm.prepare.table",
}

__all__ = [
    "DEFAULT_SPLIT_RATIO",
    "FEATURES_EXTRA",
    "SPLITS",
    "PrepareError",
    "prepare_amazon",
    "prepare_mmrec",
    "prepare_table",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recbole_rlmm.prepare' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
