"""``recbole-rlmm prepare amazon``: raw Amazon review dumps -> dataset.

Both releases by McAuley et al. are read, gzipped or not, and told apart line by line:

* 2014 (``reviews_<Cat>_5.json.gz``, ``meta_<Cat>.json.gz``): the meta lines are Python
  literals (single quotes), parsed with :func:`ast.literal_eval`; ``categories`` is a
  list of category paths, ``description`` a string, ``imUrl`` the image URL.
* 2018 (``<Cat>_5.json.gz``, ``meta_<Cat>.json.gz``): JSON lines; ``category`` is a list,
  ``description`` a list of strings, images in ``imageURLHighRes``/``imageURL``.

Reviews give ``reviewerID``, ``asin``, ``overall`` (rating) and ``unixReviewTime``. The
item text follows MMRec's recipe for Amazon: title, brand, categories, description.
"""

from __future__ import annotations

import ast
import gzip
import html
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic import ITEM, RATING, TIME, USER, PrepareError, check_tokens
from .defaults import DEFAULT_TEXT_FIELDS
from .encoders import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, ImageEncoder, TextEncoder
from .images import download_images
from .table import (
    FeatureOptions,
    ItemSources,
    Target,
    finalize_interactions,
    item_text,
    prepare_frames,
)

#: MMRec's text recipe for Amazon items.
_TAG = re.compile(r"<[^>]+>")


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, record)`` of a JSON-lines or Python-literal-lines file."""
    path = Path(path)
    if not path.is_file():
        raise PrepareError(f"{path}: no such file.")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    try:
                        record = ast.literal_eval(line)
                    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
                        raise PrepareError(
                            f"{path} line {number}: neither JSON nor a Python literal "
                            f"({type(exc).__name__}); give the original Amazon review/meta dump."
                        ) from exc
                if not isinstance(record, dict):
                    raise PrepareError(
                        f"{path} line {number}: expected one object per line, got {type(record).__name__}."
                    )
                yield number, record
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise PrepareError(f"{path}: cannot read ({type(exc).__name__}: {exc}).") from exc


def read_reviews(path: Path) -> pd.DataFrame:
    """Interactions (canonical columns) of a review dump; ratings and times when present."""
    users: list[str] = []
    items: list[str] = []
    ratings: list[float] = []
    times: list[float] = []
    for number, record in iter_records(path):
        user, item = record.get("reviewerID"), record.get("asin")
        if not user or not item:
            raise PrepareError(
                f"{path} line {number}: no {'reviewerID' if not user else 'asin'}; "
                "is this a review file (reviews_<Cat>_5.json.gz or <Cat>_5.json.gz)?"
            )
        users.append(str(user).strip())
        items.append(str(item).strip())
        try:
            ratings.append(float(record.get("overall", "nan")))
            times.append(float(record.get("unixReviewTime", "nan")))
        except (TypeError, ValueError) as exc:
            raise PrepareError(
                f"{path} line {number}: overall/unixReviewTime is not a number ({exc})."
            ) from exc
    if not users:
        raise PrepareError(f"{path}: no reviews.")
    frame = pd.DataFrame({USER: users, ITEM: items})
    for column, values in ((RATING, ratings), (TIME, times)):
        series = pd.Series(values, dtype="float64")
        if series.notna().all():
            frame[column] = series
    check_tokens(frame[USER].unique(), "reviewerID", str(path))
    check_tokens(frame[ITEM].unique(), "asin", str(path))
    return frame


def _clean(value: Any) -> Any:
    """Strip HTML tags/entities from strings (recursively in lists)."""
    if isinstance(value, str):
        return " ".join(html.unescape(_TAG.sub(" ", value)).split())
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def meta_fields(record: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Normalise one meta record of either release: ``(text fields, image URL or None)``."""
    fields: dict[str, Any] = {}
    for key in ("title", "brand"):
        if record.get(key):
            fields[key] = _clean(record[key])
    categories = record.get("categories") or record.get("category")
    if categories:
        fields["categories"] = _clean(categories)
    description = record.get("description")
    if description:
        fields["description"] = _clean(description)
    for key, value in record.items():
        if key not in fields and isinstance(value, str) and key not in ("asin", "imUrl"):
            fields.setdefault(key, _clean(value))
    url = None
    for key in ("imageURLHighRes", "imageURL", "imUrl"):
        value = record.get(key)
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, str) and v.strip()), None)
        if isinstance(value, str) and value.strip():
            url = value.strip()
            break
    return fields, url


def read_meta(
    path: Path, wanted: set[str], text_fields: Sequence[str]
) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """Texts and image URLs of the ``wanted`` items: ``(texts, urls, items found in meta)``.

    The first record of an item wins (the 2018 meta repeats some items).
    """
    texts: dict[str, str] = {}
    urls: dict[str, str] = {}
    seen: set[str] = set()
    for number, record in iter_records(path):
        item = record.get("asin")
        if not item:
            raise PrepareError(f"{path} line {number}: no asin; is this a meta_<Cat>.json.gz file?")
        item = str(item).strip()
        if item not in wanted or item in seen:
            continue
        seen.add(item)
        fields, url = meta_fields(record)
        text = item_text(fields, text_fields)
        if text:
            texts[item] = text
        if url:
            urls[item] = url
    return texts, urls, seen


def prepare_amazon(
    reviews: str | Path,
    meta: str | Path | None = None,
    *,
    name: str,
    out: str | Path = "dataset",
    images: str | Path | None = None,
    download: bool = False,
    image_cache: str | Path | None = None,
    kcore: int = 5,
    split_ratio: Sequence[float] | None = None,
    seed: int = 2024,
    text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS,
    text_encoder: str | TextEncoder | None = DEFAULT_TEXT_MODEL,
    image_encoder: str | ImageEncoder | None = DEFAULT_IMAGE_MODEL,
    float16: bool = False,
    batch_size: int = 64,
    device: str | None = None,
    cache_dir: str | Path | None = None,
    retries: int = 3,
    timeout: float = 20.0,
    backoff: float = 1.0,
    workers: int = 8,
    overwrite: bool = False,
    echo: bool = True,
) -> Path:
    """Build a dataset from Amazon review (+ meta) dumps; returns ``out/name``.

    Images come from ``images`` (``<asin>.jpg|png|webp``) or, with ``download``, from the
    meta image URLs, downloaded into ``image_cache`` (default ``out/name/_cache/images``)
    with ``retries`` retries and reused on the next run.
    """
    if images is not None and download:
        raise PrepareError("give either --images DIR or --download-images, not both.")
    target = Target.open("amazon", name, out, overwrite, echo)
    report = target.report
    reviews = Path(reviews)
    frame = read_reviews(reviews)
    report.add(
        f"  {reviews.name}: {len(frame):,} reviews, {frame[USER].nunique():,} users, "
        f"{frame[ITEM].nunique():,} items"
    )
    inter = finalize_interactions(
        frame, kcore=kcore, split_ratio=split_ratio, seed=seed, report=report
    )
    wanted = set(inter[ITEM])
    sources = ItemSources()
    urls: dict[str, str] = {}
    if meta is not None:
        sources.texts, urls, seen = read_meta(Path(meta), wanted, text_fields)
        sources.text_items = sorted(seen)
        report.add(
            f"  {Path(meta).name}: metadata for {len(seen):,} of {len(wanted):,} items, text from "
            f"{list(text_fields)}, {len(urls):,} image URLs"
        )
    else:
        report.add("  no --meta file: no text features and no image URLs")
    if images is not None:
        sources.add_image_folder(images, sorted(wanted), report)
    elif download:
        cache = (
            Path(image_cache) if image_cache is not None else target.folder / "_cache" / "images"
        )
        for item in wanted - set(urls):
            sources.image_failures[item] = "no image URL in meta"
        sources.images, download_failures = download_images(
            {item: urls[item] for item in sorted(urls)}, cache, retries, timeout, backoff, workers
        )
        sources.image_failures.update(download_failures)
        report.add(
            f"  images: {len(sources.images):,} of {len(wanted):,} items available in {cache} "
            f"({len(download_failures):,} downloads failed)"
        )
    else:
        report.add("  no --images/--download-images: no image features")
    options = FeatureOptions(text_encoder, image_encoder, float16, batch_size, device, cache_dir)
    return prepare_frames(inter, sources, target, options, finalized=True)
