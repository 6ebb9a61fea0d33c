"""Build the embedded default dataset ``dataset/movielens-mm/`` from MovieLens-1M-MM.

Source: ``shared/data/movielens-1m-mm`` (see its README): ``interactions.csv``
(``user,item,split`` with a cold-start item split, which is ignored here), ``items.csv``
(title, genres, director, actors, plot) and ``posters/<item>.jpg`` (2,859 of 3,018 items).

Steps (all seeded, so the output is reproducible):

1. draw ``--users`` users at random (``numpy.random.default_rng(--seed)``);
2. unless ``--no-cover-items``, add users until every item has at least one interaction:
   for each still uncovered item (in id order) one random user who rated it is added,
   so the dataset keeps ALL 3,018 items, including the 159 without a poster;
3. run ``recbole-rlmm prepare table`` on those users' interactions (every row, whatever
   its original split) with a per-user random 8:1:1 split, text = title, genres,
   director, actors, plot (all-MiniLM-L6-v2, 384-d), image = poster (EfficientNet-Lite0,
   1280-d), float16 features;
4. write what ``recbole-rlmm serve``'s page shows (:func:`write_catalog`): ``NAME.item`` (RecBole's
   item features: ``title`` and ``genres`` of every item, from ``items.csv``; not loaded for
   training, whose ``load_col`` reads the interactions only), ``images/<item>.jpg`` (every
   poster as a thumbnail 100 px wide, JPEG quality 72, about 13 MB for the 2,859 posters) and
   ``item_images: images`` in ``NAME.yaml``.

Run from the repository root::

    OMP_NUM_THREADS=1 python bench/build_movielens_mm.py --overwrite
    python bench/build_movielens_mm.py --catalog-only     # step 4 alone, into the existing folder

The feature cache (``dataset/movielens-mm/_cache``, git-ignored) makes a re-run with
other users or another seed take seconds instead of minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "movielens-1m-mm"
TEXT_COLUMNS = ["title", "genres", "director", "actors", "plot"]


def sample_users(
    interactions: pd.DataFrame, n_users: int, seed: int, cover_items: bool
) -> tuple[np.ndarray, int]:
    """Seeded random users, plus (optionally) users covering every item; returns (users, n_added)."""
    rng = np.random.default_rng(seed)
    users = np.sort(interactions["user"].unique())
    if n_users > len(users):
        raise SystemExit(f"--users {n_users}: the source has only {len(users)} users")
    chosen = set(rng.choice(users, size=n_users, replace=False).tolist())
    added = 0
    if cover_items:
        by_item = interactions.groupby("item")["user"].apply(lambda s: np.sort(s.to_numpy()))
        covered = set(interactions.loc[interactions["user"].isin(chosen), "item"])
        by_user = interactions.groupby("user")["item"].apply(set)
        for item in sorted(by_item.index):
            if item in covered:
                continue
            candidates = [u for u in by_item[item] if u not in chosen]
            user = int(rng.choice(candidates))
            chosen.add(user)
            covered |= by_user[user]
            added += 1
    return np.array(sorted(chosen)), added


THUMB_WIDTH = 100
THUMB_QUALITY = 72


def thumbnail(source: Path, target: Path) -> int:
    """``source`` resized to :data:`THUMB_WIDTH` px wide as a progressive JPEG
    without metadata (same bytes on every run); returns its size."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("RGB")
        height = max(1, round(image.height * THUMB_WIDTH / image.width))
        small = image.resize((THUMB_WIDTH, height), Image.LANCZOS)
    small.save(target, "JPEG", quality=THUMB_QUALITY, optimize=True, progressive=True)
    return target.stat().st_size


def write_catalog(source: Path, folder: Path, name: str) -> str:
    """Step 4 of the module docstring, into the dataset folder ``folder``; returns a summary."""
    import shutil

    tokens = (folder / f"{name}.item_index").read_text(encoding="utf-8").split()
    items = pd.read_csv(source / "items.csv", dtype=str, keep_default_na=False).set_index("item")
    missing = [t for t in tokens if t not in items.index]
    if missing:
        raise SystemExit(f"{source / 'items.csv'}: no row for items {missing[:5]} of {folder}")

    def cell(value: str) -> str:  # one line, no tab: RecBole splits atomic files on tabs
        return " ".join(str(value).split())

    lines = ["item_id:token\ttitle:token_seq\tgenres:token_seq"]
    for token in tokens:
        row = items.loc[token]
        lines.append(f"{token}\t{cell(row['title'])}\t{cell(row['genres'].replace('|', ' '))}")
    (folder / f"{name}.item").write_text("\n".join(lines) + "\n", encoding="utf-8")
    images = folder / "images"
    if images.exists():
        shutil.rmtree(images)
    images.mkdir()
    size = sum(
        thumbnail(source / "posters" / f"{token}.jpg", images / f"{token}.jpg")
        for token in tokens
        if (source / "posters" / f"{token}.jpg").is_file()
    )
    config = folder / f"{name}.yaml"
    text = config.read_text(encoding="utf-8")
    if "item_images:" not in text:
        config.write_text(text.rstrip("\n") + "\nitem_images: images  # pictures for `recbole-rlmm serve`\n", encoding="utf-8")
    count = len(list(images.iterdir()))
    return f"{name}.item: {len(tokens):,} titles; images/: {count:,} thumbnails, {size / 2**20:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, sample the users and run ``prepare table``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE, help="movielens-1m-mm folder"
    )
    parser.add_argument(
        "--users",
        type=int,
        default=620,
        help="users drawn at random (default 620: about 100k interactions)",
    )
    parser.add_argument(
        "--seed", type=int, default=2024, help="seed of the user sample and the split"
    )
    parser.add_argument(
        "--no-cover-items",
        dest="cover_items",
        action="store_false",
        help="do not add users to give every item an interaction",
    )
    parser.add_argument("--out", type=Path, default=REPO / "dataset", help="output parent folder")
    parser.add_argument(
        "--name", default="movielens-mm", help="dataset name (default movielens-mm)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="feature cache (default OUT/NAME/_cache)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="encoder batch size")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    parser.add_argument(
        "--catalog-only",
        dest="catalog_only",
        action="store_true",
        help="only write the titles and thumbnails (step 4) into the existing dataset folder",
    )
    args = parser.parse_args(argv)

    from recbole_rlmm.prepare import PrepareError, prepare_table

    # work from the repository root with relative paths: the report and NAME.yaml written
    # into the dataset then name no machine-specific folders (and no data_path)
    source = Path(os.path.relpath(args.source.resolve(), REPO))
    out = Path(os.path.relpath(args.out.resolve(), REPO))
    cache_dir = args.cache_dir.resolve() if args.cache_dir is not None else None
    os.chdir(REPO)
    for needed in ("interactions.csv", "items.csv", "posters"):
        if not (source / needed).exists():
            raise SystemExit(
                f"{source / needed}: not found; point --source at the movielens-1m-mm folder"
            )
    if args.catalog_only:
        print(write_catalog(source, out / args.name, args.name), flush=True)
        return 0
    interactions = pd.read_csv(
        source / "interactions.csv", dtype={"user": np.int64, "item": np.int64}
    )
    start = time.time()
    users, added = sample_users(interactions, args.users, args.seed, args.cover_items)
    sample = interactions[interactions["user"].isin(users)][["user", "item"]]
    print(
        f"sampled {len(users):,} users ({args.users:,} at random + {added} to cover every item): "
        f"{len(sample):,} interactions, {sample['item'].nunique():,} of "
        f"{interactions['item'].nunique():,} items",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        inter_path = Path(tmp) / "sampled-interactions.csv"
        sample.to_csv(inter_path, index=False)
        try:
            prepare_table(
                inter_path,
                source / "items.csv",
                source / "posters",
                name=args.name,
                out=out,
                user_col="user",
                item_col="item",
                text_cols=TEXT_COLUMNS,
                split_ratio=(0.8, 0.1, 0.1),
                seed=args.seed,
                float16=True,
                batch_size=args.batch_size,
                cache_dir=cache_dir,
                overwrite=args.overwrite,
            )
        except PrepareError as exc:
            raise SystemExit(f"build_movielens_mm: error: {exc}") from None
    print(write_catalog(source, out / args.name, args.name), flush=True)
    print(f"done in {time.time() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
