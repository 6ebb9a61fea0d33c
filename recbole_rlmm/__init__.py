"""recbole-rlmm: multimodal recommendation for RecBole.

Importing the package applies the repairs of :mod:`recbole_rlmm.compat`: what breaks in plain
RecBole 1.2.1 on today's stack (numpy 2, pandas 3, scipy >= 1.12, torch >= 2.6), each only where
the stack needs it, and nothing else. RecBole modules are repaired when they are imported,
before or after this package. Nothing heavy is imported here; the names below load on first
use::

    from recbole_rlmm import RLMultimodalRec, VBPR, MMGCN, LATTICE, FREEDOM
    from recbole_rlmm import BM3, MGCN, LGMRec, SMORE, MENTOR
    from recbole_rlmm import run_recbole_rlmm                    # our runner, our defaults
    from recbole_rlmm import run_recbole, run, run_recboles, load_data_and_model  # RecBole's own
    from recbole_rlmm import Recommender     # top-K lists from a checkpoint
"""

from __future__ import annotations

import importlib
from typing import Any

from recbole_rlmm import compat as _compat

_compat.install()

__version__ = "0.2.0"

#: Public name -> module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "RLMultimodalRec": "recbole_rlmm.model.rlmultimodalrec",
    "VBPR": "recbole_rlmm.model.vbpr",
    "MMGCN": "recbole_rlmm.model.mmgcn",
    "LATTICE": "recbole_rlmm.model.lattice",
    "FREEDOM": "recbole_rlmm.model.freedom",
    "BM3": "recbole_rlmm.model.bm3",
    "MGCN": "recbole_rlmm.model.mgcn",
    "LGMRec": "recbole_rlmm.model.lgmrec",
    "SMORE": "recbole_rlmm.model.smore",
    "MENTOR": "recbole_rlmm.model.mentor",
    "run_recbole_rlmm": "recbole_rlmm.runner",
    "run_recbole": "recbole_rlmm.runner",
    "run_recboles": "recbole_rlmm.runner",
    "run": "recbole_rlmm.runner",
    "load_data_and_model": "recbole_rlmm.runner",
    "load_for_inference": "recbole_rlmm.runner",
    "make_plan": "recbole_rlmm.plan.plan",
    "apply_plan": "recbole_rlmm.plan.plan",
    "calibrate_cold_offset": "recbole_rlmm.runner.calibration",
    "create_config": "recbole_rlmm.config",
    "get_model": "recbole_rlmm.registry",
    "Recommender": "recbole_rlmm.inference.recommender",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recbole_rlmm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
