"""``recbole-rlmm prepare amazon``: 2014 and 2018 review dumps, image folder or download."""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from prepare_helpers import (
    FIXTURES,
    NO_ENCODERS,
    HashTextEncoder,
    PixelStatsImageEncoder,
    amazon_files,
    cli_args,
    make_image,
    read_atomic,
    read_index,
    read_pairs,
    run_cli,
    write_amazon_fixtures,
)

from recbole_rlmm.prepare import PrepareError, prepare_amazon

ASINS = [f"B00000000{i}" for i in range(7)]
FILES = {
    "2014": ("amazon2014/reviews_Baby_5.json.gz", "amazon2014/meta_Baby.json.gz"),
    "2018": ("amazon2018/Baby_5.json.gz", "amazon2018/meta_Baby.json.gz"),
}


@pytest.mark.parametrize("fmt", ["2014", "2018"])
def test_committed_fixtures_match_their_generator(fmt: str) -> None:
    for name, data in amazon_files(fmt).items():
        committed = FIXTURES / f"amazon{fmt}" / name
        assert committed.stat().st_size < 20_000
        assert gzip.decompress(committed.read_bytes()) == gzip.decompress(data), (
            f"{committed} is stale: run python tests/prepare_helpers.py"
        )


@pytest.mark.parametrize("fmt", ["2014", "2018"])
def test_amazon_5core_text_and_image_folder(tmp_path: Path, fmt: str) -> None:
    reviews, meta = (FIXTURES / f for f in FILES[fmt])
    images = tmp_path / "images"
    for k, asin in enumerate(ASINS[:6]):
        make_image(images / f"{asin}.jpg", seed=k)
    (images / f"{ASINS[3]}.jpg").write_bytes(b"broken")
    text_encoder = HashTextEncoder()

    out = prepare_amazon(
        reviews,
        meta,
        name="baby",
        out=tmp_path / "out",
        images=images,
        text_encoder=text_encoder,
        image_encoder=PixelStatsImageEncoder(),
        echo=False,
    )

    assert (
        read_index(out, "baby") == ASINS
    )  # B000000099 and the users AX1, AX2 fall out of the 5-core
    pairs = read_pairs(out, "baby")
    assert {u for split in pairs.values() for u, _ in split} == {f"A{u}" for u in range(7)}
    assert [len(pairs[s]) for s in ("train", "valid", "test")] == [28, 7, 7]  # 6 per user -> 4/1/1
    header, rows = read_atomic(out / "baby.train.inter")
    assert header == ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
    assert all(r[2] in {"1", "2", "3", "4", "5"} for r in rows)

    categories = (
        "Baby, Feeding, Bottles, Baby Products." if fmt == "2014" else "Baby, Feeding, Bottles."
    )
    texts = dict(
        zip(
            ASINS,
            sorted(text_encoder.seen, key=lambda t: int(t.split("model ")[1][0])),
            strict=True,
        )
    )
    assert texts[ASINS[0]] == (
        f"title: Baby bottle model 0. brand: Brand0. categories: {categories} description: Description of item 0."
    )
    assert "brand" not in texts[ASINS[4]]
    assert texts[ASINS[5]].endswith("description: Soft silicone & BPA free.")
    image = np.load(out / "baby.image.npy")
    assert [ASINS[r] for r in np.flatnonzero(~image.any(axis=1))] == [ASINS[3], ASINS[6]]
    assert np.load(out / "baby.text.npy").any(axis=1).all()
    report = (out / "baby.report.txt").read_text()
    assert "5-core filter: kept 42 of 46 interactions (7 users, 7 items)" in report
    assert "skipped images: 2 items (1 no image file, 1 unreadable)" in report


def test_amazon_cli_without_kcore_or_features(tmp_path: Path) -> None:
    reviews, meta = (FIXTURES / f for f in FILES["2018"])
    argv = cli_args(
        "amazon", reviews=reviews, meta=meta, kcore=0, **NO_ENCODERS, name="raw", out=tmp_path
    )
    assert run_cli(argv) == 0
    assert len(read_index(tmp_path / "raw", "raw")) == 8
    users = {u for split in read_pairs(tmp_path / "raw", "raw").values() for u, _ in split}
    assert users == {f"A{u}" for u in range(7)} | {"AX1", "AX2"}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"reviewerID": "A", "asin": "B"}', "this is not a record"],
            r"line 2: neither JSON nor a Python literal",
        ),
        (['{"reviewerID": "A", "overall": 5.0}'], r"line 1: no asin"),
        (['["a", "list"]'], r"line 1: expected one object per line, got list"),
    ],
)
def test_bad_review_files_are_refused(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "reviews_Bad_5.json.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    with pytest.raises(PrepareError, match=message):
        prepare_amazon(path, None, name="bad", out=tmp_path / "out", echo=False)


def test_images_and_download_are_exclusive(tmp_path: Path) -> None:
    reviews, meta = (FIXTURES / f for f in FILES["2014"])
    with pytest.raises(PrepareError, match="either --images DIR or --download-images"):
        prepare_amazon(
            reviews, meta, name="x", out=tmp_path, images=tmp_path, download=True, echo=False
        )


# ----------------------------------------------------------------- downloading (loopback only)


@pytest.fixture
def image_server(tmp_path: Path) -> Iterator[tuple[str, Counter]]:
    """HTTP server on 127.0.0.1 serving generated images; ``flaky-`` names fail once with 503."""
    served = tmp_path / "served"
    for k, asin in enumerate(ASINS[:5]):
        make_image(served / f"{asin}.jpg", seed=10 + k)
    hits: Counter = Counter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            name = self.path.rsplit("/", 1)[-1]
            hits[name] += 1
            path = served / name
            if name == f"{ASINS[2]}.jpg" and hits[name] == 1:
                self.send_error(503)
            elif path.is_file():
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self.send_error(404)

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/img/", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("fmt", ["2014", "2018"])
def test_download_images_with_retries_and_cache(tmp_path: Path, image_server, fmt: str) -> None:
    base_url, hits = image_server
    fixtures = write_amazon_fixtures(tmp_path / "fixtures", image_base_url=base_url)
    reviews, meta = (fixtures[f"{fmt}/{Path(f).name}"] for f in FILES[fmt])
    options = {
        "name": "dl",
        "out": tmp_path / "out",
        "download": True,
        "retries": 2,
        "backoff": 0.0,
        "timeout": 5.0,
        "text_encoder": "none",
        "echo": False,
    }
    out = prepare_amazon(reviews, meta, image_encoder=PixelStatsImageEncoder(), **options)

    image = np.load(out / "dl.image.npy")
    assert [ASINS[r] for r in np.flatnonzero(~image.any(axis=1))] == [ASINS[5], ASINS[6]]
    assert hits[f"{ASINS[2]}.jpg"] == 2, "a 503 is retried"
    assert hits[f"{ASINS[5]}.jpg"] == 1, "a 404 is not retried"
    report = (out / "dl.report.txt").read_text()
    assert f"{ASINS[5]} (download failed: HTTP 404)" in report
    assert f"{ASINS[6]} (no image URL in meta)" in report
    cached = sorted(p.name for p in (out / "_cache" / "images").iterdir())
    assert cached == [f"{a}.jpg" for a in ASINS[:5]]

    before = hits.copy()
    encoder = PixelStatsImageEncoder()
    prepare_amazon(reviews, meta, image_encoder=encoder, overwrite=True, **options)
    assert all(hits[f"{a}.jpg"] == before[f"{a}.jpg"] for a in ASINS[:5]), (
        "cached images are not fetched again"
    )
    assert encoder.batches == [], "and their features come from the feature cache"
    np.testing.assert_array_equal(np.load(out / "dl.image.npy"), image)
