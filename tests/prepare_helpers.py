"""Shared helpers of the ``tests/test_prepare_*.py`` tests: small generated inputs.

Also the generator of the committed Amazon fixtures (``tests/fixtures/amazon2014``,
``tests/fixtures/amazon2018``): ``python tests/prepare_helpers.py`` rewrites them, and
``test_prepare_amazon.py`` checks that the committed files equal its output.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recbole_rlmm.cli import main
from recbole_rlmm.prepare.encoders import ImageEncoder, TextEncoder

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# --------------------------------------------------------------------------- CLI


def run_cli(argv: Sequence[str]) -> int:
    """``recbole-rlmm prepare ...`` as the command line runs it; returns the exit status."""
    return main(["prepare", *argv])


#: ``cli_args`` options that turn both feature encoders off.
NO_ENCODERS = {"text_encoder": "none", "image_encoder": "none"}


def cli_args(command: str, *positional: str | Path, **options: object) -> list[str]:
    """The arguments of ``prepare COMMAND``: ``cli_args("table", inter=p, float16=True)`` is
    ``["table", "--inter", str(p), "--float16"]``.

    An option's ``_`` becomes ``-``; ``True`` gives a bare flag and a list several values.
    """
    argv = [command, *map(str, positional)]
    for key, value in options.items():
        argv.append("--" + key.replace("_", "-"))
        if isinstance(value, list | tuple):
            argv += [str(v) for v in value]
        elif value is not True:
            argv.append(str(value))
    return argv


# --------------------------------------------------------------------------- reading outputs


def read_atomic(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header fields, rows) of an atomic file."""
    lines = Path(path).read_text().splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def read_pairs(folder: Path, name: str) -> dict[str, set[tuple[str, str]]]:
    """``split -> {(user, item)}`` of a prepared dataset."""
    return {
        split: {(row[0], row[1]) for row in read_atomic(folder / f"{name}.{split}.inter")[1]}
        for split in ("train", "valid", "test")
    }


def read_index(folder: Path, name: str) -> list[str]:
    """The item tokens of ``NAME.item_index``."""
    return (folder / f"{name}.item_index").read_text().splitlines()


# --------------------------------------------------------------------------- test encoders


class HashTextEncoder(TextEncoder):
    """Deterministic text encoder for pipeline tests: a seeded vector per distinct text.

    Records every text it is asked to encode, so tests can check what the cache saved.
    ``fail_after`` raises after that many calls (simulates an interrupted run).
    """

    key = "test-hash-text"
    label = "hash text encoder (tests)"
    dim = 6

    def __init__(self, fail_after: int | None = None) -> None:
        self.seen: list[str] = []
        self.calls = 0
        self.fail_after = fail_after

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        self.seen.extend(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).normal(size=self.dim) + 0.1)
        return np.asarray(rows, dtype=np.float32)


class PixelStatsImageEncoder(ImageEncoder):
    """Image encoder for pipeline tests: per-channel mean and std of the preprocessed pixels."""

    key = "test-pixel-stats"
    label = "pixel statistics (tests)"
    dim = 6

    def __init__(self) -> None:
        self.batches: list[int] = []

    def encode(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(len(batch))
        return np.concatenate([batch.mean(axis=(2, 3)), batch.std(axis=(2, 3)) + 1.0], axis=1)


# --------------------------------------------------------------------------- generated inputs


def make_image(path: Path, seed: int, size: tuple[int, int] = (48, 64)) -> Path:
    """A small random-colour image; the format follows the suffix (jpg, png, webp)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=3)
    pixels = np.clip(base + rng.integers(-30, 30, size=(size[1], size[0], 3)), 0, 255).astype(
        np.uint8
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def write_table_inputs(
    root: Path,
    n_users: int = 12,
    n_items: int = 10,
    per_user: int = 6,
    seed: int = 0,
    image_suffixes: Sequence[str] = (".jpg", ".png", ".webp"),
) -> dict[str, Path]:
    """Interactions (user,item,rating,timestamp) + items (item,title,genres,year) + images.

    Item ``i<k>`` gets an image ``<item><suffix>`` cycling through ``image_suffixes``.
    Returns the paths under keys ``inter``, ``items``, ``images``.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["user,item,rating,timestamp"]
    for u in range(n_users):
        for k in rng.choice(n_items, size=per_user, replace=False):
            lines.append(
                f"u{u},i{k},{int(rng.integers(1, 6))},{1_600_000_000 + int(rng.integers(0, 10**6))}"
            )
    (root / "inter.csv").write_text("\n".join(lines) + "\n")
    genres = ["Comedy|Drama", "Action", "Horror|Sci-Fi", "Romance"]
    rows = ["item,title,genres,year"]
    for k in range(n_items):
        rows.append(f'i{k},"Movie {k}, the sequel",{genres[k % len(genres)]},{1990 + k}')
    (root / "items.csv").write_text("\n".join(rows) + "\n")
    images = root / "images"
    for k in range(n_items):
        make_image(images / f"i{k}{image_suffixes[k % len(image_suffixes)]}", seed=k)
    return {"inter": root / "inter.csv", "items": root / "items.csv", "images": images}


def write_mmrec_folder(
    root: Path,
    name: str = "toy",
    n_users: int = 8,
    n_items: int = 7,
    per_user: int = 5,
    features: dict[str, int] | None = None,
    mappings: bool = True,
    extra_columns: bool = False,
    seed: int = 0,
) -> Path:
    """An MMRec folder: ``NAME.inter`` (+ rating/timestamp), ``*_feat.npy``, id mappings.

    Each user's first interaction is train (x_label 0), then 0/1/2 cycle. Item
    ``n_items - 1`` never occurs in the interactions (a feature row without interactions).
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    header = "userID\titemID" + ("\trating\ttimestamp" if extra_columns else "") + "\tx_label"
    lines = [header]
    for u in range(n_users):
        for j, i in enumerate(rng.choice(n_items - 1, size=per_user, replace=False)):
            label = 0 if j < per_user - 2 else (1 if j == per_user - 2 else 2)
            extra = f"\t{1 + (u + j) % 5}\t{1_500_000_000 + u * 100 + j}" if extra_columns else ""
            lines.append(f"{u}\t{i}{extra}\t{label}")
    (root / f"{name}.inter").write_text("\n".join(lines) + "\n")
    for modality, dim in (features if features is not None else {"image": 8, "text": 4}).items():
        matrix = rng.normal(size=(n_items, dim)).astype(np.float32)
        np.save(root / f"{modality}_feat.npy", matrix)
    if mappings:
        (root / "u_id_mapping.csv").write_text(
            "user_id\tuserID\n" + "".join(f"A{u:05d}XYZ\t{u}\n" for u in range(n_users))
        )
        (root / "i_id_mapping.csv").write_text(
            "asin\titemID\n" + "".join(f"B{i:09d}\t{i}\n" for i in range(n_items))
        )
    return root


# --------------------------------------------------------------------------- Amazon fixtures

AMAZON_USERS = 9
AMAZON_ITEMS = 7
FIXTURE_URL = "http://images.example.invalid/I/"


def amazon_records(fmt: str, image_base_url: str = FIXTURE_URL) -> tuple[list[dict], list[dict]]:
    """Review and meta records of a tiny Amazon category in the ``2014`` or ``2018`` layout.

    Users ``A0..A6`` review 6 of the 7 items (5-core survives); ``AX1`` and ``AX2`` have
    2 reviews each, and item ``B000000099`` has 2 reviews: all three go in a 5-core filter.
    Item 6 has no image URL, item 5 an HTML description, item 4 no brand; the meta file
    also lists an item nobody reviewed and (2018) repeats item 0.
    """
    asins = [f"B00000000{i}" for i in range(AMAZON_ITEMS)]
    reviews: list[dict] = []
    for u in range(AMAZON_USERS - 2):
        for j in range(6):
            item = asins[(u + j) % AMAZON_ITEMS]
            reviews.append(
                {
                    "reviewerID": f"A{u}",
                    "asin": item,
                    "overall": float(1 + (u + j) % 5),
                    "unixReviewTime": 1_400_000_000 + 86_400 * (u * 7 + j),
                    "reviewText": "fine",
                }
            )
            if fmt == "2014":
                reviews[-1].update(helpful=[0, 0], reviewTime="05 13, 2014")
            else:
                reviews[-1].update(verified=True, style={"Color:": " Blue"})
    for u, items in (("AX1", [asins[0], "B000000099"]), ("AX2", [asins[1], "B000000099"])):
        for j, item in enumerate(items):
            reviews.append(
                {"reviewerID": u, "asin": item, "overall": 3.0, "unixReviewTime": 1_450_000_000 + j}
            )
    meta: list[dict] = []
    for i, asin in enumerate([*asins, "B000000099", "B000000777"]):
        record: dict = {"asin": asin, "title": f"Baby bottle model {i}"}
        if i != 4:
            record["brand"] = f"Brand{i % 3}"
        description = (
            "<p>Soft <b>silicone</b> &amp; BPA free.</p>" if i == 5 else f"Description of item {i}."
        )
        url = f"{image_base_url}{asin}.jpg"
        if fmt == "2014":
            record["categories"] = [["Baby", "Feeding", "Bottles"], ["Baby Products"]]
            record["description"] = description
            record["price"] = 9.99 + i
            if i != 6:
                record["imUrl"] = url
        else:
            record["category"] = ["Baby", "Feeding", "Bottles"]
            record["description"] = [description]
            record["price"] = f"${9.99 + i:.2f}"
            record["imageURL"] = [] if i == 6 else [url.replace(".jpg", "._SS40_.jpg")]
            record["imageURLHighRes"] = [] if i == 6 else [url]
        meta.append(record)
    if fmt == "2018":
        meta.append({"asin": asins[0], "title": "duplicate record, ignored", "category": []})
    return reviews, meta


def amazon_files(
    fmt: str, cat: str = "Baby", image_base_url: str = FIXTURE_URL
) -> dict[str, bytes]:
    """File name -> gzipped bytes of the fixture in the given release layout."""
    reviews, meta = amazon_records(fmt, image_base_url)
    if fmt == "2014":
        names = (f"reviews_{cat}_5.json.gz", f"meta_{cat}.json.gz")
        review_lines = [json.dumps(r) for r in reviews]
        meta_lines = [repr(m) for m in meta]  # python literals, as in the 2014 release
    else:
        names = (f"{cat}_5.json.gz", f"meta_{cat}.json.gz")
        review_lines = [json.dumps(r) for r in reviews]
        meta_lines = [json.dumps(m) for m in meta]
    return {
        names[0]: gzip.compress(("\n".join(review_lines) + "\n").encode(), mtime=0),
        names[1]: gzip.compress(("\n".join(meta_lines) + "\n").encode(), mtime=0),
    }


def write_amazon_fixtures(
    root: Path = FIXTURES, image_base_url: str = FIXTURE_URL
) -> dict[str, Path]:
    """Write both layouts under ``root/amazon2014`` and ``root/amazon2018``."""
    written: dict[str, Path] = {}
    for fmt in ("2014", "2018"):
        folder = Path(root) / f"amazon{fmt}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in amazon_files(fmt, image_base_url=image_base_url).items():
            (folder / name).write_bytes(data)
            written[f"{fmt}/{name}"] = folder / name
    return written


if __name__ == "__main__":
    for key, path in write_amazon_fixtures().items():
        print(key, path.stat().st_size, "bytes")
    sys.exit(0)
