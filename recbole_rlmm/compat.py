"""Small, targeted fixes that make RecBole 1.2.1 work on today's scientific stack.

RecBole 1.2.1 is the latest release and is no longer maintained. On a fresh install it
meets numpy 2, pandas 3 (copy-on-write), scipy >= 1.12 and torch >= 2.6, each of which
breaks one of its code paths. Pinning all four to 2023 versions would make us impossible
to install next to anything else, so we pin only RecBole itself (``recbole==1.2.1``) and
patch the few broken functions here. Every patch is idempotent, touches only RecBole objects
(never numpy/pandas/scipy/torch behaviour seen by other code, except re-adding numpy's
removed aliases that RecBole's own ``Config`` writes into numpy anyway) and is covered by
``tests/test_compat.py``.

When patches apply: :func:`install` (run by ``import recbole_rlmm``) patches the RecBole
modules that are already imported and registers an import hook that patches the others the
moment they are imported. Importing ``recbole_rlmm`` therefore costs nothing (no torch, no
RecBole), and RecBole code written by a user works the same whether it imports RecBole
before or after ``recbole_rlmm``. :func:`apply` imports and patches everything at once.

One patch is about cost rather than breakage: RecBole's evaluation collector copies everything
collected so far at every batch, which makes a full-ranking evaluation quadratic in the number of
users (:func:`_linear_collector`); the patched collector returns the same tensors.

RecBole's own quick_start module is never imported: it imports ray 2.6.3 at module level, which
needs ``pkg_resources`` and ``np.bool8``. :mod:`recbole_rlmm.quick_start` replaces it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Callable
from typing import Any

#: Names of the patches applied so far, in order.
APPLIED: list[str] = []


class _ModuleProxy(types.ModuleType):
    """A stand-in for a module inside one RecBole module: overrides some names, forwards the rest."""

    def __init__(self, real: types.ModuleType, **overrides: Any) -> None:
        super().__init__(real.__name__)
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


# ---------------------------------------------------------------------------- the patches
def _numpy_aliases(configurator: types.ModuleType) -> None:
    """numpy 2 removed ``np.float_``/``np.complex_``/``np.unicode_``.

    Breakage: ``Config.compatibility_settings`` reads ``np.float_`` (AttributeError on
    numpy >= 2) to write the aliases ``np.float``/``np.int``/... that the rest of RecBole
    (metrics, interaction, dataset) uses. Fix: replace that method with one that writes
    the same aliases from names that exist in numpy 1 and 2, only where missing.
    """
    import numpy as np

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


def _norm_adj(self: Any) -> Any:
    """RecBole's ``get_norm_adj_mat`` (same matrix, same 1e-7 epsilon) without ``dok_matrix``."""
    from recbole_rlmm.model.graph.user_item import norm_adj_matrix

    return norm_adj_matrix(self.interaction_matrix, self.n_users, self.n_items)


def _dok_update(module: types.ModuleType) -> None:
    """scipy >= 1.12 removed ``dok_matrix._update``.

    Breakage: the built-in LightGCN, NGCF and NCL build their normalised adjacency with
    ``A._update(dict)`` (AttributeError). Fix: give those models a COO implementation of
    ``get_norm_adj_mat`` that yields the same matrix (checked in tests against a dense
    reference). Other built-ins (GCMC, SpectralCF, KGIN, MCCLK) build different matrices;
    for them ``dok_matrix._update`` is restored, only when scipy lacks it, as a loop of
    item assignments (same result, slower).
    """
    import scipy.sparse as sp

    for name in ("LightGCN", "NGCF", "NCL"):
        if hasattr(module, name):
            getattr(module, name).get_norm_adj_mat = _norm_adj

    if not hasattr(sp.dok_matrix, "_update"):

        def _update(self: sp.dok_matrix, data: dict) -> None:
            for key, value in data.items():
                self[key] = value

        sp.dok_matrix._update = _update


def _safe_checkpoints(trainer: types.ModuleType) -> None:
    """RecBole pickles its ``Config`` into checkpoints and unpickles them to load.

    Breakage: with torch >= 2.6 (``weights_only=True`` by default) ``Trainer.evaluate`` and
    ``Trainer.resume_checkpoint`` cannot load RecBole's own checkpoints; loading them with
    ``weights_only=False`` instead would run whatever code a crafted ``.pth`` holds. RecBole
    also writes straight to the final name, so a failed save (full disk, killed process)
    destroys the previous best model. Fix: the trainer writes :mod:`recbole_rlmm.checkpoint`'s
    format (tensors and JSON-compatible values only, written to a temporary file then renamed)
    in ``_save_checkpoint`` and ``PretrainTrainer.save_pretrained_model``, and reads with
    ``weights_only=True``; ``resume_checkpoint`` restores weights, optimizer, epoch,
    early-stopping state and random states. RecBole's pickled files load only inside
    :func:`recbole_rlmm.checkpoint.trusted_checkpoints`. Global ``torch.load`` is untouched.
    Also, ``_train_epoch`` tells a model with ``set_epoch`` which epoch starts (our models run
    their per-epoch work once per epoch with it).
    """
    import torch
    from recbole.utils import set_color

    from recbole_rlmm import checkpoint as ckpt

    def _save_checkpoint(self: Any, epoch: int, verbose: bool = True, **kwargs: Any) -> None:
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        ckpt.write_checkpoint(saved_model_file, ckpt.trainer_state(self, epoch, "best"))
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")

    def save_pretrained_model(self: Any, epoch: int, saved_model_file: str) -> None:
        ckpt.write_checkpoint(saved_model_file, ckpt.trainer_state(self, epoch, "pretrained"))
        self.saved_model_file = saved_model_file

    def resume_checkpoint(self: Any, resume_file: Any) -> None:
        ckpt.resume_trainer(self, resume_file)

    original_train_epoch = trainer.Trainer._train_epoch
    if not getattr(original_train_epoch, "_rlmm", False):

        def _train_epoch(self: Any, train_data: Any, epoch_idx: int, *args: Any, **kwargs: Any) -> Any:
            # per-epoch work of our models runs once per epoch, even when RecBole's dynamic
            # negative sampling switches the model between eval and train inside an epoch
            if hasattr(self.model, "set_epoch"):
                self.model.set_epoch(epoch_idx)
            return original_train_epoch(self, train_data, epoch_idx, *args, **kwargs)

        _train_epoch._rlmm = True  # type: ignore[attr-defined]
        trainer.Trainer._train_epoch = _train_epoch

    original_fit = trainer.Trainer.fit
    if not getattr(original_fit, "_rlmm", False):

        def fit(self: Any, train_data: Any, *args: Any, **kwargs: Any) -> Any:
            pending = getattr(self, "_pending_train_data_state", None)
            if pending is not None:  # a resumed run continues the dataloader's random stream
                generator = getattr(train_data, "generator", None)
                if isinstance(generator, torch.Generator):
                    generator.set_state(pending)
                self._pending_train_data_state = None
            return original_fit(self, train_data, *args, **kwargs)

        fit._rlmm = True  # type: ignore[attr-defined]
        trainer.Trainer.fit = fit
    trainer.Trainer._save_checkpoint = _save_checkpoint
    trainer.Trainer.resume_checkpoint = resume_checkpoint
    trainer.PretrainTrainer.save_pretrained_model = save_pretrained_model
    if not isinstance(trainer.torch, _ModuleProxy):
        trainer.torch = _ModuleProxy(torch, load=ckpt.trainer_load)


def _fillna(ds_module: types.ModuleType) -> None:
    """pandas copy-on-write makes ``df[col].fillna(..., inplace=True)`` a no-op.

    Breakage: ``Dataset._fill_nan`` (missing token -> 0, missing float -> column mean) and
    ``Dataset._load_feat`` (missing sequence -> "") leave NaN in place under pandas 3, which
    later crashes or silently corrupts remapping. Fix: ``_fill_nan`` assigns the filled
    column back (a sequence column is rebuilt as an object column of 1-d arrays rather than
    with ``Series.apply``, which unboxes 0-d arrays); ``_load_feat`` gets a ``read_csv`` that
    fills its sequence columns.
    """
    import numpy as np
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
                    feat[field] = _object_column(
                        [np.array([], dtype=dtype) if isinstance(x, float) else x for x in feat[field].values],
                        feat.index,
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
    of values (1) does not match length of index". Fix: the same remapping (one
    ``pd.factorize`` over all remapped fields) split at the per-row lengths, each sequence
    stored as a 1-d array in an object column (not via ``Series.iat``, which stores a
    one-token sequence as a 0-d array that ``_fill_nan``'s ``Series.apply`` turns into an int:
    "'int' object is not subscriptable" in ``_dataframe_to_interaction``).
    """
    import numpy as np
    import pandas as pd
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
                split_point = np.cumsum(_seq_lengths(feat[field]))[:-1]
                feat[field] = _object_column(np.split(new_ids, split_point), feat.index)

    ds_module.Dataset._remap = _remap


def _float_seq_split(ds_module: types.ModuleType) -> None:
    """pandas 3 ``Series.agg(len)`` again: ``float_seq`` normalisation and discretisation.

    Breakage: ``Dataset._normalize`` (``normalize_all``/``normalize_field``) and
    ``Dataset._discretization`` (``numerical_features``) rebuild a ``float_seq`` field by
    splitting the concatenated values at ``np.cumsum(feat[field].agg(len))[:-1]``, which under
    pandas 3 is the length of the Series, so they raise "Length of values (1) does not match
    length of index". Fix: both methods as RecBole wrote them, splitting at the per-row
    lengths; token and float fields, the checks and the warnings are unchanged.
    """
    import numpy as np
    from recbole.utils import FeatureType, set_color

    def _split(values: Any, column: Any) -> list:
        return np.split(values, np.cumsum(_seq_lengths(column))[:-1])

    def _normalize(self: Any) -> None:
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

    ds_module.Dataset._normalize = _normalize
    ds_module.Dataset._discretization = _discretization


def _user_dataset_first(configurator: types.ModuleType) -> None:
    """RecBole 1.2.1 trains on its bundled ``ml-100k`` whatever ``data_path`` says.

    Breakage: ``Config._set_default_parameters`` points ``data_path`` at RecBole's own
    ``dataset_example/ml-100k`` whenever the dataset is called ``ml-100k``, so a user folder of
    that name is silently ignored. Fix: when ``<data_path>/ml-100k`` is a folder, it is used;
    RecBole's bundled copy remains the fallback.
    """
    import os

    if getattr(configurator.Config._set_default_parameters, "_rlmm", False):
        return
    original = configurator.Config._set_default_parameters

    def _set_default_parameters(self: Any) -> None:
        data_path = self.final_config_dict.get("data_path")
        original(self)
        if data_path is not None:
            user_folder = os.path.join(data_path, self.dataset)
            if os.path.isdir(user_folder):
                self.final_config_dict["data_path"] = user_folder

    _set_default_parameters._rlmm = True  # type: ignore[attr-defined]
    configurator.Config._set_default_parameters = _set_default_parameters


def _device(configurator: types.ModuleType) -> None:
    """RecBole 1.2.1 distributes only over CUDA (``nccl``) and ignores ``use_gpu``.

    Breakage: ``Config._init_device`` always initialises the ``nccl`` backend and a CUDA
    device for multi-process runs (``nproc``/``world_size``), so they cannot run on a CPU;
    it also reports ``use_gpu = True`` on a machine without a GPU and uses the GPU even with
    ``use_gpu: false``. Fix: the device follows ``use_gpu`` and CUDA's availability; a
    distributed run uses ``nccl`` on GPUs and ``gloo`` on CPUs; ``use_gpu`` reports what runs.
    """
    import os

    if getattr(configurator.Config._init_device, "_rlmm", False):
        return
    original = configurator.Config._init_device

    def _init_device(self: Any) -> None:
        import torch

        config = self.final_config_dict
        gpu = bool(config.get("use_gpu", True)) and torch.cuda.is_available()
        if gpu:
            original(self)
        else:
            config["gpu_id"] = ""
            os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
            config["device"] = torch.device("cpu")
            if "local_rank" not in config:
                config["single_spec"] = True
                config["local_rank"] = 0
            else:
                if not torch.distributed.is_initialized():
                    torch.distributed.init_process_group(
                        backend="gloo",
                        rank=config["local_rank"] + config["offset"],
                        world_size=config["world_size"],
                        init_method=f"tcp://{config['ip']}:{config['port']}",
                    )
                config["single_spec"] = False
                if config["local_rank"] != 0:
                    config["state"] = "error"
                    config["show_progress"] = False
                    config["verbose"] = False
        config["use_gpu"] = config["device"].type == "cuda"

    _init_device._rlmm = True  # type: ignore[attr-defined]
    configurator.Config._init_device = _init_device


def _ddp_on_cpu(trainer: types.ModuleType) -> None:
    """RecBole 1.2.1 wraps the model in ``DistributedDataParallel(device_ids=[rank])``.

    Breakage: ``device_ids`` must be None for a model on the CPU, so a multi-process CPU run
    fails when the trainer is built. Fix: ``AbstractTrainer.__init__`` passes
    ``device_ids=None`` on the CPU and RecBole's ``[local_rank]`` on a GPU; the rest is
    RecBole's code.
    """
    import torch

    def __init__(self: Any, config: Any, model: Any) -> None:
        self.config = config
        self.model = model
        if not config["single_spec"]:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            on_gpu = config["device"].type == "cuda"
            self.distributed_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[config["local_rank"]] if on_gpu else None
            )

    trainer.AbstractTrainer.__init__ = __init__


def _safe_ensure_dir(dir_path: str) -> None:
    """``os.makedirs(dir_path, exist_ok=True)``."""
    import os

    os.makedirs(dir_path, exist_ok=True)


def _ensure_dir(module: types.ModuleType) -> None:
    """RecBole's ``ensure_dir`` races with itself.

    Breakage: ``ensure_dir`` checks ``os.path.exists`` then calls ``os.makedirs``; two
    processes starting together (the ranks of a distributed run, parallel jobs) both see the
    folder missing and one fails with ``FileExistsError: 'saved/'``. Fix: ``ensure_dir`` is
    ``os.makedirs(path, exist_ok=True)`` in every RecBole module that imported it.
    """
    if hasattr(module, "ensure_dir"):
        module.ensure_dir = _safe_ensure_dir


def _no_pickled_data(data_utils: types.ModuleType) -> None:
    """RecBole unpickles cached datasets and dataloaders it finds in ``checkpoint_dir``.

    Breakage: ``create_dataset`` loads ``<checkpoint_dir>/<dataset>-Dataset.pth`` (or
    ``dataset_save_path``) and ``data_preparation`` loads ``...-dataloader.pth`` (or
    ``dataloaders_save_path``) with ``pickle.load`` whenever such a file exists: a crafted file
    runs code, and a stale one silently replaces today's data files. Fix: those files are read
    only inside :func:`recbole_rlmm.checkpoint.trusted_checkpoints`; otherwise the data is
    built from the atomic files (a warning names the ignored file). ``save_dataset`` and
    ``save_dataloaders`` still write them.
    """
    import os
    from logging import getLogger

    from recbole_rlmm import checkpoint as ckpt

    if getattr(data_utils.create_dataset, "_rlmm", False):
        return
    original_create = data_utils.create_dataset
    original_load = data_utils.load_split_dataloaders

    def _ignored(config: Any, key: str, default: str) -> str | None:
        path = config[key] or os.path.join(config["checkpoint_dir"], default)
        if os.path.exists(path) and not ckpt.is_trusted():
            getLogger().warning(
                f"ignoring the pickled cache {path} (loading it would run code stored in it); "
                "building from the data files instead. Delete it, or load it inside "
                "recbole_rlmm.checkpoint.trusted_checkpoints() if you wrote it."
            )
            return path
        return None

    def create_dataset(config: Any) -> Any:
        saved = config["dataset_save_path"]
        if _ignored(config, "dataset_save_path", f"{config['dataset']}-Dataset.pth") is not None:
            config["dataset_save_path"] = os.path.join(config["checkpoint_dir"], ".no-pickled-dataset")
        try:
            return original_create(config)
        finally:
            config["dataset_save_path"] = saved

    def load_split_dataloaders(config: Any) -> Any:
        name = f"{config['dataset']}-for-{config['model']}-dataloader.pth"
        if _ignored(config, "dataloaders_save_path", name) is not None:
            return None
        return original_load(config)

    create_dataset._rlmm = True  # type: ignore[attr-defined]
    data_utils.create_dataset = create_dataset
    data_utils.load_split_dataloaders = load_split_dataloaders
    import recbole.data as data_package

    data_package.create_dataset = create_dataset


class _Blocks(list):
    """The tensor blocks collected for one evaluation key, concatenated when first read."""


def _linear_collector(collector: types.ModuleType) -> None:
    """Full-ranking evaluation cost quadratic in the number of users.

    Breakage (cost, not an error): ``DataStruct.update_tensor`` concatenates every batch's
    result onto everything collected before, so an evaluation of U users in B batches copies
    about B x U / 2 rows. With RecBole's default ``eval_batch_size`` (4096 scores) a dataset of
    more than 4,096 items is evaluated one user per batch, so the copying grows with U squared:
    at Amazon Baby's size (19,445 users) the evaluation took 26.5 s instead of 11.7 s
    (``bench/eval_collector.py``; docs/RESULTS.md, Performance). Fix: keep the blocks in a list and concatenate them once, when the
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
#: RecBole module -> the patches that apply to it, in order.
PATCHES: dict[str, list[Callable[[types.ModuleType], None]]] = {
    "recbole.utils.utils": [_ensure_dir],
    "recbole.utils": [_ensure_dir],
    "recbole.utils.logger": [_ensure_dir],
    "recbole.data.utils": [_ensure_dir, _no_pickled_data],
    "recbole.config.configurator": [_numpy_aliases, _user_dataset_first, _device],
    "recbole.model.general_recommender.lightgcn": [_dok_update],
    "recbole.model.general_recommender.ngcf": [_dok_update],
    "recbole.model.general_recommender.ncl": [_dok_update],
    "recbole.trainer.trainer": [_safe_checkpoints, _ddp_on_cpu, _ensure_dir],
    "recbole.data.dataset.dataset": [_fillna, _token_seq_remap, _float_seq_split, _ensure_dir],
    "recbole.evaluator.collector": [_linear_collector],
}

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
        importlib.import_module(name)
    return APPLIED
