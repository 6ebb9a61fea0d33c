"""Small, targeted fixes that make RecBole 1.2.1 work on today's scientific stack.

RecBole 1.2.1 is the latest release and is no longer maintained. On a fresh install it
meets numpy 2, pandas 3 (copy-on-write), scipy >= 1.12 and torch >= 2.6, each of which
breaks one of its code paths. Pinning all four to 2023 versions would make us impossible
to install next to anything else, so we pin only RecBole itself (``recbole==1.2.1``) and
patch the few broken functions here, applied once when :mod:`recbole_rlmm` is imported.
Every patch is idempotent, touches only RecBole objects (never numpy/pandas/scipy/torch
behaviour seen by other code, except re-adding numpy's removed aliases that RecBole's own
``Config`` writes into numpy anyway) and is covered by ``tests/test_compat.py``.

RecBole's own quick_start module is never imported: it imports ray 2.6.3 at module level, which
needs ``pkg_resources`` and ``np.bool8``. :mod:`recbole_rlmm.quick_start` replaces it.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recbole_rlmm.model.graph.user_item import norm_adj_matrix

APPLIED: list[str] = []


class _ModuleProxy(types.ModuleType):
    """A stand-in for a module inside one RecBole module: overrides some names, forwards the rest."""

    def __init__(self, real: types.ModuleType, **overrides: Any) -> None:
        super().__init__(real.__name__)
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _numpy_aliases() -> None:
    """numpy 2 removed ``np.float_``/``np.complex_``/``np.unicode_``.

    Breakage: ``Config.compatibility_settings`` reads ``np.float_`` (AttributeError on
    numpy >= 2) to write the aliases ``np.float``/``np.int``/... that the rest of RecBole
    (metrics, interaction, dataset) uses. Fix: replace that method with one that writes
    the same aliases from names that exist in numpy 1 and 2, only where missing.
    """
    from recbole.config import configurator

    def compatibility_settings(self: Any) -> None:  # noqa: ARG001 - method signature
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

    configurator.Config.compatibility_settings = compatibility_settings
    compatibility_settings(None)


def _norm_adj(self: Any) -> torch.Tensor:
    """RecBole's ``get_norm_adj_mat`` (same matrix, same 1e-7 epsilon) without ``dok_matrix``."""
    return norm_adj_matrix(self.interaction_matrix, self.n_users, self.n_items)


def _dok_update() -> None:
    """scipy >= 1.12 removed ``dok_matrix._update``.

    Breakage: the built-in LightGCN, NGCF and NCL build their normalised adjacency with
    ``A._update(dict)`` (AttributeError). Fix: give those models a COO implementation of
    ``get_norm_adj_mat`` that yields the same matrix (checked in tests against a dense
    reference). Other built-ins (GCMC, SpectralCF, KGIN, MCCLK) build different matrices;
    for them ``dok_matrix._update`` is restored, only when scipy lacks it, as a loop of
    item assignments (same result, slower).
    """
    from recbole.model.general_recommender import lightgcn, ncl, ngcf

    for cls in (lightgcn.LightGCN, ngcf.NGCF, ncl.NCL):
        cls.get_norm_adj_mat = _norm_adj

    if not hasattr(sp.dok_matrix, "_update"):

        def _update(self: sp.dok_matrix, data: dict) -> None:
            for key, value in data.items():
                self[key] = value

        sp.dok_matrix._update = _update


def _torch_load() -> None:
    """torch >= 2.6 defaults ``torch.load(weights_only=True)``.

    Breakage: ``Trainer.evaluate(load_best_model=True)`` and ``Trainer.resume_checkpoint``
    load RecBole's own checkpoints, which pickle the ``Config`` object, so they fail with
    ``UnpicklingError``. Fix: the trainer module sees a ``torch`` namespace whose ``load``
    defaults to ``weights_only=False`` (these files are written by the same trainer).
    Global ``torch.load`` is left untouched.
    """
    from recbole.trainer import trainer

    if not isinstance(trainer.torch, _ModuleProxy):
        trainer.torch = _ModuleProxy(torch, load=functools.partial(torch.load, weights_only=False))


def _fillna() -> None:
    """pandas copy-on-write makes ``df[col].fillna(..., inplace=True)`` a no-op.

    Breakage: ``Dataset._fill_nan`` (missing token -> 0, missing float -> column mean) and
    ``Dataset._load_feat`` (missing sequence -> "") leave NaN in place under pandas 3, which
    later crashes or silently corrupts remapping. Fix: ``_fill_nan`` assigns the filled
    column back; ``_load_feat`` gets a ``read_csv`` that fills its sequence columns.
    """
    from recbole.data.dataset import dataset as ds_module
    from recbole.utils import FeatureType

    def _fill_nan(self: Any) -> None:
        for feat_name in self.feat_name_list:
            feat = getattr(self, feat_name)
            for field in feat:
                ftype = self.field2type[field]
                if ftype == FeatureType.TOKEN:
                    feat[field] = feat[field].fillna(value=0)
                elif ftype == FeatureType.FLOAT:
                    feat[field] = feat[field].fillna(value=feat[field].mean())
                else:
                    dtype = np.int64 if ftype == FeatureType.TOKEN_SEQ else np.float64
                    feat[field] = feat[field].apply(
                        lambda x, dtype=dtype: np.array([], dtype=dtype) if isinstance(x, float) else x
                    )

    ds_module.Dataset._fill_nan = _fill_nan

    # ``_load_feat`` reads with ``pd.read_csv`` then runs ``df[seq].fillna("", inplace=True)``
    # before splitting sequences; under copy-on-write an empty sequence cell stays NaN and
    # ``NaN.split`` raises. The dataset module gets a pandas namespace whose ``read_csv``
    # fills the ``*_seq`` columns (header ``name:token_seq`` / ``name:float_seq``) with "".
    if not isinstance(ds_module.pd, _ModuleProxy):
        real_pd = ds_module.pd

        def read_csv(*args: Any, **kwargs: Any) -> Any:
            df = real_pd.read_csv(*args, **kwargs)
            for column in df.columns:
                if isinstance(column, str) and column.endswith("_seq"):
                    df[column] = df[column].fillna("")
            return df

        ds_module.pd = _ModuleProxy(real_pd, read_csv=read_csv)


def _token_seq_remap() -> None:
    """pandas 3 cannot assign a list of equal-length arrays as an object column.

    Breakage: ``Dataset._remap`` stores remapped ``token_seq`` fields with
    ``feat[field] = np.split(...)``; pandas 3 reads that list as a 2-D block and raises
    "Length of values does not match length of index". Fix: the same remapping (one
    ``pd.factorize`` over all remapped fields), storing each sequence in an object Series.
    """
    import pandas as pd
    from recbole.data.dataset import dataset as ds_module
    from recbole.utils import FeatureType

    def _remap(self: Any, remap_list: list) -> None:
        if len(remap_list) == 0:
            return
        tokens, split_point = self._concat_remaped_tokens(remap_list)
        new_ids_list, mp = pd.factorize(tokens)
        new_ids_list = np.split(new_ids_list + 1, split_point)
        mp = np.array(["[PAD]", *list(mp)])
        token_id = {t: i for i, t in enumerate(mp)}
        for (feat, field, ftype), new_ids in zip(remap_list, new_ids_list):
            if field not in self.field2id_token:
                self.field2id_token[field] = mp
                self.field2token_id[field] = token_id
            if ftype == FeatureType.TOKEN:
                feat[field] = new_ids
            elif ftype == FeatureType.TOKEN_SEQ:
                lengths = [len(x) for x in feat[field].values]
                seqs = np.split(new_ids, np.cumsum(lengths)[:-1])
                column = pd.Series([None] * len(seqs), index=feat.index, dtype=object)
                for i, seq in enumerate(seqs):
                    column.iat[i] = seq
                feat[field] = column

    ds_module.Dataset._remap = _remap


def apply() -> list[str]:
    """Apply every patch once; returns the names of the patches applied."""
    if APPLIED:
        return APPLIED
    for patch in (_numpy_aliases, _dok_update, _torch_load, _fillna, _token_seq_remap):
        patch()
        APPLIED.append(patch.__name__.lstrip("_"))
    return APPLIED
