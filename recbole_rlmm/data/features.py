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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recbole_rlmm.data.format import (
    FEATURE_DTYPES,
    ITEM_INDEX_KEY,
    MODALITIES_KEY,
    item_index_file,
    present_rows,
)
from recbole_rlmm.errors import UserError

logger = logging.getLogger(__name__)

class FeatureFileError(UserError):
    """A feature or index file cannot be used; the message names the file and the fix."""


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


def _resolve(data_path: Path, name: str) -> Path:
    path = Path(os.path.expanduser(name))
    return path if path.is_absolute() else data_path / path


def read_item_index(path: Path) -> list[str]:
    """Read an item index file (one token per line); duplicated tokens are an error."""
    with open(path, encoding="utf-8") as f:
        tokens = [line.rstrip("\n").rstrip("\r") for line in f]
    while tokens and tokens[-1] == "":
        tokens.pop()
    seen: dict[str, int] = {}
    for line_no, token in enumerate(tokens, start=1):
        if token == "":
            raise FeatureFileError(
                f"{path}: line {line_no} is empty; every line must hold one item token "
                f"(the token of feature row {line_no - 1})."
            )
        if token in seen:
            raise FeatureFileError(
                f"{path}: item token {token!r} is listed twice (lines {seen[token]} and {line_no}); "
                f"each feature row must belong to exactly one item. Remove the duplicate line "
                f"and the matching feature row."
            )
        seen[token] = line_no
    return tokens


def load_feature_array(path: Path, modality: str, expected_dim: int | None = None) -> np.ndarray:
    """Load and validate one (n_rows, d) feature matrix."""
    if not path.is_file():
        raise FeatureFileError(
            f"Feature file for modality '{modality}' not found: {path}. Produce it with "
            f"`recbole-rlmm prepare` (see docs/DATA.md), fix `modalities.{modality}` in your "
            f"config, or train ID-only with `--fusion=none`."
        )
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise FeatureFileError(
            f"{path}: cannot be loaded without pickle ({exc}). Save features as a plain float "
            f"array with np.save(path, features.astype(np.float32))."
        ) from exc
    if not isinstance(array, np.ndarray):
        raise FeatureFileError(f"{path}: expected a .npy array, got {type(array).__name__} (an .npz?).")
    if array.dtype not in FEATURE_DTYPES:
        raise FeatureFileError(
            f"{path}: dtype {array.dtype} is not supported for modality '{modality}'; "
            f"use float16, float32 or float64."
        )
    if array.ndim != 2 or array.shape[1] == 0:
        raise FeatureFileError(
            f"{path}: modality '{modality}' must be a 2-D array (items x feature dimension), "
            f"got shape {array.shape}. Reshape it to (n_items, d)."
        )
    if expected_dim is not None and array.shape[1] != int(expected_dim):
        raise FeatureFileError(
            f"{path}: modality '{modality}' has dimension {array.shape[1]} but the config "
            f"says dim: {expected_dim}. Fix modalities.{modality}.dim or the file."
        )
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise FeatureFileError(
            f"{path}: modality '{modality}' has NaN or inf values in {len(bad)} row(s), first "
            f"row {int(bad[0])}. Recompute those features, or set the whole row to zeros to "
            f"mark the item as missing this modality."
        )
    return array


def feature_sources(config: Any) -> list[tuple[Path, Path | None]]:
    """(feature file, item index file or None) of every configured modality, as
    :func:`load_modalities` resolves them."""
    specs = _modality_specs(config)
    data_path = Path(config["data_path"])
    default_index = config[ITEM_INDEX_KEY] if ITEM_INDEX_KEY in config else None  # noqa: SIM401
    default_index = default_index or item_index_file(str(config["dataset"]))
    out = []
    for spec in specs.values():
        index = _resolve(data_path, spec.get("index", default_index))
        out.append((_resolve(data_path, spec["file"]), index if index.exists() or "index" in spec else None))
    return out


def load_modalities(config: Any, dataset: Any) -> ModalityFeatures:
    """Load every modality named in ``config['modalities']`` aligned to ``dataset``'s item ids."""
    specs = _modality_specs(config)
    result = ModalityFeatures()
    if not specs:
        return result
    data_path = Path(config["data_path"])
    iid_field = dataset.iid_field
    token2id: Mapping[str, int] = dataset.field2token_id[iid_field]
    n_items = dataset.item_num
    dataset_name = config["dataset"]
    default_index = config[ITEM_INDEX_KEY] if ITEM_INDEX_KEY in config else None  # noqa: SIM401
    default_index = default_index or item_index_file(dataset_name)

    missing = [(m, _resolve(data_path, spec["file"])) for m, spec in specs.items()]
    missing = [(m, p) for m, p in missing if not p.is_file()]
    if missing:
        listed = ", ".join(f"{p} ({m})" for m, p in missing)
        raise FeatureFileError(
            f"Dataset '{dataset_name}' is configured with modalities "
            f"{', '.join(specs)} but these feature files are missing: {listed}. Produce them "
            f"with `recbole-rlmm prepare` (docs/DATA.md; for Amazon Baby copy MMRec's "
            f"image_feat.npy and text_feat.npy as explained in the README's Amazon section), "
            f"fix `modalities` in your config, or train ID-only with --fusion=none."
        )
    for modality, spec in specs.items():
        path = _resolve(data_path, spec["file"])
        array = load_feature_array(path, modality, spec.get("dim"))
        index_path = _resolve(data_path, spec.get("index", default_index))
        if index_path.is_file():
            tokens = read_item_index(index_path)
            if array.shape[0] > len(tokens):
                raise FeatureFileError(
                    f"{path}: {array.shape[0]} rows but {index_path} lists only {len(tokens)} "
                    f"items; row r belongs to line r+1 of the index. Add the missing item "
                    f"tokens to the index or drop the extra rows."
                )
            if array.shape[0] < len(tokens):
                raise FeatureFileError(
                    f"{path}: {array.shape[0]} rows but {index_path} lists {len(tokens)} items; "
                    f"the first item without a row is {tokens[array.shape[0]]!r}. Write a row "
                    f"per index line (all zeros for an item missing this modality)."
                )
            source = str(index_path)
        elif "index" in spec:
            raise FeatureFileError(
                f"Item index file for modality '{modality}' not found: {index_path} "
                f"(modalities.{modality}.index)."
            )
        else:
            tokens = [str(r) for r in range(array.shape[0])]
            source = f"row numbers (no {index_path.name} in {data_path})"

        ids = np.array([token2id.get(t, -1) for t in tokens], dtype=np.int64)
        known = ids >= 0
        if array.shape[0] and not known.any():
            raise FeatureFileError(
                f"{path}: none of its {array.shape[0]} rows matches an item of dataset "
                f"'{dataset_name}' (rows are matched through {source}; e.g. {tokens[0]!r} is not an "
                f"item token). Provide {index_path} with one item token per line in row order."
            )
        rows = array[known].astype(np.float32)
        ids = ids[known]
        present = present_rows(rows)  # all-zero rows mean "missing"
        feats = np.zeros((n_items, array.shape[1]), dtype=np.float32)
        feats[ids[present]] = rows[present]
        mask = np.zeros(n_items, dtype=bool)
        mask[ids[present]] = True
        mask[0] = False  # [PAD]
        feats[0] = 0.0
        result.features[modality] = torch.from_numpy(feats)
        result.masks[modality] = torch.from_numpy(mask)
        result.files[modality] = path
        unused = int((~known).sum())
        logger.info(
            "modality %s: %d/%d items have features (%.1f%%), dim %d, from %s%s",
            modality,
            int(mask.sum()),
            n_items - 1,
            100.0 * mask.sum() / max(1, n_items - 1),
            array.shape[1],
            path,
            f"; {unused} rows belong to items not in the dataset" if unused else "",
        )
    return result


def normalize_features(x: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Normalise a modality's feature matrix over the items that have it.

    ``none`` keeps raw values; ``l2`` scales each row to unit norm; ``standard`` centres
    and scales each dimension to unit variance and then each row to unit norm, so that
    CNN activations (hundreds of large positive values) and sentence embeddings (unit norm)
    reach the projection on a comparable scale. Missing rows stay zero.
    """
    if how == "none":
        return x
    out = x.clone()
    rows = out[mask]
    if len(rows) == 0:
        return out
    if how == "standard":
        rows = (rows - rows.mean(dim=0)) / (rows.std(dim=0, unbiased=False) + 1e-6)
        rows = torch.nn.functional.normalize(rows, dim=1)
    elif how == "l2":
        rows = torch.nn.functional.normalize(rows, dim=1)
    else:
        raise ValueError(f"feature_norm must be one of none, l2, standard; got {how!r}")
    out[mask] = rows
    return out
