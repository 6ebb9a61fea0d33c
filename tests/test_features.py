"""The shared feature loader: alignment with RecBole's item ids, masks and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import build_model
from datagen import make_dataset

from recbole_rlmm.data.features import load_modalities, normalize_features
from recbole_rlmm.errors import UserError


def _loaded(root: Path, **extra):
    net, config, train, *_ = build_model("RLMultimodalRec", root, **extra)
    return load_modalities(config, train._dataset), train._dataset


def _row_of(ds, token: str) -> int:
    return int(ds.token2id(ds.iid_field, token))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_rows_follow_item_index_in_any_order(tmp_path: Path, dtype: type) -> None:
    root = tmp_path / "d"
    folder = make_dataset(root, dims={"image": 6, "text": 4})
    index = (folder / "tiny.item_index").read_text().split()
    perm = np.random.default_rng(1).permutation(len(index))
    for m in ("image", "text"):
        x = np.load(folder / f"tiny.{m}.npy")
        np.save(folder / f"tiny.{m}.npy", x[perm].astype(dtype))
    (folder / "tiny.item_index").write_text("\n".join(index[p] for p in perm) + "\n")
    feats, ds = _loaded(root)
    original = np.load(folder / "tiny.image.npy")  # permuted file
    for r, p in enumerate(perm[:10]):
        got = feats.features["image"][_row_of(ds, index[p])].numpy()
        np.testing.assert_allclose(got, original[r].astype(np.float32), rtol=1e-3)
    assert feats.features["image"][0].abs().sum() == 0  # padding id


def test_without_index_row_r_is_token_r(tmp_path: Path) -> None:
    root = tmp_path / "d"
    folder = make_dataset(root, index=False)
    feats, ds = _loaded(root)
    x = np.load(folder / "tiny.text.npy")
    for token in ("0", "7", "39"):
        np.testing.assert_allclose(feats.features["text"][_row_of(ds, token)].numpy(), x[int(token)])


def test_zero_rows_and_absent_items_are_masked(tiny: Path) -> None:
    feats, ds = _loaded(tiny)
    assert not feats.masks["image"][_row_of(ds, "i3")]
    assert feats.masks["text"][_row_of(ds, "i3")]
    assert not feats.masks["image"][_row_of(ds, "i4")] and not feats.masks["text"][_row_of(ds, "i4")]
    assert feats.masks["image"][_row_of(ds, "i5")] and not feats.masks["text"][_row_of(ds, "i5")]
    assert not feats.masks["image"][0]
    assert feats.coverage()["image"] == pytest.approx(1 - 2 / (ds.item_num - 1))


def test_coverage_is_logged(tiny: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="recbole_rlmm.data.features"):
        _loaded(tiny)
    assert any("modality image:" in r.message and "items have features" in r.message for r in caplog.records)


def _write(folder: Path, name: str, value: object) -> None:
    path = folder / name
    if isinstance(value, str):
        path.write_text(value)
    else:
        np.save(path, value)  # object arrays are written pickled: the loader must refuse them


def _index_lines(n: int, dup: bool = False) -> str:
    tokens = [f"i{k}" for k in range(n)]
    if dup:
        tokens[5] = "i2"
    return "\n".join(tokens) + "\n"


_nan = np.ones((40, 12), dtype=np.float32)
_nan[7, 3] = np.nan
_inf = np.ones((40, 12), dtype=np.float32)
_inf[9, 0] = np.inf

BAD_INPUTS = {
    "nan": ({"tiny.image.npy": _nan}, {}, ["tiny.image.npy", "NaN or inf", "row 7", "zeros"]),
    "inf": ({"tiny.image.npy": _inf}, {}, ["row 9", "NaN or inf"]),
    "one_dimensional": ({"tiny.image.npy": np.ones(40, dtype=np.float32)}, {}, ["2-D", "shape (40,)"]),
    "three_dimensional": ({"tiny.image.npy": np.ones((40, 2, 3), dtype=np.float32)}, {}, ["2-D"]),
    "wrong_dim": (
        {},
        {"modalities": {"image": {"file": "tiny.image.npy", "dim": 99}, "text": "tiny.text.npy"}},
        ["dimension 12", "dim: 99"],
    ),
    "integer_dtype": ({"tiny.image.npy": np.ones((40, 12), dtype=np.int64)}, {}, ["dtype int64", "float32"]),
    "pickled_objects": ({"tiny.image.npy": np.array([{"a": 1}] * 40, dtype=object)}, {}, ["without pickle", "np.save"]),
    "duplicate_token": ({"tiny.item_index": _index_lines(40, dup=True)}, {}, ["'i2'", "listed twice", "lines 3 and 6"]),
    "more_rows_than_index": ({"tiny.item_index": _index_lines(30)}, {}, ["40 rows", "only 30", "tiny.item_index"]),
    "fewer_rows_than_index": ({"tiny.item_index": _index_lines(45)}, {}, ["40 rows", "lists 45", "'i40'"]),
    "no_matching_tokens": ({"tiny.item_index": "\n".join(f"x{k}" for k in range(40))}, {}, ["none of its 40 rows", "'x0'"]),
    "missing_file": ({}, {"modalities": {"image": "nope.npy", "text": "gone.npy"}}, ["nope.npy (image)", "gone.npy (text)", "--fusion=none", "prepare"]),
    # a config value: refused when the configuration is built (a ConfigError)
    "modalities_not_mapping": ({}, {"modalities": ["tiny.image.npy"]}, ["modalities", "must map modality names"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_clear_error(tmp_path: Path, case: str) -> None:
    files, overrides, expected = BAD_INPUTS[case]
    root = tmp_path / "d"
    folder = make_dataset(root)
    for name, value in files.items():
        _write(folder, name, value)
    with pytest.raises(UserError) as info:  # FeatureFileError, or ConfigError for config values
        _loaded(root, **overrides)
    for fragment in expected:
        assert fragment in str(info.value)


@pytest.mark.parametrize("how", ["none", "l2", "standard"])
def test_normalize_keeps_missing_rows_zero(how: str) -> None:
    import torch

    x = torch.rand(6, 5) * 10
    x[2] = 0
    mask = torch.tensor([False, True, False, True, True, True])
    out = normalize_features(x, mask, how)
    assert out[2].abs().sum() == 0
    if how != "none":
        assert torch.allclose(out[mask].norm(dim=1), torch.ones(4), atol=1e-5)
    with pytest.raises(ValueError, match="feature_norm"):
        normalize_features(x, mask, "bogus")
