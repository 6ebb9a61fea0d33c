"""What this stack needs: version and behaviour probes of numpy, scipy, pandas and torch, and the module proxy the repairs use."""

from __future__ import annotations

import functools
import re
import types
from typing import Any


class ModuleProxy(types.ModuleType):
    """A stand-in for a module inside one RecBole module: overrides some names, forwards the rest."""

    def __init__(self, real: types.ModuleType, **overrides: Any) -> None:
        super().__init__(real.__name__)
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

def _version(module: types.ModuleType) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", module.__version__)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)

def numpy_needs_aliases() -> bool:
    """numpy >= 2 removed ``np.float_``, ``np.complex_`` and ``np.unicode_``."""
    import numpy as np

    return not all(hasattr(np, name) for name in ("float_", "complex_", "unicode_"))

def numpy_scalar_reprs() -> bool:
    """numpy >= 2 shows a scalar's type in its repr (``np.float64(0.117)``)."""
    import numpy as np

    return repr(np.float64(0.5)) != "0.5"

@functools.lru_cache(maxsize=1)
def scipy_lacks_dok_update() -> bool:
    """scipy >= 1.12 removed ``dok_matrix._update`` (read before the repair restores it)."""
    import scipy.sparse as sp

    return not hasattr(sp.dok_matrix, "_update")

def torch_loads_weights_only() -> bool:
    """torch >= 2.6 loads with ``weights_only=True`` unless told otherwise."""
    import torch

    return _version(torch) >= (2, 6)

def pandas_copy_on_write() -> bool:
    """Copy-on-write (pandas >= 3, or switched on in pandas 2): chained ``fillna(inplace=True)``
    does nothing. Read at each call: pandas 2 can switch it on at run time."""
    import pandas as pd

    if _version(pd) >= (3, 0):
        return True
    try:
        return pd.options.mode.copy_on_write is True
    except (AttributeError, KeyError):  # pragma: no cover - pandas < 1.5
        return False

@functools.lru_cache(maxsize=1)
def pandas_agg_len_per_row() -> bool:
    """Whether ``Series.agg(len)`` gives each row's length (pandas < 3) rather than the
    Series' length (pandas >= 3), as RecBole's sequence code expects."""
    import numpy as np
    import pandas as pd

    column = pd.Series([np.array([1, 2]), np.array([3]), np.array([4, 5, 6])], dtype=object)
    try:
        lengths = column.agg(len)
    except Exception:  # noqa: BLE001 - any failure means RecBole's code would fail too
        return False
    return isinstance(lengths, pd.Series) and list(lengths) == [2, 1, 3]
