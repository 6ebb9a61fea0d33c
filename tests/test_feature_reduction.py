"""``feature_dim``: features reduced at load time (PCA / SVD), cached, deterministic; and the
block-wise reading of feature files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import build_model
from datagen import make_dataset

from recbole_rlmm.data import blocks as blocks_module
from recbole_rlmm.data import reduce as reduce_module
from recbole_rlmm.data.blocks import NpyRows
from recbole_rlmm.data.features import load_modalities
from recbole_rlmm.data.reduce import cache_path, reduce_file, reduced_features
from recbole_rlmm.errors import UserError


def _features(path: Path, n: int = 120, d: int = 30, seed: int = 0, zero_rows: tuple[int, ...] = (3, 7)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, 5)) @ rng.normal(size=(5, d)) + 0.05 * rng.normal(size=(n, d))) * rng.uniform(0.5, 20, d)
    x[list(zero_rows)] = 0.0
    np.save(path, x.astype(np.float32))
    return x.astype(np.float32)


@pytest.mark.parametrize("method", ["pca", "svd"])
def test_reduction_shape_zero_rows_and_determinism(tmp_path: Path, method: str) -> None:
    x = _features(tmp_path / "f.npy")
    out = reduce_file(tmp_path / "f.npy", 8, method)
    assert out.shape == (120, 8) and out.dtype == np.float32
    assert not out[[3, 7]].any() and np.any(out != 0, axis=1).sum() == 118  # missing stays missing
    assert np.array_equal(out, reduce_file(tmp_path / "f.npy", 8, method))
    # the reduction keeps the (standardised or raw) rows' inner products as far as 8 components can
    rows = x[np.any(x != 0, axis=1)].astype(np.float64)
    if method == "pca":
        rows = (rows - rows.mean(0)) / (rows.std(0) + 1e-6)
    full = reduce_file(tmp_path / "f.npy", 30, method)[np.any(x != 0, axis=1)]
    np.testing.assert_allclose(full @ full.T, rows @ rows.T, rtol=1e-3, atol=1e-3 * np.abs(rows @ rows.T).max())
    captured = np.linalg.norm(out) ** 2 / np.linalg.norm(full) ** 2
    assert captured > 0.97  # 5 latent factors + noise: 8 components hold nearly everything


def test_randomized_and_exact_components_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _features(tmp_path / "f.npy", n=200, d=60)
    exact = reduce_file(tmp_path / "f.npy", 5, "pca")
    monkeypatch.setattr(reduce_module, "EXACT_MAX_DIM", 10)  # 60 > 10: randomized
    monkeypatch.setattr(np.linalg, "eigh", None)  # the exact path is not taken
    randomized = reduce_file(tmp_path / "f.npy", 5, "pca")
    np.testing.assert_allclose(randomized, exact, atol=1e-3 * np.abs(exact).max())
    assert np.array_equal(randomized, reduce_file(tmp_path / "f.npy", 5, "pca"))  # seeded


def test_cache_is_reused_and_follows_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, cache = tmp_path / "f.npy", tmp_path / "cache"
    _features(path)
    first = reduced_features(path, 6, "pca", cache)
    target = cache_path(path, 6, "pca", cache)
    assert target.is_file() and np.array_equal(np.load(target, allow_pickle=False), first)

    def fail(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(reduce_module, "reduce_file", fail)
    assert np.array_equal(reduced_features(path, 6, "pca", cache), first)
    monkeypatch.undo()
    # another dimension, method or file content: another cache entry
    assert cache_path(path, 5, "pca", cache) != target and cache_path(path, 6, "svd", cache) != target
    _features(path, seed=1)
    assert cache_path(path, 6, "pca", cache) != target
    changed = reduced_features(path, 6, "pca", cache)
    assert not np.array_equal(changed, first)
    assert np.array_equal(changed, reduce_file(path, 6, "pca"))


def test_a_damaged_cache_is_recomputed(tmp_path: Path) -> None:
    path, cache = tmp_path / "f.npy", tmp_path / "cache"
    _features(path)
    target = cache_path(path, 4, "pca", cache)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a npy file")
    out = reduced_features(path, 4, "pca", cache)
    assert out.shape == (120, 4) and np.array_equal(np.load(target), out)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_block_reading_equals_np_load(tmp_path: Path, dtype: type) -> None:
    x = np.random.default_rng(0).normal(size=(37, 5)).astype(dtype)
    np.save(tmp_path / "x.npy", x)
    reader = NpyRows(tmp_path / "x.npy")
    assert reader.shape == (37, 5) and reader.dtype == dtype
    parts = list(reader.blocks(max_bytes=5 * 8 * 4))  # 4 rows per block
    assert [start for start, _ in parts] == list(range(0, 37, 4))
    assert np.array_equal(np.concatenate([b for _, b in parts]), x)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    assert np.array_equal(np.concatenate([b for _, b in NpyRows(tmp_path / "f.npy").blocks()]), x)


def test_loader_reduces_wide_modalities_only(tmp_path: Path) -> None:
    root = tmp_path / "d"
    folder = make_dataset(root, dims={"image": 24, "text": 6}, missing={"image": [3]})
    net, config, train, *_ = build_model("RLMultimodalRec", root, feature_dim=8)
    modal = load_modalities(config, train._dataset)
    assert modal.dims() == {"image": 8, "text": 6}
    raw = load_modalities(build_model("RLMultimodalRec", root)[1], train._dataset)
    assert np.array_equal(modal.masks["image"].numpy(), raw.masks["image"].numpy())
    assert np.array_equal(modal.features["text"].numpy(), raw.features["text"].numpy())
    assert (folder / "_cache" / "features").is_dir()
    assert net.encoders["image"].in_dim == 8
    # the rows are the file's rows reduced, aligned like the raw ones
    reduced = reduce_file(folder / "tiny.image.npy", 8, "pca")
    ds = train._dataset
    item = int(ds.token2id(ds.iid_field, "i5"))
    np.testing.assert_array_equal(modal.features["image"][item].numpy(), reduced[5])


def test_value_errors_name_the_row_of_the_file_when_read_in_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "d"
    folder = make_dataset(root)
    x = np.load(folder / "tiny.image.npy")
    x[29, 2] = np.nan
    np.save(folder / "tiny.image.npy", x)
    monkeypatch.setattr(blocks_module, "BLOCK_BYTES", 12 * 8 * 4)  # 4 rows per block
    with pytest.raises(UserError, match="first row 29"):
        build_model("RLMultimodalRec", root)
    with pytest.raises(UserError, match="first row 29"):
        build_model("RLMultimodalRec", root, feature_dim=4)
