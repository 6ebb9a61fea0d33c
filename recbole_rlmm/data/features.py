"""Loading item feature files (one per modality) aligned to RecBole's internal item ids.

Every multimodal model of the package reads its features through :func:`load_modalities`.
The file contract (names, row order, the missing-modality rule) is
:mod:`recbole_rlmm.data.format`; the config names the modalities and their files, relative
to the dataset folder::

    modalities:
      image: amazon.image.npy
      text: amazon.text.npy

A modality may also be given as a mapping ``{file: ..., index: ..., dim: ...}`` to use its
own item index file or to assert its dimensionality. Items that have no row, or whose row
is all zeros, are *missing* that modality: their feature row is zero and their mask is False.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recbole_rlmm.data import feature_checks as checks
from recbole_rlmm.data.blocks import NpyRows
from recbole_rlmm.data.feature_checks import FeatureFileError
from recbole_rlmm.data.format import (
    ITEM_INDEX_KEY,
    MODALITIES_KEY,
    item_index_file,
    present_rows,
)
from recbole_rlmm.data.reduce import reduced_features
from recbole_rlmm.timing import phase

__all__ = ["FeatureFileError", "ModalityFeatures", "configured_modalities", "load_modalities", "normalize_features"]

logger = logging.getLogger(__name__)


@dataclass
class ModalityFeatures:
    """Item features of every configured modality, indexed by RecBole's internal item id.

    ``features[m]`` is a float32 tensor (n_items, d_m) with zero rows where the item lacks
    modality ``m`` (and for the padding id 0); ``masks[m]`` is a bool tensor (n_items,).
    """

    features: dict[str, torch.Tensor] = field(default_factory=dict)
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def dims(self) -> dict[str, int]:
        return {m: int(x.shape[1]) for m, x in self.features.items()}

    def coverage(self) -> dict[str, float]:
        """Share of real items (padding id excluded) that have each modality."""
        return {m: float(mask[1:].float().mean()) if len(mask) > 1 else 0.0 for m, mask in self.masks.items()}


def _modality_specs(config: Any) -> dict[str, dict[str, Any]]:
    raw = config[MODALITIES_KEY] if MODALITIES_KEY in config else None  # noqa: SIM401 (Config has no .get)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise FeatureFileError(
            f"config key 'modalities' must map modality names to files, e.g. "
            f"{{image: data.image.npy, text: data.text.npy}}; got {raw!r}."
        )
    specs: dict[str, dict[str, Any]] = {}
    for name, spec in raw.items():
        if isinstance(spec, (str, os.PathLike)):
            specs[str(name)] = {"file": str(spec)}
        elif isinstance(spec, Mapping) and "file" in spec:
            specs[str(name)] = dict(spec)
        else:
            raise FeatureFileError(
                f"modalities.{name} must be a file name or a mapping with a 'file' key; got {spec!r}."
            )
    return specs


def configured_modalities(config: Any) -> list[str]:
    """The modality names of ``config['modalities']``, in order."""
    return list(_modality_specs(config))


def _resolve(data_path: Path, name: str) -> Path:
    path = Path(os.path.expanduser(name))
    return path if path.is_absolute() else data_path / path


def read_item_index(path: Path) -> list[str]:
    """Read an item index file (one token per line): a UTF-8 text file without empty or
    duplicated lines (:func:`recbole_rlmm.data.feature_checks.read_index`)."""
    return checks.read_index(path)


def load_feature_array(path: Path, modality: str, expected_dim: int | None = None) -> np.ndarray:
    """Load and validate one (n_rows, d) feature matrix (:mod:`recbole_rlmm.data.feature_checks`)."""
    if not path.exists():
        raise FeatureFileError(
            f"Feature file for modality '{modality}' not found: {path}. Produce it with "
            f"`recbole-rlmm prepare` (see docs/DATA.md), fix `modalities.{modality}` in your "
            f"config, or train ID-only with `--fusion=none`."
        )
    checks.npy_header(path, modality, expected_dim)  # without reading the values
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FeatureFileError(
            f"{path}: modality '{modality}' cannot be loaded as a .npy array ({exc}). Save features "
            f"as a plain float array with np.save(path, features.astype(np.float32))."
        ) from exc
    checks.check_feature_values(path, modality, array)
    return array


def feature_blocks(path: Path, modality: str) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, rows)`` blocks of a feature file whose header was checked."""
    try:
        yield from NpyRows(path).blocks()
    except (ValueError, OSError, EOFError) as exc:
        raise FeatureFileError(
            f"{path}: modality '{modality}' cannot be loaded as a .npy array ({exc}). Save features "
            f"as a plain float array with np.save(path, features.astype(np.float32))."
        ) from exc


def check_feature_file_values(path: Path, modality: str) -> None:
    """:func:`~recbole_rlmm.data.feature_checks.check_feature_values` over a whole file, a block
    of rows at a time."""
    for start, block in feature_blocks(path, modality):
        checks.check_feature_values(path, modality, block, first_row=start)


def reduction_settings(config: Any) -> tuple[int, str, Path | None] | None:
    """``(feature_dim, feature_reduction, feature_cache_dir)`` when ``feature_dim`` is set."""
    dim = config["feature_dim"] if "feature_dim" in config else None  # noqa: SIM401 (Config has no .get)
    if dim is None:
        return None
    method = config["feature_reduction"] if "feature_reduction" in config else None  # noqa: SIM401
    folder = config["feature_cache_dir"] if "feature_cache_dir" in config else None  # noqa: SIM401
    return int(dim), str(method or "pca"), Path(os.path.expanduser(str(folder))) if folder else None


def default_cache_dir(config: Any) -> Path:
    """``<data_path>/<dataset>/_cache/features`` (RecBole's ``data_path`` already names the
    dataset's folder): where reduced features are cached by default."""
    return Path(config["data_path"]) / "_cache" / "features"


def _index_source(config: Any, spec: Mapping[str, Any]) -> tuple[Path, bool]:
    """The item index file of a modality and whether it must exist (named in the modality's
    spec or by ``item_index_file``; the default ``<dataset>.item_index`` is optional)."""
    data_path = Path(config["data_path"])
    if "index" in spec:
        return _resolve(data_path, str(spec["index"])), True
    configured = config[ITEM_INDEX_KEY] if ITEM_INDEX_KEY in config else None  # noqa: SIM401
    if configured:
        return _resolve(data_path, str(configured)), True
    return _resolve(data_path, item_index_file(str(config["dataset"]))), False


def feature_sources(config: Any) -> list[tuple[Path, Path | None]]:
    """(feature file, item index file or None) of every configured modality, as
    :func:`load_modalities` resolves them."""
    specs = _modality_specs(config)
    data_path = Path(config["data_path"])
    out = []
    for spec in specs.values():
        index, required = _index_source(config, spec)
        out.append((_resolve(data_path, spec["file"]), index if index.exists() or required else None))
    return out


@dataclass
class _Source:
    """Where one modality's rows come from."""

    modality: str
    path: Path
    dim: int | None
    index: Path  # the index file (it may not exist when it is optional)
    tokens: list[str] | None  # the index's tokens; None: row r is item token str(r)


def _sources(config: Any, names: Sequence[str] | None = None) -> list[_Source]:
    """The configured modalities (only ``names`` when given), their files checked without
    reading the feature values: present, .npy headers, index files, rows vs index lines."""
    specs = _modality_specs(config)
    if names is not None:
        specs = {m: spec for m, spec in specs.items() if m in names}
    data_path = Path(config["data_path"])
    dataset_name = config["dataset"]
    missing = [(m, _resolve(data_path, spec["file"])) for m, spec in specs.items()]
    missing = [(m, p) for m, p in missing if not p.exists()]
    if missing:
        listed = ", ".join(f"{p} ({m})" for m, p in missing)
        raise FeatureFileError(
            f"Dataset '{dataset_name}' is configured with modalities "
            f"{', '.join(specs)} but these feature files are missing: {listed}. Produce them "
            f"with `recbole-rlmm prepare` (docs/DATA.md; for Amazon Baby copy MMRec's "
            f"image_feat.npy and text_feat.npy as the README's Datasets paragraph explains), "
            f"fix `modalities` in your config, or train ID-only with --fusion=none."
        )
    out = []
    for modality, spec in specs.items():
        path = _resolve(data_path, spec["file"])
        shape, _ = checks.npy_header(path, modality, spec.get("dim"))
        index_path, required = _index_source(config, spec)
        tokens = None
        if index_path.exists():
            tokens = read_item_index(index_path)
            if shape[0] > len(tokens):
                raise FeatureFileError(
                    f"{path}: {shape[0]} rows but {index_path} lists only {len(tokens)} "
                    f"items; row r belongs to line r+1 of the index. Add the missing item "
                    f"tokens to the index or drop the extra rows."
                )
            if shape[0] < len(tokens):
                raise FeatureFileError(
                    f"{path}: {shape[0]} rows but {index_path} lists {len(tokens)} items; "
                    f"the first item without a row is {tokens[shape[0]]!r}. Write a row "
                    f"per index line (all zeros for an item missing this modality)."
                )
        elif required:
            key = f"modalities.{modality}.index" if "index" in spec else ITEM_INDEX_KEY
            raise FeatureFileError(
                f"Item index file for modality '{modality}' not found: {index_path} ({key}); "
                f"fix {key} or write the file (one item token per feature row)."
            )
        out.append(_Source(modality, path, spec.get("dim"), index_path, tokens))
    return out


def check_feature_files(config: Any, names: Sequence[str] | None = None) -> None:
    """The checks of the configured feature and index files that need neither the feature
    values nor the dataset (run before the dataset is loaded)."""
    _sources(config, names)


def load_modalities(config: Any, dataset: Any, names: Sequence[str] | None = None) -> ModalityFeatures:
    """Load every modality named in ``config['modalities']`` (only ``names`` when given)
    aligned to ``dataset``'s item ids, checked as :mod:`recbole_rlmm.data.feature_checks` says."""
    with phase("features"):
        return _load_modalities(config, dataset, names)


def _load_modalities(config: Any, dataset: Any, names: Sequence[str] | None) -> ModalityFeatures:
    sources = _sources(config, names)
    result = ModalityFeatures()
    if not sources:
        return result
    data_path = Path(config["data_path"])
    iid_field = dataset.iid_field
    token2id: Mapping[str, int] = dataset.field2token_id[iid_field]
    n_items = dataset.item_num
    dataset_name = config["dataset"]
    limit = config["max_unknown_feature_rows"] if "max_unknown_feature_rows" in config else None  # noqa: SIM401
    limit = checks.MAX_UNKNOWN_ROWS if limit is None else float(limit)
    all_names = list(_modality_specs(config))

    reduction = reduction_settings(config)
    for src in sources:
        modality, path, index_path = src.modality, src.path, src.index
        shape, _ = checks.npy_header(path, modality, src.dim)
        n_rows, dim = int(shape[0]), int(shape[1])
        reduce_to = reduction[0] if reduction and dim > reduction[0] else None
        if reduce_to is None:
            check_feature_file_values(path, modality)
        if src.tokens is not None:
            tokens = src.tokens
            source = str(index_path)
        else:
            item_tokens = [str(t) for t in dataset.field2id_token[iid_field][1:]]
            checks.check_row_numbers(path, index_path, item_tokens, dataset_name)
            tokens = [str(r) for r in range(n_rows)]
            source = f"row numbers (no {index_path.name} in {data_path})"

        ids = np.array([token2id.get(t, -1) for t in tokens], dtype=np.int64)
        known = ids >= 0
        checks.check_unknown_rows(path, modality, tokens, known, source, index_path, dataset_name, limit)
        if reduce_to is not None:
            _, method, cache_dir = reduction
            reduced = reduced_features(path, reduce_to, method, cache_dir or default_cache_dir(config), modality)
            blocks: Any = [(0, reduced)]
            dim = int(reduced.shape[1])
        else:
            blocks = feature_blocks(path, modality)
        # the file's rows are copied into place a block at a time: one float32 copy in memory
        feats = np.zeros((n_items, dim), dtype=np.float32)
        mask = np.zeros(n_items, dtype=bool)
        n_present, first, all_same = 0, None, True
        for start, block in blocks:
            block_ids = ids[start : start + len(block)]
            keep = block_ids >= 0
            rows = block[keep].astype(np.float32)
            present = present_rows(rows)  # all-zero rows mean "missing"
            rows, targets = rows[present], block_ids[keep][present]
            feats[targets] = rows
            mask[targets] = True
            if len(rows):
                first = rows[0].copy() if first is None else first
                all_same = all_same and bool((rows == first).all())
                n_present += len(rows)
        checks.check_information_counts(path, modality, n_present, all_same, n_rows, all_names, dataset_name)
        mask[0] = False  # [PAD]
        feats[0] = 0.0
        result.features[modality] = torch.from_numpy(feats)
        result.masks[modality] = torch.from_numpy(mask)
        result.files[modality] = path
        logger.info(
            "modality %s: %d/%d items have features (%.1f%%), dim %d%s, from %s",
            modality,
            int(mask.sum()),
            n_items - 1,
            100.0 * mask.sum() / max(1, n_items - 1),
            dim,
            f" (reduced from {shape[1]} by {reduction[1]})" if reduce_to is not None else "",
            path,
        )
    return result


def normalize_features(
    x: torch.Tensor, mask: torch.Tensor, how: str, block_rows: int | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Normalise a modality's feature matrix over the items that have it.

    ``none`` keeps raw values; ``l2`` scales each row to unit norm; ``standard`` centres
    and scales each dimension to unit variance and then each row to unit norm, so that
    CNN activations (hundreds of large positive values) and sentence embeddings (unit norm)
    reach the projection on a comparable scale. Missing rows stay zero.

    The result is a new tensor; it is computed ``block_rows`` rows at a time (default: about
    64 MB), so that besides ``x`` and the result only one block (and, for ``standard``, the
    items' rows while their mean and deviation are computed) is in memory. Every value is the
    one the whole-matrix computation gives: the operations are per element or per row.
    ``dtype``: the result's precision (``feature_dtype``); the blocks are computed in ``x``'s
    and rounded as they are written, so no second copy at ``x``'s precision is made.
    """
    if how not in ("none", "standard", "l2"):
        raise ValueError(f"feature_norm must be one of none, l2, standard; got {how!r}")
    if how == "none":
        return x if dtype in (None, x.dtype) else x.to(dtype)
    out = x.clone() if dtype in (None, x.dtype) else x.to(dtype)
    items = mask.nonzero(as_tuple=True)[0]
    if len(items) == 0:
        return out
    shift = scale = None
    if how == "standard":
        rows = x[items]
        shift, scale = rows.mean(dim=0), rows.std(dim=0, unbiased=False) + 1e-6
        del rows
    step = block_rows or max(1, (64 << 20) // max(1, 4 * x.shape[1]))
    for block in items.split(step):
        rows = x[block]
        if shift is not None:
            rows = (rows - shift) / scale
        out[block] = torch.nn.functional.normalize(rows, dim=1).to(out.dtype)
    return out
