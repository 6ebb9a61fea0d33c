"""Checks of feature files (``.npy``) and item index files; the feature loader
(:mod:`recbole_rlmm.data.features`) calls them, and :mod:`.run` calls the file-level ones
before the dataset is loaded.

* a feature file must be a plain ``.npy`` array (not empty, not text, not an ``.npz``, not
  truncated, no Python objects) of float16/32/64, 2-D, with the configured ``dim``; values
  finite and within float32's range (features are used as float32);
* an item index must be a UTF-8 text file, one distinct token per line;
* rows must belong to the dataset's items: at most ``max_unknown_feature_rows`` of them may
  name unknown items, and without an index the item tokens must be ``0..n-1`` (row ``r`` is
  item ``r``);
* a modality must carry information: some item has a non-zero row, and not every item's row
  is the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recbole_rlmm.data.format import FEATURE_FILE_DTYPES
from recbole_rlmm.errors import UserError

logger = logging.getLogger("recbole_rlmm.data.features")

#: Largest magnitude float32 holds; float64 features beyond it overflow to inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Default of ``max_unknown_feature_rows``.
MAX_UNKNOWN_ROWS = 0.1
_SAVE = "np.save(path, features.astype(np.float32))"


class FeatureFileError(UserError):
    """A feature or index file cannot be used; the message names the file and the fix."""


def _describe_start(head: bytes) -> str:
    if head.startswith(b"PK"):
        return "it is a zip archive (an .npz?): load it and save the array itself"
    if head[:1] == b"\x80":
        return "it is a Python pickle: load it and save the array itself"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"it starts with the bytes {head[:12]!r}"
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.splitlines()[0][:40] if text.strip() else text[:40]
        return f"it is text (starting {first!r}): parse it and save the array"
    return f"it starts with the bytes {head[:12]!r}"


def npy_header(path: Path, modality: str, expected_dim: int | None = None) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file, read from its header only (the data is not read),
    after the checks of the module docstring that need no values."""
    if path.is_dir():
        raise FeatureFileError(
            f"{path}: the feature file of modality '{modality}' is a folder; point modalities.{modality} "
            "at the .npy file."
        )
    size = path.stat().st_size
    if size == 0:
        raise FeatureFileError(
            f"{path}: the feature file of modality '{modality}' is empty (0 bytes); write it again with {_SAVE}."
        )
    with open(path, "rb") as f:
        head = f.read(64)
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
        except ValueError:
            raise FeatureFileError(
                f"{path}: modality '{modality}' is not a .npy file ({_describe_start(head)} with {_SAVE})."
            ) from None
        try:
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # format 3.0 (utf-8 field names): np.load reads it
                return _header_from_load(path, modality, expected_dim)
        except (ValueError, OSError, SyntaxError) as exc:
            raise FeatureFileError(
                f"{path}: modality '{modality}' has a damaged .npy header ({exc}); write it again with {_SAVE}."
            ) from None
        offset = f.tell()
    _check_dtype_shape(path, modality, tuple(shape), dtype, expected_dim)
    needed = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < needed:
        raise FeatureFileError(
            f"{path}: modality '{modality}' is truncated: its header promises shape {tuple(shape)} "
            f"({needed} bytes) but the file has {size}; write it again with {_SAVE}."
        )
    return tuple(shape), dtype


def _header_from_load(path: Path, modality: str, expected_dim: int | None) -> tuple[tuple[int, ...], np.dtype]:
    array = np.load(path, allow_pickle=False, mmap_mode="r")
    _check_dtype_shape(path, modality, array.shape, array.dtype, expected_dim)
    return array.shape, array.dtype


def _check_dtype_shape(
    path: Path, modality: str, shape: tuple[int, ...], dtype: np.dtype, expected_dim: int | None
) -> None:
    if dtype.hasobject:
        raise FeatureFileError(
            f"{path}: modality '{modality}' holds Python objects, which are not loaded without pickle "
            f"(arbitrary code). Save features as a plain float array with {_SAVE}."
        )
    if dtype not in FEATURE_FILE_DTYPES:
        raise FeatureFileError(
            f"{path}: dtype {dtype} is not supported for modality '{modality}'; use float16, float32 "
            f"or float64 ({_SAVE})."
        )
    if len(shape) != 2 or shape[1] == 0:
        raise FeatureFileError(
            f"{path}: modality '{modality}' must be a 2-D array (items x feature dimension), got shape "
            f"{shape}. Reshape it to (n_items, d)."
        )
    if expected_dim is not None and shape[1] != int(expected_dim):
        raise FeatureFileError(
            f"{path}: modality '{modality}' has dimension {shape[1]} but the config says dim: "
            f"{expected_dim}. Fix modalities.{modality}.dim or the file."
        )


def check_feature_values(path: Path, modality: str, array: np.ndarray, first_row: int = 0) -> None:
    """Every value finite, and within float32's range (features are used as float32).
    ``array`` may be a block of the file's rows starting at row ``first_row``."""
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise FeatureFileError(
            f"{path}: modality '{modality}' has NaN or inf values in {len(bad)} row(s), first row "
            f"{int(bad[0]) + first_row}. Recompute those features, or set the whole row to zeros to mark the item "
            f"as missing this modality."
        )
    if array.dtype == np.float64:
        big = (np.abs(array) > FLOAT32_MAX).any(axis=1)
        if big.any():
            rows = np.flatnonzero(big)
            row = int(rows[0])
            value = float(array[row][np.abs(array[row]) > FLOAT32_MAX][0])
            raise FeatureFileError(
                f"{path}: modality '{modality}' has values beyond float32's range (|x| > 3.4e38) in "
                f"{len(rows)} row(s), first row {row + first_row} ({value:.3g}); features are used as float32, so "
                f"they would become inf. Rescale the features (e.g. standardise them) and save them again."
            )


def read_index(path: Path) -> list[str]:
    """The tokens of an item index file (one per line), checked: a file, UTF-8, no empty or
    duplicated lines."""
    if path.is_dir():
        raise FeatureFileError(
            f"{path}: the item index is a folder; it must be a text file with one item token per line "
            "(or remove it to match rows to item tokens by row number)."
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FeatureFileError(
            f"{path}: byte {exc.start} (line {line}) is not UTF-8; the item index must be UTF-8 text, one "
            "item token per line. Save it as UTF-8."
        ) from None
    tokens = [line.rstrip("\r") for line in text.split("\n")]
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


def check_row_numbers(path: Path, index_path: Path, item_tokens: Sequence[str], dataset: str) -> None:
    """Without an index, row ``r`` is item token ``r``: the item tokens must be ``0..n-1``."""
    n = len(item_tokens)
    expected = {str(i) for i in range(n)}
    extra = [t for t in item_tokens if t not in expected]
    if not extra:
        return
    missing = sorted((int(t) for t in expected - set(item_tokens)), key=int)
    gap = f", and no item is {str(missing[0])!r}" if missing else ""
    raise FeatureFileError(
        f"{path}: there is no item index ({index_path} does not exist), so row r would belong to item "
        f"token 'r' (MMRec's convention), but the {n} item tokens of dataset '{dataset}' are not "
        f"0..{n - 1} (e.g. item {extra[0]!r} is not a row number of 0..{n - 1}{gap}): items would get "
        f"other items' features. Provide {index_path} with the item token of each feature row, one per line."
    )


def check_unknown_rows(
    path: Path, modality: str, tokens: Sequence[str], known: np.ndarray, source: str, index_path: Path,
    dataset: str, limit: float,
) -> None:
    """Rows whose token is not an item of the dataset: none matching, or a share above
    ``limit``, is an error (the index is probably another dataset's); fewer are a warning."""
    n = len(tokens)
    unknown = int((~known).sum())
    if not n or not unknown:
        return
    examples = ", ".join(repr(tokens[i]) for i in np.flatnonzero(~known)[:3])
    if not known.any():
        raise FeatureFileError(
            f"{path}: none of its {n} rows matches an item of dataset '{dataset}' (rows are matched "
            f"through {source}; e.g. {tokens[0]!r} is not an item token). Provide {index_path} with one "
            f"item token per line in row order."
        )
    share = unknown / n
    if share > limit:
        raise FeatureFileError(
            f"{path}: {unknown} of its {n} rows ({share:.0%}) belong to items that are not in dataset "
            f"'{dataset}' (e.g. {examples}; rows are matched through {source}), more than "
            f"max_unknown_feature_rows={limit:g}. Is the index for another dataset? Fix {index_path}, "
            f"or raise max_unknown_feature_rows if the features cover more items than the dataset."
        )
    logger.warning(
        "modality %s: %d of the %d rows of %s (%.1f%%) belong to items not in dataset '%s' (e.g. %s); "
        "they are ignored",
        modality, unknown, n, path, 100.0 * share, dataset, examples,
    )


def check_information(path: Path, modality: str, rows: np.ndarray, n_rows: int, others: Sequence[str], dataset: str) -> None:
    """A modality whose items' rows are all zero or all identical carries no information."""
    same = len(rows) > 0 and bool((rows == rows[0]).all())
    check_information_counts(path, modality, len(rows), same, n_rows, others, dataset)


def check_information_counts(
    path: Path, modality: str, n_present: int, all_same: bool, n_rows: int, others: Sequence[str], dataset: str
) -> None:
    """:func:`check_information` from the number of the items' non-zero rows and whether they
    are all identical (for files read a block at a time)."""
    other = [m for m in others if m != modality and m in ("image", "text")]
    only = f"on {other[0]} only (--fusion={other[0]}) or " if other else ""
    fix = (
        f"Recompute the features, remove '{modality}' from `modalities`, or train RLMultimodalRec "
        f"{only}ID-only (--fusion=none)."
    )
    if n_present == 0:
        raise FeatureFileError(
            f"{path}: modality '{modality}' carries no information: no item of dataset '{dataset}' has a "
            f"non-zero row (an all-zero row means the item lacks the modality; the file has {n_rows} "
            f"rows). {fix}"
        )
    if all_same:
        count = "its only item row" if n_present == 1 else f"all {n_present} item rows are identical"
        raise FeatureFileError(
            f"{path}: modality '{modality}' carries no information: {count}, so it cannot tell items "
            f"apart (standardisation turns such rows into zeros). {fix}"
        )
