"""``recbole-rlmm prepare mmrec``: MMRec folder -> atomic files, same split, same feature rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from prepare_helpers import read_atomic, read_index, read_pairs, run_cli, write_mmrec_folder

from recbole_rlmm.prepare import PrepareError, prepare_mmrec

LABELS = {"0": "train", "1": "valid", "2": "test"}


@pytest.mark.parametrize(("mappings", "extra_columns"), [(True, False), (False, True)])
def test_mmrec_conversion_keeps_split_ids_and_feature_rows(
    tmp_path: Path, mappings: bool, extra_columns: bool
) -> None:
    src = write_mmrec_folder(tmp_path / "src", mappings=mappings, extra_columns=extra_columns)
    out = prepare_mmrec(src, name="toy", out=tmp_path / "out", echo=False)
    inter = pd.read_csv(src / "toy.inter", sep="\t", dtype=str)
    users = (
        dict(
            pd.read_csv(src / "u_id_mapping.csv", sep="\t", dtype=str)[
                ["userID", "user_id"]
            ].to_numpy()
        )
        if mappings
        else None
    )
    index = read_index(out, "toy")
    n_items = 7
    expected_tokens = (
        [f"B{i:09d}" for i in range(n_items)] if mappings else [str(i) for i in range(n_items)]
    )
    assert index == expected_tokens  # row i = MMRec item i, including the item without interactions
    expected: dict[str, set[tuple[str, str]]] = {"train": set(), "valid": set(), "test": set()}
    for row in inter.itertuples(index=False):
        user = users[row.userID] if users else row.userID
        expected[LABELS[row.x_label]].add((user, index[int(row.itemID)]))
    assert read_pairs(out, "toy") == expected
    for modality in ("image", "text"):
        source = np.load(src / f"{modality}_feat.npy")
        written = np.load(out / f"toy.{modality}.npy", allow_pickle=False)
        assert written.dtype == np.float32
        np.testing.assert_array_equal(written, source)
    header, _ = read_atomic(out / "toy.train.inter")
    assert header == ["user_id:token", "item_id:token"] + (
        ["rating:float", "timestamp:float"] if extra_columns else []
    )
    config = yaml.safe_load((out / "toy.yaml").read_text())
    assert config["modalities"] == {"image": "toy.image.npy", "text": "toy.text.npy"}
    assert config["data_path"] == str(tmp_path / "out")


def _corrupt_rows(src: Path) -> None:
    np.save(src / "image_feat.npy", np.zeros((6, 8), dtype=np.float32))


def _bad_label(src: Path) -> None:
    lines = (src / "toy.inter").read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\t3"
    (src / "toy.inter").write_text("\n".join(lines) + "\n")


def _duplicate(src: Path) -> None:
    lines = (src / "toy.inter").read_text().splitlines()
    (src / "toy.inter").write_text("\n".join([*lines, lines[2]]) + "\n")


def _missing_column(src: Path) -> None:
    frame = pd.read_csv(src / "toy.inter", sep="\t").drop(columns="x_label")
    frame.to_csv(src / "toy.inter", sep="\t", index=False)


def _non_integer(src: Path) -> None:
    lines = (src / "toy.inter").read_text().splitlines()
    lines[1] = "A17\t" + lines[1].split("\t", 1)[1]
    (src / "toy.inter").write_text("\n".join(lines) + "\n")


def _short_mapping(src: Path) -> None:
    lines = (src / "i_id_mapping.csv").read_text().splitlines()
    (src / "i_id_mapping.csv").write_text("\n".join(lines[:-3]) + "\n")


def _feature_nan(src: Path) -> None:
    matrix = np.load(src / "text_feat.npy")
    matrix[2, 1] = np.nan
    np.save(src / "text_feat.npy", matrix)


def _feature_3d(src: Path) -> None:
    np.save(src / "text_feat.npy", np.zeros((7, 2, 2), dtype=np.float32))


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (
            _corrupt_rows,
            r"image_feat\.npy: 6 rows but i_id_mapping\.csv \(7 rows\) define 7 items.*row i must be",
        ),
        (_bad_label, r"toy\.inter line 4: x_label = '3'.*0 = train, 1 = valid, 2 = test"),
        (
            _duplicate,
            r"toy\.inter lines \[3, \d+\]: duplicated pair userID=0 itemID=\d+.*de-duplicate",
        ),
        (_missing_column, r"missing column\(s\) \['x_label'\].*--split-col"),
        (_non_integer, r"toy\.inter line 2: userID = 'A17' is not a non-negative integer"),
        (_short_mapping, r"itemID \d has no row in i_id_mapping\.csv \(ids 0\.\.3\)"),
        (_feature_nan, r"text_feat\.npy: row 2 \(itemID 2\) holds NaN"),
        (_feature_3d, r"text_feat\.npy: shape \(7, 2, 2\).*2-D"),
    ],
    ids=["feature-rows", "x_label", "duplicate", "column", "non-integer", "mapping", "nan", "3d"],
)
def test_inconsistent_mmrec_input_is_refused(tmp_path: Path, corrupt, message: str) -> None:
    src = write_mmrec_folder(tmp_path / "src")
    corrupt(src)
    with pytest.raises(PrepareError, match=message):
        prepare_mmrec(src, name="toy", out=tmp_path / "out", echo=False)
    assert not (tmp_path / "out" / "toy").exists(), "nothing is written for refused input"


def test_mmrec_cli_reports_and_refuses_overwrite(tmp_path: Path, capsys) -> None:
    src = write_mmrec_folder(tmp_path / "src", features={"image": 8})
    argv = ["mmrec", str(src), "--name", "baby", "--out", str(tmp_path / "out"), "--float16"]
    assert run_cli(argv) == 0
    report = capsys.readouterr().out
    assert "toy.inter: 40 interactions, 8 users, 7 items" in report
    assert "items without interactions (kept, their feature rows too) (1): B000000006" in report
    assert "image  7/7 items (100.0%), dim 8" in report
    assert np.load(tmp_path / "out" / "baby" / "baby.image.npy").dtype == np.float16
    assert (
        (tmp_path / "out" / "baby" / "baby.report.txt")
        .read_text()
        .startswith("recbole-rlmm prepare mmrec")
    )
    capsys.readouterr()
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("recbole-rlmm: error: ") and "pass --overwrite" in err and err.count("\n") == 1
    assert run_cli([*argv, "--overwrite"]) == 0


def test_mmrec_without_features_or_with_several_inter_files(tmp_path: Path) -> None:
    src = write_mmrec_folder(tmp_path / "src", features={})
    (src / "other.inter").write_text("userID\titemID\tx_label\n0\t0\t0\n")
    with pytest.raises(PrepareError, match="several .inter files"):
        prepare_mmrec(src, name="baby", out=tmp_path / "out", echo=False)
    out = prepare_mmrec(src, name="baby", out=tmp_path / "out", inter_file="toy.inter", echo=False)
    assert yaml.safe_load((out / "baby.yaml").read_text())["modalities"] == {}
    assert not list(out.glob("*.npy"))
