"""``recbole-rlmm prepare table``: interactions + item table + image folder -> dataset.

:func:`prepare_table` reads the files, and :func:`prepare_frames` (shared with
``prepare amazon``) does the rest: de-duplication, k-core filtering, the split, text and
image features and writing the output contract of :mod:`.atomic`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    kcore_filter,
    map_split_column,
    natural_sorted,
    ratio_split,
    report_coverage,
    report_splits,
    write_dataset,
)
from .defaults import DEFAULT_SPLIT_RATIO
from .encoders import (
    DEFAULT_IMAGE_MODEL,
    DEFAULT_TEXT_MODEL,
    ImageEncoder,
    TextEncoder,
    assemble,
    encode_images,
    encode_texts,
    make_image_encoder,
    make_text_encoder,
)
from .images import find_images

USER_CANDIDATES = ("user_id", "user", "userID", "userId", "reviewerID", "uid")
ITEM_CANDIDATES = ("item_id", "item", "itemID", "itemId", "asin", "movie_id", "iid")
RATING_CANDIDATES = ("rating", "overall")
TIME_CANDIDATES = ("timestamp", "unixReviewTime", "time")


@dataclass
class FeatureOptions:
    """How item features are computed (shared by ``prepare table`` and ``prepare amazon``)."""

    text_encoder: str | TextEncoder | None = DEFAULT_TEXT_MODEL
    image_encoder: str | ImageEncoder | None = DEFAULT_IMAGE_MODEL
    float16: bool = False
    batch_size: int = 64
    device: str | None = None
    cache_dir: str | Path | None = None

    def __post_init__(self) -> None:
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)


@dataclass
class ItemSources:
    """What a ``prepare`` command knows about the items besides the interactions."""

    #: item -> text; None when the input has no text source
    texts: Mapping[str, str] | None = None
    #: every item of the item table / meta file (for the report)
    text_items: Sequence[str] | None = None
    #: item -> image file; None when the input has no image source
    images: Mapping[str, Path] | None = None
    #: item -> why it has no image, for items already known to lack one
    image_failures: dict[str, str] = field(default_factory=dict)

    def add_image_folder(self, folder: str | Path, wanted: Sequence[str], report: Report) -> None:
        """Take the images of the ``wanted`` items from ``folder`` (``<item>.jpg|png|...``)."""
        self.images, absent = find_images(Path(folder), wanted)
        self.image_failures = dict.fromkeys(absent, "no image file")
        report.add(
            f"  {Path(folder)}: image files for {len(self.images):,} of {len(wanted):,} items"
        )


@dataclass
class Target:
    """The dataset a ``prepare`` command writes (``out/name``) and its report."""

    kind: str
    name: str
    out: Path
    overwrite: bool
    report: Report

    @property
    def folder(self) -> Path:
        return self.out / self.name

    @classmethod
    def open(cls, kind: str, name: str, out: str | Path, overwrite: bool, echo: bool) -> Target:
        """Check that ``out/name`` may be written and start the report with its header."""
        target = cls(kind, name, Path(out), overwrite, Report(echo))
        ensure_writable(target.folder, name, overwrite)
        target.report.add(f"recbole-rlmm prepare {kind} -> {target.folder}")
        return target


# --------------------------------------------------------------------------- reading


def read_table(path: Path, sep: str | None = None) -> pd.DataFrame:
    """Read a CSV/TSV file (optionally gzipped) as strings; ``sep=None`` sniffs tab vs comma."""
    path = Path(path)
    if not path.is_file():
        raise PrepareError(f"{path}: no such file.")
    if sep is None:
        import gzip

        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
        sep = "\t" if "\t" in first else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PrepareError(
            f"{path}: cannot parse as a {'tab' if sep == chr(9) else repr(sep)}-separated table: {exc}"
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def pick_column(
    frame: pd.DataFrame,
    given: str | None,
    candidates: Sequence[str],
    source: Path | str,
    option: str,
    required: bool = True,
) -> str | None:
    """The column named by ``option`` or, when not given, the first present candidate."""
    columns = list(frame.columns)
    if given:
        if given not in columns:
            raise PrepareError(
                f"{source}: no column {given!r} ({option}); the columns are {columns}. "
                f"Pass the right name with {option}."
            )
        return given
    for name in candidates:
        if name in columns:
            return name
    if required:
        raise PrepareError(
            f"{source}: none of the columns {columns} looks like the {option[2:].replace('-', ' ')} "
            f"(tried {list(candidates)}); name it with {option}."
        )
    return None


def _numeric(frame: pd.DataFrame, column: str, source: Path | str, option: str) -> pd.Series:
    raw = frame[column].astype(str).str.strip()
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise PrepareError(
            f"{source} line {row + 2}: {column} = {raw.iloc[row]!r} is not a number; fix the "
            f"value or leave the column out (drop {option})."
        )
    return values.astype(np.float64)


def read_interactions(
    path: Path,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    time_col: str | None = None,
    split_col: str | None = None,
    split_values: Sequence[str] = SPLITS,
    sep: str | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read an interaction table into the canonical columns.

    Returns the frame and ``{canonical: source column}`` of the columns used. ``rating`` and
    ``timestamp`` are taken from columns named ``rating``/``timestamp`` unless named.
    """
    frame = read_table(path, sep)
    used: dict[str, str] = {}
    used[USER] = pick_column(frame, user_col, USER_CANDIDATES, path, "--user-col")  # type: ignore[assignment]
    used[ITEM] = pick_column(frame, item_col, ITEM_CANDIDATES, path, "--item-col")  # type: ignore[assignment]
    rating = pick_column(frame, rating_col, ("rating",), path, "--rating-col", required=False)
    timestamp = pick_column(frame, time_col, ("timestamp",), path, "--time-col", required=False)
    split = (
        pick_column(frame, split_col, (), path, "--split-col", required=False)
        if split_col
        else None
    )
    inter = pd.DataFrame(index=frame.index)
    for canonical in (USER, ITEM):
        column = used[canonical]
        values = frame[column].astype(str).str.strip()
        empty = values == ""
        if empty.any():
            row = int(np.flatnonzero(empty.to_numpy())[0])
            raise PrepareError(
                f"{path} line {row + 2}: empty {column} ({int(empty.sum())} rows in all); every "
                "interaction needs a user and an item id: fill or drop those rows."
            )
        check_tokens(values.unique(), column, str(path))
        inter[canonical] = values
    if rating:
        used[RATING] = rating
        inter[RATING] = _numeric(frame, rating, path, "--rating-col")
    if timestamp:
        used[TIME] = timestamp
        inter[TIME] = _numeric(frame, timestamp, path, "--time-col")
    if split:
        used[SPLIT] = split
        inter[SPLIT] = map_split_column(frame[split], split_values, str(path), split)
    return inter, used


def item_text(values: Mapping[str, object], columns: Sequence[str]) -> str:
    """Join the chosen columns as ``"title: X. genres: A, B. plot: ..."``; empty values are left out.

    List values (Amazon categories) are joined with commas, ``|``-separated values
    (MovieLens genres) become comma-separated, and each part ends with a full stop.
    """
    parts: list[str] = []
    for column in columns:
        value = values.get(column)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        if isinstance(value, list | tuple):
            flat: list[str] = []
            for entry in value:
                flat.extend(str(e) for e in entry) if isinstance(
                    entry, list | tuple
                ) else flat.append(str(entry))
            value = ", ".join(dict.fromkeys(v.strip() for v in flat if str(v).strip()))
        text = " ".join(str(value).replace("|", ", ").split())
        if not text:
            continue
        if text[-1] not in ".!?":
            text += "."
        parts.append(f"{column.replace('_', ' ')}: {text}")
    return " ".join(parts)


def read_item_texts(
    path: Path,
    item_col: str | None,
    text_cols: Sequence[str] | None,
    sep: str | None = None,
) -> tuple[dict[str, str], list[str], list[str]]:
    """Read the item table; returns ``(item -> text, text columns used, items without text)``.

    Without ``text_cols`` every column except the id that holds non-numeric values is used.
    Duplicated item ids are refused.
    """
    frame = read_table(path, sep)
    id_col = pick_column(frame, item_col, ITEM_CANDIDATES, path, "--items-item-col")
    assert id_col is not None
    ids = frame[id_col].astype(str).str.strip()
    dup = ids.duplicated(keep=False) & (ids != "")
    if dup.any():
        first = ids[dup].iloc[0]
        lines = [int(i) + 2 for i in np.flatnonzero((ids == first).to_numpy())[:3]]
        raise PrepareError(
            f"{path}: item {first!r} appears on lines {lines} ({int(ids[dup].nunique())} duplicated "
            "ids in all); keep one row per item."
        )
    if text_cols:
        missing = [c for c in text_cols if c not in frame.columns]
        if missing:
            raise PrepareError(
                f"{path}: no column(s) {missing} (--text-cols); the columns are {list(frame.columns)}."
            )
        columns = list(text_cols)
    else:
        columns = []
        for column in frame.columns:
            if column == id_col:
                continue
            values = frame[column].astype(str).str.strip()
            values = values[values != ""]
            if len(values) and pd.to_numeric(values, errors="coerce").isna().any():
                columns.append(column)
    texts: dict[str, str] = {}
    empty: list[str] = []
    records = frame[columns].to_dict("records") if columns else [{} for _ in range(len(frame))]
    for item, record in zip(ids, records, strict=True):
        if not item:
            continue
        text = item_text(record, columns)
        if text:
            texts[item] = text
        else:
            empty.append(item)
    return texts, columns, empty


# --------------------------------------------------------------------------- pipeline


def finalize_interactions(
    inter: pd.DataFrame,
    *,
    kcore: int,
    split_ratio: Sequence[float] | None,
    seed: int,
    report: Report,
) -> pd.DataFrame:
    """De-duplicate (user, item) pairs, apply the k-core filter and assign the split."""
    n_input = len(inter)
    if TIME in inter.columns:
        inter = inter.sort_values(TIME, kind="stable")
    duplicated = inter.duplicated([USER, ITEM], keep="last")
    if duplicated.any():
        report.add(
            f"  removed {int(duplicated.sum()):,} repeated (user, item) pairs, keeping the "
            f"{'latest' if TIME in inter.columns else 'last'} one"
        )
        inter = inter[~duplicated]
    inter = inter.sort_index()
    before = len(inter)
    inter = kcore_filter(inter, kcore)
    if kcore > 1:
        report.add(
            f"  {kcore}-core filter: kept {len(inter):,} of {before:,} interactions "
            f"({inter[USER].nunique():,} users, {inter[ITEM].nunique():,} items)"
        )
    if inter.empty:
        raise PrepareError(
            f"no interactions left (input had {n_input:,} rows)"
            + (f" after the {kcore}-core filter; lower --kcore." if kcore > 1 else ".")
        )
    inter = inter.copy()
    if SPLIT in inter.columns:
        if split_ratio is not None:
            raise PrepareError(
                "give either a split column (--split-col) or --split-ratio, not both."
            )
        report.add("  split: from the split column")
    else:
        ratios = tuple(split_ratio) if split_ratio is not None else DEFAULT_SPLIT_RATIO
        inter[SPLIT] = ratio_split(inter, ratios, seed)
        report.add(f"  split: per-user random {':'.join(f'{r:g}' for r in ratios)}, seed {seed}")
    return inter


def compute_features(
    items: Sequence[str],
    texts: Mapping[str, str] | None,
    images: Mapping[str, Path] | None,
    image_failures: Mapping[str, str],
    options: FeatureOptions,
    cache_dir: Path | None,
    report: Report,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Text and image feature matrices in ``items`` order (zero rows = missing).

    ``texts=None``/``images=None`` means the input has no such source; an encoder of
    ``"none"`` skips the modality. ``image_failures`` are images already known to be
    missing (item -> reason).
    """
    text_encoder = (
        make_text_encoder(options.text_encoder, options.device, options.batch_size)
        if texts is not None
        else None
    )
    image_encoder = (
        make_image_encoder(options.image_encoder, options.device) if images is not None else None
    )
    features: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    wanted = set(items)
    if text_encoder is not None and texts is not None:
        present = {item: text for item, text in texts.items() if item in wanted}
        vectors = encode_texts(
            text_encoder, present, cache_dir, chunk_size=max(1, options.batch_size)
        )
        features["text"] = assemble(items, vectors, text_encoder.dim or None)
        sources["text"] = text_encoder.label
    if image_encoder is not None and images is not None:
        present_paths = {item: path for item, path in images.items() if item in wanted}
        vectors, skipped = encode_images(
            image_encoder, present_paths, cache_dir, options.batch_size
        )
        features["image"] = assemble(items, vectors, image_encoder.dim or None)
        sources["image"] = image_encoder.label
        failures = {item: reason for item, reason in image_failures.items() if item in wanted}
        failures.update(skipped)
        if failures:
            reasons: dict[str, int] = {}
            for reason in failures.values():
                key = reason.split(":")[0]
                reasons[key] = reasons.get(key, 0) + 1
            summary = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
            report.add(
                f"  skipped images: {len(failures):,} items ({summary}); their image rows are zero"
            )
            report.listing("skipped images", {i: failures[i] for i in natural_sorted(failures)})
    return features, sources


def prepare_frames(
    inter: pd.DataFrame,
    sources: ItemSources,
    target: Target,
    options: FeatureOptions,
    *,
    kcore: int = 0,
    split_ratio: Sequence[float] | None = None,
    seed: int = 2024,
    finalized: bool = False,
) -> Path:
    """Filter, split, encode and write a dataset from in-memory inputs; returns its folder.

    ``inter`` has the canonical columns (a ``split`` column is used as is). With
    ``finalized`` the interactions were already filtered and split by
    :func:`finalize_interactions`.
    """
    report = target.report
    out_dir = target.folder
    ensure_writable(out_dir, target.name, target.overwrite)
    if not finalized:
        inter = finalize_interactions(
            inter, kcore=kcore, split_ratio=split_ratio, seed=seed, report=report
        )
    items = natural_sorted(inter[ITEM].unique())
    texts, text_items = sources.texts, sources.text_items
    if texts is not None and text_items is not None:
        unused = sorted(set(text_items) - set(items))
        if unused:
            report.listing(
                "items of the item table without interactions (left out)", natural_sorted(unused)
            )
        unknown = natural_sorted(set(items) - set(text_items))
        if unknown:
            report.listing("interaction items missing from the item table (no text)", unknown)
    if texts is not None:
        in_table = set(text_items) if text_items is not None else set(texts)
        no_text = natural_sorted((set(items) & in_table) - set(texts))
        if no_text:
            report.listing("items with empty text (zero text rows)", no_text)
    cache_dir = options.cache_dir if options.cache_dir is not None else out_dir / "_cache"
    features, encoded = compute_features(
        items, texts, sources.images, sources.image_failures, options, cache_dir, report
    )
    report.add("  interactions per split:")
    report_splits(report, inter, items)
    report.add("  modality coverage (items with a non-zero feature row):")
    if features:
        report_coverage(report, features, encoded)
    else:
        report.add("    none (no modality was encoded)")
    write_dataset(
        out_dir,
        target.name,
        inter,
        items,
        features,
        float16=options.float16,
        kind=target.kind,
        report=report,
        overwrite=target.overwrite,
        data_path=data_path_for(target.out),
    )
    return out_dir


def prepare_table(
    inter: str | Path,
    items: str | Path | None = None,
    images: str | Path | None = None,
    *,
    name: str,
    out: str | Path = "dataset",
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    time_col: str | None = None,
    split_col: str | None = None,
    split_values: Sequence[str] = SPLITS,
    items_item_col: str | None = None,
    text_cols: Sequence[str] | None = None,
    kcore: int = 0,
    split_ratio: Sequence[float] | None = None,
    seed: int = 2024,
    text_encoder: str | TextEncoder | None = DEFAULT_TEXT_MODEL,
    image_encoder: str | ImageEncoder | None = DEFAULT_IMAGE_MODEL,
    float16: bool = False,
    batch_size: int = 64,
    device: str | None = None,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    sep: str | None = None,
    echo: bool = True,
) -> Path:
    """Build a dataset from an interaction table, an item table and an image folder.

    Returns the output folder ``out/name``. See ``docs/DATA.md`` for the options; the
    encoders may also be given as :class:`TextEncoder`/:class:`ImageEncoder` objects.
    """
    target = Target.open("table", name, out, overwrite, echo)
    report = target.report
    inter_path = Path(inter)
    frame, used = read_interactions(
        inter_path, user_col, item_col, rating_col, time_col, split_col, split_values, sep
    )
    report.add(
        f"  {inter_path.name}: {len(frame):,} interactions, columns "
        + ", ".join(f"{src} -> {dst}" for dst, src in used.items())
    )
    sources = ItemSources()
    if items is not None:
        texts, columns, empty = read_item_texts(
            Path(items), items_item_col or (item_col if item_col else None), text_cols, sep
        )
        sources.texts, sources.text_items = texts, list(texts) + empty
        report.add(f"  {Path(items).name}: {len(sources.text_items):,} items, text from {columns}")
    else:
        report.add("  no --items table: no text features")
    if images is not None:
        sources.add_image_folder(images, frame[ITEM].unique(), report)
    else:
        report.add("  no --images folder: no image features")
    options = FeatureOptions(text_encoder, image_encoder, float16, batch_size, device, cache_dir)
    return prepare_frames(
        frame, sources, target, options, kcore=kcore, split_ratio=split_ratio, seed=seed
    )
