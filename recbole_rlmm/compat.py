"""Repairs: what breaks, or is wrong, in plain RecBole 1.2.1 on today's scientific stack.

RecBole 1.2.1 is the latest release and is no longer maintained. On a fresh install it
meets numpy 2, pandas 3 (copy-on-write), scipy >= 1.12 and torch >= 2.6, each of which
breaks one of its code paths. Pinning all four to 2023 versions would make us impossible
to install next to anything else, so we pin only RecBole itself (``recbole==1.2.1``) and
repair the few broken functions here.

``import recbole_rlmm`` applies these repairs and nothing else. Each one changes only what
crashes or is wrong in plain RecBole on the stack it runs on; where the stack does not need a
repair (numpy 1, pandas 2 without copy-on-write, scipy < 1.12, torch < 2.6, a GPU), RecBole's
own code runs. Code that works in plain RecBole therefore behaves exactly as in plain RecBole:
same metrics, same files (RecBole's own pickled checkpoints), same data read, same errors.
``tests/test_compat.py`` tests each repair and ``tests/test_guest.py`` compares plain RecBole
with and without ``import recbole_rlmm`` in fresh processes (``noxfile.py`` runs that on
today's stack and on an older one).

Our own choices (the pickle-free checkpoint format, cold items never drawn as negatives, our
defaults, a user's ``dataset/ml-100k`` first, refusal of pickled caches, ``use_gpu``) are not
here: our runner applies them (:mod:`recbole_rlmm.quick_start`, :mod:`recbole_rlmm.trainer`,
:mod:`recbole_rlmm.config`).

When repairs apply: :func:`install` (run by ``import recbole_rlmm``) repairs the RecBole
modules that are already imported and registers an import hook that repairs the others the
moment they are imported. Importing ``recbole_rlmm`` therefore costs nothing (no torch, no
RecBole), and RecBole code written by a user works the same whether it imports RecBole
before or after ``recbole_rlmm``. :func:`apply` imports and repairs everything at once.

One repair is about cost rather than breakage: RecBole's evaluation collector copies everything
collected so far at every batch, which makes a full-ranking evaluation quadratic in the number of
users (:func:`_linear_collector`); the repaired collector returns the same tensors.

Our package never imports RecBole's own quick_start module on today's stack: it imports
ray 2.6.3 at module level, which needs ``pkg_resources`` and ``np.bool8``.
:mod:`recbole_rlmm.quick_start` holds the same functions. Where it does import (numpy 1), its
``load_data_and_model`` is repaired like the trainer (torch >= 2.6).
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import re
import sys
import types
from collections.abc import Callable
from typing import Any

#: Names of the repairs applied so far, in order.
APPLIED: list[str] = []


class _ModuleProxy(types.ModuleType):
    """A stand-in for a module inside one RecBole module: overrides some names, forwards the rest."""

    def __init__(self, real: types.ModuleType, **overrides: Any) -> None:
        super().__init__(real.__name__)
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


# ---------------------------------------------------------------------------- what the stack needs
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


# ---------------------------------------------------------------------------- the repairs
def _numpy_aliases(configurator: types.ModuleType) -> None:
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
    from recbole_rlmm.model.graph.user_item import norm_adj_matrix

    return norm_adj_matrix(self.interaction_matrix, self.n_users, self.n_items)


def _dok_update(module: types.ModuleType) -> None:
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


def _recbole_checkpoints(module: types.ModuleType) -> None:
    """torch >= 2.6 refuses RecBole's own checkpoints.

    Breakage: RecBole pickles its ``Config`` into every checkpoint (``Trainer._save_checkpoint``,
    ``PretrainTrainer.save_pretrained_model``) and reads them back with a bare ``torch.load``
    (``Trainer.evaluate``, ``Trainer.resume_checkpoint``, ``load_data_and_model``, and the
    models that read a pre-trained file: NeuMF, ConvNCF, NAIS, RaCT, S3Rec, KD_DAGFM). Since
    torch 2.6 ``torch.load`` defaults to ``weights_only=True`` and refuses them
    (``UnpicklingError``). Repair, on torch >= 2.6 only: inside these RecBole modules
    ``torch.load`` defaults to ``weights_only=False`` again, which is what it did on
    torch < 2.6. The cost in safety is exactly plain RecBole's on torch < 2.6: loading a
    crafted ``.pth`` runs code stored in it (docs/CHECKPOINTS.md). Global ``torch.load`` and
    RecBole's checkpoint files are unchanged.
    """
    if not torch_loads_weights_only():
        return
    if hasattr(module, "load_data_and_model"):  # recbole.quick_start.quick_start
        _load_data_and_model(module)
        return
    if not isinstance(getattr(module, "torch", None), types.ModuleType) or isinstance(module.torch, _ModuleProxy):
        return
    real = module.torch

    def load(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("weights_only") is None:
            kwargs["weights_only"] = False  # torch < 2.6's default, which RecBole was written for
        return real.load(*args, **kwargs)

    module.torch = _ModuleProxy(real, load=load)


def _load_data_and_model(quick_start: types.ModuleType) -> None:
    """RecBole's ``load_data_and_model`` imports torch inside the function: the same function,
    line for line, with ``torch.load(model_file, weights_only=False)`` (torch < 2.6's default)."""
    original = quick_start.load_data_and_model
    if getattr(original, "_rlmm", False):
        return
    q = quick_start

    def load_data_and_model(model_file: Any) -> tuple:
        import torch

        checkpoint = torch.load(model_file, weights_only=False)
        config = checkpoint["config"]
        q.init_seed(config["seed"], config["reproducibility"])
        q.init_logger(config)
        logger = q.getLogger()
        logger.info(config)

        dataset = q.create_dataset(config)
        logger.info(dataset)
        train_data, valid_data, test_data = q.data_preparation(config, dataset)

        q.init_seed(config["seed"], config["reproducibility"])
        model = q.get_model(config["model"])(config, train_data._dataset).to(config["device"])
        model.load_state_dict(checkpoint["state_dict"])
        model.load_other_parameter(checkpoint.get("other_parameter"))

        return config, model, dataset, train_data, valid_data, test_data

    load_data_and_model.__doc__ = original.__doc__
    load_data_and_model._rlmm = True  # type: ignore[attr-defined]
    quick_start.load_data_and_model = load_data_and_model


def _metric_values(evaluator: types.ModuleType) -> None:
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


def _fillna(ds_module: types.ModuleType) -> None:
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
    if not isinstance(ds_module.pd, _ModuleProxy):
        real_pd = ds_module.pd

        def read_csv(*args: Any, **kwargs: Any) -> Any:
            df = real_pd.read_csv(*args, **kwargs)
            if not pandas_copy_on_write():
                return df  # RecBole's own fillna works
            for column in df.columns:
                if isinstance(column, str) and column.endswith("_seq"):
                    df[column] = df[column].fillna("")
            return df

        ds_module.pd = _ModuleProxy(real_pd, read_csv=read_csv)


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


def _token_seq_remap(ds_module: types.ModuleType) -> None:
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


def _float_seq_split(ds_module: types.ModuleType) -> None:
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


def _distributed_on_cpu(configurator: types.ModuleType) -> None:
    """RecBole 1.2.1 distributes only over CUDA.

    Breakage: for a multi-process run (``local_rank`` set by ``run``/``run_recboles``)
    ``Config._init_device`` asserts one GPU id per process and initialises the ``nccl`` backend
    on a CUDA device, so on a machine without CUDA the run crashes before training. Repair,
    only for a multi-process run where CUDA is not available: RecBole's ``gpu_id`` handling,
    then the ``gloo`` backend on the CPU, with RecBole's settings for the other ranks. Every
    other case (one process; CUDA available) runs RecBole's own method.
    """
    import os

    original = configurator.Config._init_device
    if getattr(original, "_rlmm", False):
        return

    def _init_device(self: Any) -> None:
        import torch

        config = self.final_config_dict
        if "local_rank" not in config or torch.cuda.is_available():
            return original(self)
        gpu_id = config["gpu_id"]
        config["gpu_id"] = ",".join(map(str, gpu_id)) if isinstance(gpu_id, tuple) else str(gpu_id)
        os.environ["CUDA_VISIBLE_DEVICES"] = config["gpu_id"]
        join_cpu_process_group(config)
        return None

    _init_device._rlmm = True  # type: ignore[attr-defined]
    configurator.Config._init_device = _init_device


def join_cpu_process_group(config: dict[str, Any]) -> None:
    """This rank joins its distributed run with the ``gloo`` backend on the CPU, with RecBole's
    settings for ranks other than 0 (``config``: a ``Config``'s ``final_config_dict``)."""
    import torch

    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(
            backend="gloo",
            rank=config["local_rank"] + config["offset"],
            world_size=config["world_size"],
            init_method=f"tcp://{config['ip']}:{config['port']}",
        )
    config["device"] = torch.device("cpu")
    config["single_spec"] = False
    if config["local_rank"] != 0:
        config["state"] = "error"
        config["show_progress"] = False
        config["verbose"] = False


def _ddp_on_cpu(trainer: types.ModuleType) -> None:
    """RecBole 1.2.1 wraps the model in ``DistributedDataParallel(device_ids=[rank])``.

    Breakage: ``device_ids`` must be None for a model on the CPU, so a multi-process CPU run
    fails when the trainer is built. Repair: for a model on the CPU, ``AbstractTrainer.__init__``
    passes ``device_ids=None``; on a GPU and in one process RecBole's own method runs.
    """
    import torch

    original = trainer.AbstractTrainer.__init__
    if getattr(original, "_rlmm", False):
        return

    def __init__(self: Any, config: Any, model: Any) -> None:  # noqa: N807 - the method it replaces
        if config["single_spec"] or config["device"].type == "cuda":
            return original(self, config, model)
        self.config = config
        self.model = model
        self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.distributed_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=None)
        return None

    __init__._rlmm = True  # type: ignore[attr-defined]
    trainer.AbstractTrainer.__init__ = __init__


def _safe_ensure_dir(dir_path: str) -> None:
    """``os.makedirs(dir_path, exist_ok=True)``."""
    import os

    os.makedirs(dir_path, exist_ok=True)


def _ensure_dir(module: types.ModuleType) -> None:
    """RecBole's ``ensure_dir`` races with itself.

    Breakage: ``ensure_dir`` checks ``os.path.exists`` then calls ``os.makedirs``; two
    processes starting together (the ranks of a distributed run, parallel jobs) both see the
    folder missing and one fails with ``FileExistsError: 'saved/'``. Repair: ``ensure_dir`` is
    ``os.makedirs(path, exist_ok=True)`` in every RecBole module that imported it.
    """
    if hasattr(module, "ensure_dir"):
        module.ensure_dir = _safe_ensure_dir


class _Blocks(list):
    """The tensor blocks collected for one evaluation key, concatenated when first read."""


def _linear_collector(collector: types.ModuleType) -> None:
    """Full-ranking evaluation cost quadratic in the number of users.

    Breakage (cost, not an error): ``DataStruct.update_tensor`` concatenates every batch's
    result onto everything collected before, so an evaluation of U users in B batches copies
    about B x U / 2 rows. With RecBole's default ``eval_batch_size`` (4096 scores) a dataset of
    more than 4,096 items is evaluated one user per batch, so the copying grows with U squared:
    at Amazon Baby's size (19,445 users) the evaluation took 26.5 s instead of 11.7 s
    (``bench/eval_collector.py``; docs/RESULTS.md, Performance). Repair: keep the blocks in a list and concatenate them once, when the
    metrics read them (``DataStruct.__getitem__``/``get``, and ``Collector.get_data_struct``
    before it moves them to the CPU). Same tensors, same order, same device; the same
    ``ValueError`` for a key that holds no tensor.
    """
    import torch

    data_struct = collector.DataStruct

    def update_tensor(self: Any, name: str, value: torch.Tensor) -> None:
        held = self._data_dict.get(name)
        if held is not None and not isinstance(held, (torch.Tensor, _Blocks)):
            raise ValueError(f"{name} is not a tensor.")
        value = value.clone().detach()
        if held is None:
            self._data_dict[name] = value
        elif isinstance(held, _Blocks):
            held.append(value)
        else:
            self._data_dict[name] = _Blocks([held, value])

    def __getitem__(self: Any, name: str) -> Any:  # noqa: N807 - the method it replaces
        held = self._data_dict[name]
        if isinstance(held, _Blocks):
            held = self._data_dict[name] = torch.cat(held, dim=0)
        return held

    original_get_data_struct = collector.Collector.get_data_struct

    def get_data_struct(self: Any) -> Any:
        for name in list(self.data_struct._data_dict):
            self.data_struct[name]  # concatenates the blocks of each key once
        return original_get_data_struct(self)

    data_struct.update_tensor = update_tensor
    data_struct.__getitem__ = __getitem__
    collector.Collector.get_data_struct = get_data_struct


# ---------------------------------------------------------------------------- registry
#: Modules of RecBole's that read pre-trained files or checkpoints with a bare ``torch.load``.
_CHECKPOINT_READERS = (
    "recbole.trainer.trainer",
    "recbole.quick_start.quick_start",
    "recbole.model.general_recommender.neumf",
    "recbole.model.general_recommender.convncf",
    "recbole.model.general_recommender.nais",
    "recbole.model.general_recommender.ract",
    "recbole.model.sequential_recommender.s3rec",
    "recbole.model.context_aware_recommender.kd_dagfm",
)

#: The one repaired module that may fail to import (it imports ray 2.6.3; numpy 2 breaks it).
_OPTIONAL = "recbole.quick_start.quick_start"

#: RecBole module -> the repairs that apply to it, in order.
PATCHES: dict[str, list[Callable[[types.ModuleType], None]]] = {
    "recbole.utils.utils": [_ensure_dir],
    "recbole.utils": [_ensure_dir],
    "recbole.utils.logger": [_ensure_dir],
    "recbole.data.utils": [_ensure_dir],
    "recbole.config.configurator": [_numpy_aliases, _distributed_on_cpu],
    "recbole.model.general_recommender.lightgcn": [_dok_update],
    "recbole.model.general_recommender.ngcf": [_dok_update],
    "recbole.model.general_recommender.ncl": [_dok_update],
    "recbole.trainer.trainer": [_recbole_checkpoints, _ddp_on_cpu, _ensure_dir],
    "recbole.data.dataset.dataset": [_fillna, _token_seq_remap, _float_seq_split, _ensure_dir],
    "recbole.evaluator.collector": [_linear_collector],
    "recbole.evaluator.evaluator": [_metric_values],
}
for _name in _CHECKPOINT_READERS:
    PATCHES.setdefault(_name, [])
    if _recbole_checkpoints not in PATCHES[_name]:
        PATCHES[_name].insert(0, _recbole_checkpoints)

#: What plain RecBole does that a repair changes: ``(stack condition, repair)``; the README's
#: table of repairs lists the same. ``needed()`` says which of them this stack needs.
REPAIRS: dict[str, Callable[[], bool]] = {
    "numpy_aliases": numpy_needs_aliases,
    "dok_update": scipy_lacks_dok_update,
    "recbole_checkpoints": torch_loads_weights_only,
    "metric_values": numpy_scalar_reprs,
    "fillna": pandas_copy_on_write,
    "token_seq_remap": lambda: not pandas_agg_len_per_row(),
    "float_seq_split": lambda: not pandas_agg_len_per_row(),
    "distributed_on_cpu": lambda: True,
    "ddp_on_cpu": lambda: True,
    "ensure_dir": lambda: True,
    "linear_collector": lambda: True,
}


def needed() -> list[str]:
    """The repairs that change something on this stack (the others run RecBole's own code)."""
    return [name for name, condition in REPAIRS.items() if condition()]

_patched: set[str] = set()


def _patch(name: str, module: types.ModuleType) -> None:
    if name in _patched:
        return
    _patched.add(name)
    for patch in PATCHES[name]:
        patch(module)
        label = patch.__name__.lstrip("_")
        if label not in APPLIED:
            APPLIED.append(label)


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then the patches of that module."""

    def __init__(self, name: str, loader: importlib.abc.Loader) -> None:
        self.name = name
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        _patch(self.name, module)


class _PatchingFinder(importlib.abc.MetaPathFinder):
    """Import hook: the RecBole modules of :data:`PATCHES` are patched when first imported."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in PATCHES or fullname in _patched:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(fullname, spec.loader)
                return spec
        return None


_FINDER = _PatchingFinder()


def install() -> None:
    """Patch the RecBole modules already imported; patch the others when they are imported."""
    for name in PATCHES:
        module = sys.modules.get(name)
        if module is not None:
            _patch(name, module)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def apply() -> list[str]:
    """Import every patched RecBole module now (patching each); returns the applied patches."""
    install()
    for name in PATCHES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001
            if name != _OPTIONAL:
                raise  # RecBole's quick_start imports ray, which fails on today's stack
    return APPLIED
