"""numpy 2 and scipy >= 1.12: the removed numpy aliases, numpy scalar reprs in result lines, and ``dok_matrix._update``."""

from __future__ import annotations

import types
from typing import Any

from recbole_rlmm.compat.stack import (
    numpy_needs_aliases,
    numpy_scalar_reprs,
    scipy_lacks_dok_update,
)


def numpy_aliases(configurator: types.ModuleType) -> None:
    """numpy 2 removed ``np.float_``/``np.complex_``/``np.unicode_``.

    Breakage: ``Config.compatibility_settings`` reads ``np.float_`` (AttributeError on
    numpy >= 2) to write the aliases ``np.float``/``np.int``/... that the rest of RecBole
    (metrics, interaction, dataset) uses. Repair, on numpy >= 2 only: the method writes the
    same aliases from names that numpy 2 has, only where missing. On numpy 1 RecBole's own
    method runs. Also, RecBole writes the aliases only when it builds a ``Config``; a model
    loaded with ``load_data_and_model`` (whose ``Config`` is unpickled, not built) then fails in
    its metrics (``np.float``) on any numpy >= 1.24, so they are written when RecBole's
    configurator is imported.
    """
    import numpy as np

    original = configurator.Config.compatibility_settings
    if getattr(original, "_rlmm", False):
        return

    def compatibility_settings(self: Any) -> None:
        if not numpy_needs_aliases():
            return original(self)
        aliases = {
            "bool": np.bool_,
            "int": np.int_,
            "float": np.float64,
            "complex": np.complex128,
            "object": np.object_,
            "str": np.str_,
            "long": np.int_,
            "unicode": np.str_,
        }
        for name, value in aliases.items():
            if name not in np.__dict__:
                setattr(np, name, value)
        return None

    compatibility_settings._rlmm = True  # type: ignore[attr-defined]
    configurator.Config.compatibility_settings = compatibility_settings
    # RecBole writes the aliases only when a Config is built, but a Config unpickled from a
    # checkpoint builds none: evaluating a loaded model then fails in its metrics on any numpy
    # >= 1.24 (``np.float``). The aliases are written now, as building a Config would.
    compatibility_settings(None)

def _norm_adj(self: Any) -> Any:
    """RecBole's ``get_norm_adj_mat`` (same matrix, same 1e-7 epsilon) without ``dok_matrix``."""
    from recbole_rlmm.graph.user_item import (
        norm_adj_matrix,  # lazy: import recbole_rlmm imports no torch
    )

    return norm_adj_matrix(self.interaction_matrix, self.n_users, self.n_items)

def dok_update(module: types.ModuleType) -> None:
    """scipy >= 1.12 removed ``dok_matrix._update``.

    Breakage: the built-in LightGCN, NGCF and NCL build their normalised adjacency with
    ``A._update(dict)`` (AttributeError). Repair, only where scipy lacks ``_update``: those
    models get a COO implementation of ``get_norm_adj_mat`` that yields the same matrix
    (checked in tests against a dense reference, and against RecBole's own method on a scipy
    that has ``_update``); for the other built-ins (GCMC, SpectralCF, KGIN, MCCLK), which build
    other matrices, ``dok_matrix._update`` is restored as a loop of item assignments (same
    result, slower). Where scipy has ``_update``, RecBole's own code runs.
    """
    if not scipy_lacks_dok_update():
        return
    import scipy.sparse as sp

    for name in ("LightGCN", "NGCF", "NCL"):
        if hasattr(module, name):
            getattr(module, name).get_norm_adj_mat = _norm_adj

    def _update(self: sp.dok_matrix, data: dict) -> None:
        for key, value in data.items():
            self[key] = value

    sp.dok_matrix._update = _update

def metric_values(evaluator: types.ModuleType) -> None:
    """numpy 2 shows a scalar's type in its repr.

    Breakage: RecBole rounds every metric to a numpy float64 and logs its result dicts with
    their repr, so under numpy 2 the ``best valid`` and ``test result`` lines read
    ``OrderedDict([('recall@10', np.float64(0.117)), ...])`` instead of
    ``OrderedDict([('recall@10', 0.117), ...])``. Repair, on numpy >= 2 only:
    ``Evaluator.evaluate`` returns the same values as Python floats (equal values, equal
    ``str``; a float64 is a Python float), so the lines read as on numpy 1.
    """
    import numpy as np

    original = evaluator.Evaluator.evaluate
    if getattr(original, "_rlmm", False) or not numpy_scalar_reprs():
        return

    def evaluate(self: Any, dataobject: Any) -> Any:
        result = original(self, dataobject)
        for key, value in result.items():
            if isinstance(value, np.floating):
                result[key] = float(value)
        return result

    evaluate._rlmm = True  # type: ignore[attr-defined]
    evaluator.Evaluator.evaluate = evaluate
