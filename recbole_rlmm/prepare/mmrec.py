"""``recbole-rlmm prepare mmrec``: an MMRec data folder -> RecBole atomic files.

MMRec (github.com/enoche/MMRec) keeps one folder per data set::

    NAME.inter          tab-separated: userID itemID [rating timestamp] x_label
    image_feat.npy      row i = visual feature of itemID i (4096-d CNN in MMRec's data)
    text_feat.npy       row i = text feature of itemID i (384-d all-MiniLM-L6-v2)
    u_id_mapping.csv    optional, tab-separated raw user id -> userID
    i_id_mapping.csv    optional, tab-separated raw item id (ASIN) -> itemID

``x_label`` 0/1/2 is MMRec's train/valid/test split, kept as is. Feature rows are
copied in itemID order, so ``NAME.item_index`` line i is the token of MMRec item i.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import (
    ITEM,
    RATING,
    SPLIT,
    SPLITS,
    TIME,
    USER,
    PrepareError,
    Report,
    check_tokens,
    data_path_for,
    ensure_writable,
    report_coverage,
    report_splits,
    write_dataset,
)

X_LABELS = {"0": "train", "1": "valid", "2": "test"}


def find_inter_file(folder: Path, name: str, inter_file: str | Path | None = None) -> Path:
    """``--inter`` if given, else ``folder/NAME.inter``, else the only ``*.inter`` in ``folder``."""
    if inter_file is not None:
        path = Path(inter_file)
        path = path if path.is_file() else folder / path
        if not path.is_file():
            raise PrepareError(f"--inter {inter_file}: no such file (also looked in {folder}).")
        return path
    own = folder / f"{name}.inter"
    if own.is_file():
        return own
    candidates = sorted(folder.glob("*.inter"))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise PrepareError(
            f"{folder}: no *.inter file; an MMRec folder holds NAME.inter (userID itemID x_label)."
        )
    raise PrepareError(
        f"{folder}: several .inter files ({', '.join(p.name for p in candidates)}) and none is "
        f"{name}.inter; pick one with --inter FILE."
    )


def _int_column(frame: pd.DataFrame, column: str, source: Path) -> np.ndarray:
    raw = frame[column].astype(str).str.strip()
    ok = raw.str.fullmatch(r"\d+")
    if not ok.all():
        row = int(np.flatnonzero(~ok.to_numpy())[0])
        raise PrepareError(
            f"{source} line {row + 2}: {column} = {raw.iloc[row]!r} is not a non-negative integer; "
            "MMRec ids are 0-based integers (raw ids belong in u_id_mapping.csv/i_id_mapping.csv)."
        )
    return raw.astype(np.int64).to_numpy()


def read_mapping(path: Path, id_column: str) -> list[str]:
    """Read ``raw id -> MMRec id`` (tab-separated, header) into a list indexed by MMRec id."""
    sep = "\t" if "\t" in path.read_text(encoding="utf-8").split("\n", 1)[0] else ","
    frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    if frame.shape[1] < 2:
        raise PrepareError(
            f"{path}: expected two columns (raw id, then {id_column}), found {list(frame.columns)}."
        )
    int_col = id_column if id_column in frame.columns else frame.columns[1]
    raw_col = next(c for c in frame.columns if c != int_col)
    ids = _int_column(frame, int_col, path)
    raw = frame[raw_col].astype(str).str.strip()
    n = len(frame)
    if n and (len(np.unique(ids)) != n or ids.min() != 0 or ids.max() != n - 1):
        seen = set(ids.tolist())
        gap = next((i for i in range(n) if i not in seen), None)
        dup = pd.Series(ids).duplicated()
        detail = (
            f"{int_col} {int(ids[dup.to_numpy()][0])} appears twice"
            if dup.any()
            else f"{int_col} {gap} is missing"
        )
        raise PrepareError(
            f"{path}: {detail}; the mapping must list every id 0..{n - 1} exactly once."
        )
    dup_raw = raw.duplicated()
    if dup_raw.any():
        raise PrepareError(
            f"{path}: raw id {raw[dup_raw].iloc[0]!r} is mapped to two {int_col}s; each raw id "
            "must appear once."
        )
    check_tokens(raw.unique(), raw_col, str(path))
    tokens = [""] * n
    for i, token in zip(ids, raw, strict=True):
        tokens[int(i)] = token
    return tokens


def _npy_rows(path: Path) -> int | None:
    """Row count of a .npy file from its header (None if unreadable or not 2-D)."""
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return int(matrix.shape[0]) if matrix.ndim == 2 else None


def read_features(path: Path, n_items: int, item_source: str) -> np.ndarray:
    """Load one ``*_feat.npy`` and check that it has one finite row per item."""
    try:
        matrix = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise PrepareError(
            f"{path}: not a plain numeric .npy array ({exc}); save it with numpy.save(array)."
        ) from exc
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise PrepareError(
            f"{path}: shape {matrix.shape} (dtype {matrix.dtype}); expected a 2-D numeric array "
            "(items x dimensions)."
        )
    if matrix.shape[0] != n_items:
        raise PrepareError(
            f"{path}: {matrix.shape[0]:,} rows but {item_source} define {n_items:,} items "
            f"(itemID 0..{n_items - 1}); row i must be the feature of itemID i. Use the feature "
            "file made for this .inter/i_id_mapping.csv, or regenerate it for this item set."
        )
    finite = np.isfinite(matrix)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise PrepareError(
            f"{path}: row {row} (itemID {row}) holds NaN or infinite values; fix or zero it."
        )
    return matrix


def prepare_mmrec(
    folder: str | Path,
    *,
    name: str,
    out: str | Path = "dataset",
    inter_file: str | Path | None = None,
    user_col: str = "userID",
    item_col: str = "itemID",
    split_col: str = "x_label",
    float16: bool = False,
    overwrite: bool = False,
    echo: bool = True,
) -> Path:
    """Convert an MMRec data folder to a prepared dataset; returns ``out/name``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PrepareError(
            f"{folder}: no such folder; give the MMRec data folder (holding NAME.inter)."
        )
    out_dir = Path(out) / name
    ensure_writable(out_dir, name, overwrite)
    report = Report(echo)
    report.add(f"recbole-rlmm prepare mmrec {folder} -> {out_dir}")
    path = find_inter_file(folder, name, inter_file)
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in (user_col, item_col, split_col) if c not in frame.columns]
    if missing:
        raise PrepareError(
            f"{path}: missing column(s) {missing}; found {list(frame.columns)}. An MMRec .inter is "
            "tab-separated with the header 'userID itemID [rating timestamp] x_label' (other "
            "names: --user-col/--item-col/--split-col)."
        )
    users = _int_column(frame, user_col, path)
    items = _int_column(frame, item_col, path)
    labels = frame[split_col].astype(str).str.strip()
    bad = ~labels.isin(list(X_LABELS))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise PrepareError(
            f"{path} line {row + 2}: {split_col} = {labels.iloc[row]!r} ({int(bad.sum())} such rows); "
            f"MMRec uses 0 = train, 1 = valid, 2 = test. Fix those values or drop the rows."
        )
    pairs = pd.DataFrame({"u": users, "i": items})
    dup = pairs.duplicated(keep=False)
    if dup.any():
        first = pairs[dup].iloc[0]
        lines = [
            int(r) + 2
            for r in np.flatnonzero(((pairs.u == first.u) & (pairs.i == first.i)).to_numpy())
        ]
        raise PrepareError(
            f"{path} lines {lines}: duplicated pair {user_col}={first.u} {item_col}={first.i} "
            f"({int(pairs.duplicated().sum())} repeated pairs in all); each user-item pair must "
            "appear once: de-duplicate the file (keep one row per pair)."
        )

    user_map = folder / "u_id_mapping.csv"
    item_map = folder / "i_id_mapping.csv"
    user_tokens: Sequence[str] | None = (
        read_mapping(user_map, user_col) if user_map.is_file() else None
    )
    item_tokens: list[str]
    if item_map.is_file():
        item_tokens = read_mapping(item_map, item_col)
        item_source = f"{item_map.name} ({len(item_tokens):,} rows)"
    else:
        # Without a mapping the item count is max(itemID) + 1, or the feature files' common row
        # count when that is larger (trailing items without interactions).
        n_items = int(items.max()) + 1 if len(items) else 0
        item_source = f"the itemIDs of {path.name} (0..max)"
        rows = {f.name: _npy_rows(f) for f in sorted(folder.glob("*_feat.npy"))}
        if rows and len(set(rows.values())) == 1 and next(iter(rows.values())) > n_items:
            n_items = next(iter(rows.values()))
            item_source = f"the feature files ({', '.join(rows)}) and {path.name}"
        item_tokens = [str(i) for i in range(n_items)]
    n_items = len(item_tokens)
    for ids, tokens, column, source in (
        (users, user_tokens, user_col, user_map),
        (items, item_tokens, item_col, item_map),
    ):
        if tokens is not None and len(ids) and ids.max() >= len(tokens):
            row = int(np.flatnonzero(ids >= len(tokens))[0])
            raise PrepareError(
                f"{path} line {row + 2}: {column} {ids[row]} has no row in {source.name} "
                f"(ids 0..{len(tokens) - 1}); use the mapping made with this .inter file."
            )
    inter = pd.DataFrame(
        {
            USER: [user_tokens[u] for u in users] if user_tokens is not None else users.astype(str),
            ITEM: [item_tokens[i] for i in items],
        }
    )
    for column in (RATING, TIME):
        if column in frame.columns:
            values = pd.to_numeric(frame[column], errors="coerce")
            if values.isna().any():
                row = int(np.flatnonzero(values.isna().to_numpy())[0])
                raise PrepareError(
                    f"{path} line {row + 2}: {column} = {frame[column].iloc[row]!r} is not a number."
                )
            inter[column] = values.astype(np.float64).to_numpy()
    inter[SPLIT] = labels.map(X_LABELS).to_numpy()
    report.add(
        f"  {path.name}: {len(inter):,} interactions, {len(np.unique(users)):,} users, "
        f"{n_items:,} items"
        + (
            ", raw ids from " + ", ".join(p.name for p in (user_map, item_map) if p.is_file())
            if user_map.is_file() or item_map.is_file()
            else ", MMRec integer ids as tokens"
        )
    )
    unused = sorted(set(range(n_items)) - set(items.tolist()))
    if unused:
        report.listing(
            "items without interactions (kept, their feature rows too)",
            [item_tokens[i] for i in unused],
        )

    features: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for feat in sorted(folder.glob("*_feat.npy")):
        modality = feat.name[: -len("_feat.npy")]
        features[modality] = read_features(feat, n_items, item_source)
        sources[modality] = feat.name
    if not features:
        report.add(f"  no *_feat.npy in {folder}: the dataset has no modality features")
    report.add("  interactions per split (from x_label):")
    report_splits(report, inter, item_tokens)
    if features:
        report.add("  modality coverage (items with a non-zero feature row):")
        report_coverage(report, features, sources)
    write_dataset(
        out_dir,
        name,
        inter,
        item_tokens,
        features,
        float16=float16,
        kind="mmrec",
        report=report,
        overwrite=overwrite,
        data_path=data_path_for(Path(out)),
    )
    return out_dir


__all__ = ["SPLITS", "prepare_mmrec", "read_features", "read_mapping"]
