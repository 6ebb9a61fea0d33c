"""The embedded default dataset ``dataset/movielens-mm`` (built by bench/build_movielens_mm.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from prepare_helpers import read_atomic, read_index, read_pairs

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "dataset" / "movielens-mm"
NAME = "movielens-mm"

# The 159 items of movielens-1m-mm without a poster (shared/data/movielens-1m-mm/posters).
# fmt: off
MISSING_POSTERS = frozenset({
    29, 65, 81, 206, 234, 252, 270, 299, 300, 311, 451, 457, 462, 480, 533, 537, 539, 543, 548,
    581, 608, 639, 660, 694, 697, 701, 706, 737, 738, 774, 843, 897, 928, 952, 963, 976, 992,
    1011, 1070, 1075, 1121, 1136, 1150, 1154, 1159, 1164, 1184, 1207, 1223, 1281, 1295, 1304,
    1342, 1478, 1490, 1495, 1503, 1514, 1515, 1544, 1555, 1568, 1570, 1590, 1608, 1613, 1620,
    1628, 1631, 1650, 1658, 1671, 1674, 1676, 1683, 1689, 1712, 1720, 1721, 1722, 1741, 1765,
    1780, 1781, 1862, 1893, 1916, 1943, 1958, 1969, 1980, 1982, 1997, 2008, 2010, 2015, 2028,
    2081, 2115, 2131, 2140, 2187, 2189, 2216, 2236, 2240, 2258, 2264, 2269, 2294, 2324, 2330,
    2386, 2394, 2407, 2418, 2420, 2421, 2429, 2455, 2458, 2468, 2471, 2487, 2499, 2508, 2523,
    2562, 2566, 2589, 2595, 2596, 2616, 2652, 2654, 2665, 2711, 2763, 2782, 2785, 2788, 2790,
    2800, 2835, 2838, 2866, 2874, 2875, 2882, 2890, 2894, 2898, 2902, 2905, 2911, 2924, 2941,
    2956, 2960
})
# fmt: on


def test_files_and_sizes() -> None:
    expected = {f"{NAME}.{s}.inter" for s in ("train", "valid", "test")} | {
        f"{NAME}.item_index",
        f"{NAME}.text.npy",
        f"{NAME}.image.npy",
        f"{NAME}.yaml",
        f"{NAME}.report.txt",
    }
    present = {p.name for p in FOLDER.iterdir() if p.is_file()}
    assert expected <= present
    assert sum((FOLDER / f).stat().st_size for f in expected) < 30 * 2**20


def test_feature_rows_line_up_with_the_item_index() -> None:
    index = read_index(FOLDER, NAME)
    assert len(MISSING_POSTERS) == 159
    assert len(index) == len(set(index)) == 3018, "every item of movielens-1m-mm is kept"
    text = np.load(FOLDER / f"{NAME}.text.npy", allow_pickle=False)
    image = np.load(FOLDER / f"{NAME}.image.npy", allow_pickle=False)
    assert text.dtype == image.dtype == np.float16
    assert text.shape == (3018, 384) and image.shape == (3018, 1280)
    assert (
        np.isfinite(text.astype(np.float32)).all() and np.isfinite(image.astype(np.float32)).all()
    )
    no_image = {int(index[r]) for r in np.flatnonzero(~image.any(axis=1))}
    assert no_image == MISSING_POSTERS
    assert text.any(axis=1).all(), "every item has a title"
    norms = np.linalg.norm(text.astype(np.float32), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=5e-3)  # all-MiniLM-L6-v2 vectors are normalised


def test_split_is_a_warm_per_user_split() -> None:
    pairs = read_pairs(FOLDER, NAME)
    train, valid, test = pairs["train"], pairs["valid"], pairs["test"]
    assert not (train & valid or train & test or valid & test)
    total = len(train) + len(valid) + len(test)
    assert 80_000 <= total <= 130_000
    assert 0.75 < len(train) / total < 0.85
    users = {u for u, _ in train | valid | test}
    assert users == {u for u, _ in train}, "every user has train interactions"
    assert {i for _, i in train | valid | test} == set(read_index(FOLDER, NAME))
    header, _ = read_atomic(FOLDER / f"{NAME}.train.inter")
    assert header == ["user_id:token", "item_id:token"]


def test_configs_agree() -> None:
    own = yaml.safe_load((FOLDER / f"{NAME}.yaml").read_text())
    props = yaml.safe_load((REPO / "properties" / "dataset" / f"{NAME}.yaml").read_text())
    assert (
        own["modalities"]
        == props["modalities"]
        == {"image": f"{NAME}.image.npy", "text": f"{NAME}.text.npy"}
    )
    for key in ("USER_ID_FIELD", "ITEM_ID_FIELD", "load_col", "benchmark_filename"):
        assert own[key] == props[key]
    assert "data_path" not in own and "data_path" not in props
    assert props["metrics"] == ["Recall", "NDCG", "Precision"]
    assert props["topk"] == [10, 20, 50] and props["valid_metric"] == "Recall@20"


@pytest.mark.slow
def test_recbole_loads_the_dataset() -> None:
    import recbole_rlmm.compat as compat

    compat.apply()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation

    config = Config(
        model="BPR",
        dataset=NAME,
        config_file_list=[str(REPO / "properties" / "dataset" / f"{NAME}.yaml")],
        config_dict={
            "data_path": str(REPO / "dataset"),
            "show_progress": False,
            "save_dataset": False,
            "save_dataloaders": False,
        },
    )
    dataset = create_dataset(config)
    index = read_index(FOLDER, NAME)
    assert dataset.item_num == len(index) + 1  # RecBole adds the padding item 0
    tokens = dataset.field2id_token["item_id"][1:]
    assert set(tokens) == set(index)
    train, valid, test = data_preparation(config, dataset)
    pairs = read_pairs(FOLDER, NAME)
    assert train.dataset.inter_num == len(pairs["train"])
    assert test.dataset.inter_num == len(pairs["test"]) and valid.dataset.inter_num == len(
        pairs["valid"]
    )
