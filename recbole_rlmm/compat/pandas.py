"""pandas 3: copy-on-write ``fillna`` and per-row ``agg(len)`` in ``token_seq``/``float_seq`` handling."""

from __future__ import annotations

import types
from typing import Any

from recbole_rlmm.compat.stack import ModuleProxy, pandas_agg_len_per_row, pandas_copy_on_write


def fillna(ds_module: types.ModuleType) -> None:
    """pandas copy-on-write makes ``df[col].fillna(..., inplace=True)`` a no-op.

    Breakage: ``Dataset._fill_nan`` (missing token -> 0, missing float -> column mean) and
    ``Dataset._load_feat`` (missing sequence -> "") leave NaN in place under pandas 3, which
    later crashes or silently corrupts remapping. Repair: ``_fill_nan`` assigns the filled
    column back (a sequence column is rebuilt as an object column of 1-d arrays rather than
    with ``Series.apply``, which unboxes 0-d arrays); ``_load_feat`` gets a ``read_csv`` that
    fills its sequence columns. Both only under copy-on-write; otherwise RecBole's own code runs.
    """
    import numpy as np
    from recbole.utils import FeatureType, set_color

    original_fill_nan = ds_module.Dataset._fill_nan
    if getattr(original_fill_nan, "_rlmm", False):
        return

    def _fill_nan(self: Any) -> None:
        if not pandas_copy_on_write():
            return original_fill_nan(self)
        self.logger.debug(set_color("Filling nan", "green"))
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
                    feat[field] = _object_column(
                        [np.array([], dtype=dtype) if isinstance(x, float) else x for x in feat[field].values],
                        feat.index,
                    )
        return None

    _fill_nan._rlmm = True  # type: ignore[attr-defined]
    ds_module.Dataset._fill_nan = _fill_nan

    # ``_load_feat`` reads with ``pd.read_csv`` then runs ``df[seq].fillna("", inplace=True)``
    # before splitting sequences; under copy-on-write an empty sequence cell stays NaN and
    # ``NaN.split`` raises. The dataset module gets a pandas namespace whose ``read_csv``
    # fills the ``*_seq`` columns (header ``name:token_seq`` / ``name:float_seq``) with "".
    if not isinstance(ds_module.pd, ModuleProxy):
        real_pd = ds_module.pd

        def read_csv(*args: Any, **kwargs: Any) -> Any:
            df = real_pd.read_csv(*args, **kwargs)
            if not pandas_copy_on_write():
                return df  # RecBole's own fillna works
            for column in df.columns:
                if isinstance(column, str) and column.endswith("_seq"):
                    df[column] = df[column].fillna("")
            return df

        ds_module.pd = ModuleProxy(real_pd, read_csv=read_csv)

def _seq_lengths(column: Any) -> list[int]:
    """The length of every sequence in a ``token_seq``/``float_seq`` column (RecBole's
    ``column.agg(len)`` under pandas < 3)."""
    return [len(x) for x in column.values]

def _object_column(seqs: list, index: Any) -> Any:
    """An object Series holding one 1-d array per row, whatever the arrays' lengths.

    pandas >= 3 stores a one-element array set with ``Series.iat``/``iloc`` as a 0-d array,
    which later ``Series.apply``/``map`` unbox to a Python scalar; a numpy object array keeps
    every sequence a 1-d array.
    """
    import numpy as np
    import pandas as pd

    values = np.empty(len(seqs), dtype=object)
    for i, seq in enumerate(seqs):
        values[i] = seq
    return pd.Series(values, index=index, dtype=object)

def token_seq_remap(ds_module: types.ModuleType) -> None:
    """pandas 3 ``Series.agg(len)`` is the length of the Series, not of each sequence.

    Breakage: ``Dataset._remap`` splits the remapped ids of a ``token_seq`` field at
    ``np.cumsum(feat[field].agg(len))[:-1]``; pandas 3 no longer falls back to an elementwise
    ``agg``, so that is one split point too few and assigning the single piece raises "Length
    of values (1) does not match length of index". Repair: the same remapping (one
    ``pd.factorize`` over all remapped fields) split at the per-row lengths, each sequence
    stored as a 1-d array in an object column (not via ``Series.iat``, which stores a
    one-token sequence as a 0-d array that ``_fill_nan``'s ``Series.apply`` turns into an int:
    "'int' object is not subscriptable" in ``_dataframe_to_interaction``). Only where
    ``Series.agg(len)`` is not per row; otherwise RecBole's own ``_remap`` runs.
    """
    import numpy as np
    import pandas as pd
    from recbole.utils import FeatureType

    original_remap = ds_module.Dataset._remap
    if getattr(original_remap, "_rlmm", False):
        return

    def _remap(self: Any, remap_list: list) -> None:
        if pandas_agg_len_per_row():
            return original_remap(self, remap_list)
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
                split_point = np.cumsum(_seq_lengths(feat[field]))[:-1]
                feat[field] = _object_column(np.split(new_ids, split_point), feat.index)
        return None

    _remap._rlmm = True  # type: ignore[attr-defined]
    ds_module.Dataset._remap = _remap

def float_seq_split(ds_module: types.ModuleType) -> None:
    """pandas 3 ``Series.agg(len)`` again: ``float_seq`` normalisation and discretisation.

    Breakage: ``Dataset._normalize`` (``normalize_all``/``normalize_field``) and
    ``Dataset._discretization`` (``numerical_features``) rebuild a ``float_seq`` field by
    splitting the concatenated values at ``np.cumsum(feat[field].agg(len))[:-1]``, which under
    pandas 3 is the length of the Series, so they raise "Length of values (1) does not match
    length of index". Repair: both methods as RecBole wrote them, splitting at the per-row
    lengths; token and float fields, the checks and the warnings are unchanged. Only where
    ``Series.agg(len)`` is not per row; otherwise RecBole's own methods run.
    """
    import numpy as np
    from recbole.utils import FeatureType, set_color

    original_normalize = ds_module.Dataset._normalize
    original_discretization = ds_module.Dataset._discretization
    if getattr(original_normalize, "_rlmm", False):
        return

    def _split(values: Any, column: Any) -> list:
        return np.split(values, np.cumsum(_seq_lengths(column))[:-1])

    def _normalize(self: Any) -> None:
        if pandas_agg_len_per_row():
            return original_normalize(self)
        if self.config["normalize_field"] is not None and self.config["normalize_all"] is True:
            raise ValueError("Normalize_field and normalize_all can't be set at the same time.")
        if self.config["normalize_field"]:
            fields = self.config["normalize_field"]
            for field in fields:
                if field not in self.field2type:
                    raise ValueError(f"Field [{field}] does not exist.")
                ftype = self.field2type[field]
                if ftype != FeatureType.FLOAT and ftype != FeatureType.FLOAT_SEQ:
                    self.logger.warning(f"{field} is not a FLOAT/FLOAT_SEQ feat, which will not be normalized.")
        elif self.config["normalize_all"]:
            fields = self.float_like_fields
        else:
            return
        self.logger.debug(set_color("Normalized fields", "blue") + f": {fields}")
        for field in fields:
            for feat in self.field2feats(field):

                def norm(arr: Any, field: str = field, feat: Any = feat) -> Any:
                    mx, mn = max(arr), min(arr)
                    if mx == mn:
                        self.logger.warning(f"All the same value in [{field}] from [{feat}_feat].")
                        return np.ones_like(arr, dtype=np.float64)  # RecBole: ``arr = 1.0``
                    return (arr - mn) / (mx - mn)

                ftype = self.field2type[field]
                if ftype == FeatureType.FLOAT:
                    feat[field] = norm(feat[field].values)
                elif ftype == FeatureType.FLOAT_SEQ:
                    seqs = _split(norm(np.concatenate(list(feat[field].values))), feat[field])
                    feat[field] = _object_column(seqs, feat.index)

    def _discretization(self: Any) -> None:
        if pandas_agg_len_per_row():
            return original_discretization(self)
        dis_info = {}
        if self.config["discretization"]:
            dis_info = self.config["discretization"]
            for field in list(dis_info.keys()):
                if field not in self.field2type:
                    raise ValueError(f"Field [{field}] does not exist.")
                if field not in self.config["numerical_features"]:
                    raise ValueError(f"Field [{field}] must be a numerical feature")
                ftype = self.field2type[field]
                if ftype != FeatureType.FLOAT and ftype != FeatureType.FLOAT_SEQ:
                    self.logger.warning(f"{field} is not a FLOAT/FLOAT_SEQ feat, which will not be normalized.")
                    del dis_info[field]
            self.logger.debug(set_color("Normalized fields", "blue") + f": {dis_info.keys()}")

        for field in self.config["numerical_features"]:
            ftype = self.field2type[field]
            if field in dis_info:
                info = dis_info[field]
                method = info["method"]
                bucket = None
                if method == "ED":
                    if "bucket" not in info:
                        raise ValueError("The number of buckets must be set when apply equal discretization.")
                    bucket = info["bucket"]
                for feat in self.field2feats(field):

                    def disc(arr: Any, method: str, bucket: Any, field: str = field, feat: Any = feat) -> tuple:
                        if method == "ED":  # Equal Distance/Frequency Discretization.
                            lower, upper = min(arr), max(arr) + 1e-9
                            if upper != lower:
                                arr = np.floor((arr - lower) * bucket / (upper - lower) + 1)
                            else:
                                self.logger.warning(f"All the same value in [{field}] from [{feat}_feat].")
                                arr = np.ones_like(arr) * bucket
                        elif method == "LD":  # Logarithm Discretization
                            mask = arr > 2
                            x = np.floor(np.log(arr * mask + 1e-9) ** 2 + 1)
                            x = np.where(mask, x, arr)
                            _, arr = np.unique(x, return_inverse=True)
                        else:
                            raise ValueError(f"Method [{method}] does not exist.")
                        return arr, int(max(arr) + 1)

                    if ftype == FeatureType.FLOAT:
                        res, self.field2bucketnum[field] = disc(feat[field].values, method, bucket)
                        feat[field] = np.stack([np.ones_like(res), res], axis=-1).tolist()
                    elif ftype == FeatureType.FLOAT_SEQ:
                        res, self.field2bucketnum[field] = disc(
                            np.concatenate(list(feat[field].values)), method, bucket
                        )
                        ret = np.ones_like(res)
                        feat[field] = list(zip(_split(ret, feat[field]), _split(res, feat[field])))
            else:
                for feat in self.field2feats(field):
                    if ftype == FeatureType.FLOAT:
                        feat[field] = np.stack([feat[field], np.ones_like(feat[field])], axis=-1).tolist()
                    else:
                        ret = np.concatenate(list(feat[field].values))
                        res = np.ones_like(ret)
                        feat[field] = list(zip(_split(ret, feat[field]), _split(res, feat[field])))

    _normalize._rlmm = True  # type: ignore[attr-defined]
    ds_module.Dataset._normalize = _normalize
    ds_module.Dataset._discretization = _discretization
