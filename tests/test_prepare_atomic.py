"""Shared pieces of ``recbole-rlmm prepare``: k-core, splits, writing the output contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from prepare_helpers import read_atomic

from recbole_rlmm.prepare.atomic import (
    ITEM,
    SPLIT,
    USER,
    PrepareError,
    Report,
    kcore_filter,
    map_split_column,
    ratio_split,
    split_counts,
    write_dataset,
)


def _frame(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=[USER, ITEM])


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, (1, 0, 0)),
        (2, (1, 0, 1)),
        (3, (1, 1, 1)),
        (5, (3, 1, 1)),
        (19, (17, 1, 1)),
        (20, (16, 2, 2)),
        (30, (24, 3, 3)),
    ],
)
def test_split_counts_follow_mmrec(n: int, expected: tuple[int, int, int]) -> None:
    # MMRec's baby.inter: valid = test = max(1, floor(n / 10)), train keeps the rest
    assert split_counts(n, (0.8, 0.1, 0.1)) == expected


def test_ratio_split_is_seeded_per_user_and_order_independent() -> None:
    rng = np.random.default_rng(1)
    pairs = [
        (f"u{u}", f"i{i}")
        for u in range(30)
        for i in rng.choice(200, size=int(rng.integers(5, 40)), replace=False)
    ]
    frame = _frame(pairs)
    labels = ratio_split(frame, (0.8, 0.1, 0.1), seed=7)
    again = ratio_split(frame, (0.8, 0.1, 0.1), seed=7)
    assert labels.equals(again)
    shuffled = frame.sample(frac=1.0, random_state=3)
    assert ratio_split(shuffled, (0.8, 0.1, 0.1), seed=7).reindex(frame.index).equals(labels)
    assert not ratio_split(frame, (0.8, 0.1, 0.1), seed=8).equals(labels)
    counts = pd.crosstab(frame[USER], labels)
    sizes = frame.groupby(USER).size()
    for user, n in sizes.items():
        train, valid, test = split_counts(int(n), (0.8, 0.1, 0.1))
        assert (counts.loc[user, "train"], counts.loc[user, "valid"], counts.loc[user, "test"]) == (
            train,
            valid,
            test,
        )


@pytest.mark.parametrize("ratios", [(0.8, 0.1), (0.0, 0.5, 0.5), (0.8, -0.1, 0.3)])
def test_ratio_split_refuses_bad_ratios(ratios: tuple[float, ...]) -> None:
    with pytest.raises(PrepareError, match="--split-ratio"):
        ratio_split(_frame([("u", "i")]), ratios, seed=0)


def test_kcore_filter_is_iterative() -> None:
    # u3 has 2 items -> removed; then item c drops to 1 user -> removed; then all others keep >= 2
    pairs = [
        ("u1", "a"),
        ("u1", "b"),
        ("u2", "a"),
        ("u2", "b"),
        ("u3", "c"),
        ("u3", "a"),
        ("u4", "c"),
        ("u4", "d"),
    ]
    kept = kcore_filter(_frame(pairs), 2)
    assert set(map(tuple, kept[[USER, ITEM]].to_numpy())) == {
        ("u1", "a"),
        ("u1", "b"),
        ("u2", "a"),
        ("u2", "b"),
    }
    assert kcore_filter(_frame(pairs), 0).shape[0] == len(pairs)


def test_map_split_column_names_unknown_values() -> None:
    values = pd.Series(["train", "valid", "test", "holdout"])
    with pytest.raises(PrepareError, match=r"holdout.*data row 4.*--split-values"):
        map_split_column(values, ("train", "valid", "test"), "x.csv", "split")
    mapped = map_split_column(pd.Series(["0", "1", "2"]), ("0", "1", "2"), "x.csv", "fold")
    assert mapped.tolist() == ["train", "valid", "test"]


def _inter() -> pd.DataFrame:
    frame = _frame([("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "c")])
    frame[SPLIT] = ["train", "test", "train", "valid"]
    return frame


def test_write_dataset_contract_and_overwrite(tmp_path) -> None:
    out = tmp_path / "toy"
    features = {"text": np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 4.0]]), "image": np.ones((3, 5))}
    written = write_dataset(
        out,
        "toy",
        _inter(),
        ["a", "b", "c"],
        features,
        float16=True,
        kind="table",
        report=Report(echo=False),
    )
    assert {p.name for p in written} >= {
        "toy.train.inter",
        "toy.valid.inter",
        "toy.test.inter",
        "toy.item_index",
        "toy.text.npy",
        "toy.image.npy",
        "toy.yaml",
    }
    header, rows = read_atomic(out / "toy.train.inter")
    assert header == ["user_id:token", "item_id:token"] and sorted(map(tuple, rows)) == [
        ("u1", "a"),
        ("u2", "a"),
    ]
    assert (out / "toy.item_index").read_text().splitlines() == ["a", "b", "c"]
    text = np.load(out / "toy.text.npy", allow_pickle=False)
    assert text.dtype == np.float16 and text.shape == (3, 2) and not text[1].any()
    config = yaml.safe_load((out / "toy.yaml").read_text())
    assert config["benchmark_filename"] == ["train", "valid", "test"]
    assert config["load_col"] == {"inter": ["user_id", "item_id"]}
    assert config["modalities"] == {"image": "toy.image.npy", "text": "toy.text.npy"}
    assert (out / "toy.yaml").read_text().startswith("# written by recbole-rlmm prepare table (")

    with pytest.raises(PrepareError, match="--overwrite"):
        write_dataset(
            out,
            "toy",
            _inter(),
            ["a", "b", "c"],
            {},
            float16=False,
            kind="table",
            report=Report(echo=False),
        )
    write_dataset(
        out,
        "toy",
        _inter(),
        ["a", "b", "c"],
        {"text": features["text"]},
        float16=False,
        kind="table",
        report=Report(echo=False),
        overwrite=True,
    )
    assert not (out / "toy.image.npy").exists(), "a modality of the earlier run must not linger"
    assert np.load(out / "toy.text.npy").dtype == np.float32


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.array([[1e6], [1.0], [1.0]]), "float16's range"),
        (np.array([[1e-9], [1.0], [1.0]]), "underflow"),
    ],
)
def test_write_dataset_refuses_lossy_float16(tmp_path, matrix: np.ndarray, message: str) -> None:
    with pytest.raises(PrepareError, match=message):
        write_dataset(
            tmp_path / "t",
            "t",
            _inter(),
            ["a", "b", "c"],
            {"x": matrix},
            float16=True,
            kind="table",
            report=Report(echo=False),
        )


@pytest.mark.parametrize("name", ["has space", "a/b", "", ".hidden"])
def test_bad_names_are_refused(tmp_path, name: str) -> None:
    with pytest.raises(PrepareError, match="--name"):
        write_dataset(
            tmp_path / "x",
            name,
            _inter(),
            ["a", "b", "c"],
            {},
            float16=False,
            kind="table",
            report=Report(echo=False),
        )


def test_rating_and_timestamp_columns_are_written(tmp_path) -> None:
    frame = _inter()
    frame["rating"] = [5.0, 3.5, 1.0, 4.0]
    frame["timestamp"] = [1_600_000_000.0, 1_600_000_001.0, 1_600_000_002.0, 1_600_000_003.0]
    write_dataset(
        tmp_path / "r",
        "r",
        frame,
        ["a", "b", "c"],
        {},
        float16=False,
        kind="table",
        report=Report(echo=False),
    )
    header, rows = read_atomic(tmp_path / "r" / "r.test.inter")
    assert header == ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
    assert rows == [["u1", "b", "3.5", "1600000001"]]
