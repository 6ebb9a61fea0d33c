"""Using a trained model (recbole_rlmm/inference): recommend, export, gates; API and CLI."""

from __future__ import annotations

import io
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from datagen import base_config, make_dataset

from recbole_rlmm.checkpoint import CheckpointError
from recbole_rlmm.cli import main
from recbole_rlmm.inference.check import compare_with_evaluator, evaluator_topk
from recbole_rlmm.inference.export import export_embeddings
from recbole_rlmm.inference.gates import NoGateError, write_gates
from recbole_rlmm.inference.outputs import OutputExistsError
from recbole_rlmm.inference.recommender import (
    InferenceError,
    Recommender,
    UnknownTokenError,
    select_topk,
)
from recbole_rlmm.inference.vectors import NotDotProductError
from recbole_rlmm.runner import run_recbole_rlmm

DOT_MODELS = ["RLMultimodalRec", "FREEDOM", "VBPR", "LightGCN", "BPR"]
#: Pop: no dot product, many tied scores; NeuMF: no full_sort_predict (RecBole's predict fallback)
MODELS = [*DOT_MODELS, "Pop", "NeuMF"]
N_USERS, N_ITEMS = 60, 40


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inference") / "data"
    make_dataset(root, missing={"image": [3, 4], "text": [4, 5]})
    return root


@pytest.fixture(scope="module")
def checkpoints(data_root: Path) -> dict[str, Path]:
    """Each model trained once (2 epochs) for the whole module; ``RLMultimodalRec-<fusion>``
    are ablations."""
    cwd, argv = os.getcwd(), sys.argv
    os.chdir(data_root.parent)  # RecBole writes log/ into the working directory
    sys.argv = ["pytest"]  # RecBole's Config reads --key=value from argv
    try:
        runs = {m: {} for m in MODELS}
        runs["RLMultimodalRec-sum"] = {"fusion": "sum"}
        runs["RLMultimodalRec-concat"] = {"fusion": "concat"}
        return {
            name: Path(
                run_recbole_rlmm(
                    name.split("-")[0], config_dict=base_config(data_root, epochs=2, **extra)
                )["checkpoint"]
            )
            for name, extra in runs.items()
        }
    finally:
        os.chdir(cwd)
        sys.argv = argv


@pytest.fixture(scope="module")
def recommenders(checkpoints: dict[str, Path]) -> dict[str, Recommender]:
    return {name: Recommender.from_checkpoint(path) for name, path in checkpoints.items()}


def split_pairs(root: Path, split: str) -> dict[str, set[str]]:
    """user token -> item tokens of a split, read from the atomic file itself."""
    pairs: dict[str, set[str]] = defaultdict(set)
    for line in (root / "tiny" / f"tiny.{split}.inter").read_text().splitlines()[1:]:
        user, item = line.split("\t")
        pairs[user].add(item)
    return pairs


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("recbole-rlmm: error: "), err
    return lines[0]


# ---------------------------------------------------------------------------- ranking
def test_select_topk_orders_ties_by_item_id() -> None:
    scores = torch.tensor([[0.0, 3.0, 1.0, 3.0, 2.0, 3.0], [5.0, 1.0, 1.0, 1.0, 1.0, 0.5]])
    values, items = select_topk(scores, 3)
    assert items.tolist() == [[1, 3, 5], [0, 1, 2]]  # torch.topk may pick any of the ties
    assert values.tolist() == [[3.0, 3.0, 3.0], [5.0, 1.0, 1.0]]
    values, items = select_topk(scores, 4)
    assert items.tolist() == [[1, 3, 5, 4], [0, 1, 2, 3]]


@pytest.mark.parametrize("model", MODELS)
def test_recommend_equals_the_evaluators_full_sort_ranking(
    model: str, recommenders: dict[str, Recommender]
) -> None:
    rec = recommenders[model]
    for split in ("test", "valid"):  # test: train+valid masked (exclude_valid); valid: train
        for batch_size in (None, 7):
            result = compare_with_evaluator(rec, k=10, split=split, batch_size=batch_size)
            assert result.ok and result.users == N_USERS and result.skipped == 0, result.summary()
            assert result.exact >= N_USERS - 2, (
                result.summary()
            )  # swaps only among float-noise ties


def test_evaluator_reference_is_recboles_topk(recommenders: dict[str, Recommender]) -> None:
    """The reference lists hold exactly the items RecBole's own torch.topk picks, where
    scores do not tie (RLMultimodalRec's continuous scores)."""
    rec = recommenders["RLMultimodalRec"]
    loaded = rec.loaded
    reference = evaluator_topk(loaded, 10, "test")
    for interaction, history, positive_u, positive_i in loaded.test_data:
        scores = loaded.model.full_sort_predict(interaction).view(-1, rec.item_num)
        scores[:, 0] = -torch.inf
        scores[history] = -torch.inf
        top = torch.topk(scores, 10, dim=1).indices
        for row, (uid, items) in enumerate(zip(interaction[rec.uid_field].tolist(), top.tolist())):
            assert set(reference[uid].items.tolist()) == set(items)
            assert set(reference[uid].positives.tolist()) == set(
                positive_i[positive_u == row].tolist()
            )


@pytest.mark.parametrize("model", ["RLMultimodalRec", "LightGCN", "Pop", "NeuMF"])
def test_training_items_excluded_and_validation_with_the_flag(
    model: str, recommenders: dict[str, Recommender], data_root: Path
) -> None:
    rec = recommenders[model]
    train, valid = split_pairs(data_root, "train"), split_pairs(data_root, "valid")
    users = rec.user_tokens
    every = set(rec.item_tokens)
    frame = rec.recommend(users, k=N_ITEMS)
    assert list(frame.columns) == ["user", "rank", "item", "score"]
    for user, rows in frame.groupby("user", sort=False):
        assert set(rows["item"]) == every - train[user]  # all the rest, nothing seen in training
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        assert rows["score"].is_monotonic_decreasing
    assert frame["item"].isin(["[PAD]"]).sum() == 0
    assert any(
        valid[u] & set(r["item"]) for u, r in frame.groupby("user")
    )  # valid items may come back
    frame = rec.recommend(users, k=N_ITEMS, exclude_valid=True)
    for user, rows in frame.groupby("user", sort=False):
        assert set(rows["item"]) == every - train[user] - valid[user]


def test_ties_are_deterministic_and_batch_independent(recommenders: dict[str, Recommender]) -> None:
    rec = recommenders["Pop"]  # popularity counts: many equal scores
    users = rec.user_tokens
    first = rec.recommend(users, k=15, batch_size=1)
    assert first.equals(rec.recommend(users, k=15, batch_size=1000))
    order = {token: i for i, token in enumerate(rec.item_tokens)}
    for _, rows in first.groupby("user"):
        keys = [(-s, order[i]) for s, i in zip(rows["score"], rows["item"])]
        assert keys == sorted(keys)  # score descending, then item order
    assert first.duplicated(["user", "score"]).any()  # the test did meet ties


def test_unknown_tokens_and_bad_k(recommenders: dict[str, Recommender]) -> None:
    rec = recommenders["BPR"]
    with pytest.raises(UnknownTokenError) as err:
        rec.recommend(["u1", "u999"], k=5)
    assert str(err.value) == (
        f"unknown user token(s) 'u999' in users; the checkpoint's dataset has {N_USERS} users, "
        f"e.g. '{rec.user_tokens[0]}', '{rec.user_tokens[1]}'"
    )
    with pytest.raises(
        UnknownTokenError, match=r"'x0', 'x1', 'x2', 'x3', 'x4' \(first 5 of 7 shown\)"
    ):
        rec.recommend([f"x{i}" for i in range(7)], k=5)
    with pytest.raises(UnknownTokenError, match="'\\[PAD\\]'"):
        rec.recommend(["[PAD]"], k=5)
    for k in (0, N_ITEMS + 1):
        with pytest.raises(InferenceError, match="top-K must lie between 1 and the 40 items"):
            rec.recommend(["u1"], k=k)
    frame = rec.recommend(["u2", "u1", "u2"], k=3)  # each user once, in the order given
    assert frame["user"].tolist() == ["u2"] * 3 + ["u1"] * 3


def test_changed_data_stops_or_recomputes(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = run_recbole_rlmm("BPR", config_dict=base_config(tiny, epochs=1))["checkpoint"]
    train = tiny / "tiny" / "tiny.train.inter"
    lines = train.read_text().splitlines()
    train.write_text("\n".join([*lines[:-1], lines[-1].split("\t")[0] + "\ti0"]) + "\n")  # same ids
    with pytest.raises(CheckpointError, match="changed since"):
        Recommender.from_checkpoint(ckpt)
    code, _, err = run_cli(["recommend", "--checkpoint", ckpt, "--users", "u1"], capsys)
    assert code == 2 and "tiny.train.inter changed since" in one_line_error(err)
    rec = Recommender.from_checkpoint(ckpt, changed_data="recompute")
    assert len(rec.recommend(["u1"], k=5)) == 5
    train.write_text(train.read_text() + "u1\tnew-item\n")  # one more item: weights no longer fit
    code, _, err = run_cli(
        ["recommend", "--checkpoint", ckpt, "--users", "u1", "--changed-data", "recompute"], capsys
    )
    assert code == 2 and "do not fit today's data" in one_line_error(err)


def test_recompute_refuses_recboles_saved_dataset_of_the_old_files(tiny: Path) -> None:
    """RecBole's create_dataset reads <checkpoint_dir>/<dataset>-Dataset.pth (save_dataset: True)
    in place of the data files: with changed files its lists would be stale."""
    ckpt = run_recbole_rlmm("BPR", config_dict=base_config(tiny, epochs=1, save_dataset=True))[
        "checkpoint"
    ]
    saved = tiny / "saved" / "tiny-Dataset.pth"
    assert saved.is_file()
    assert len(Recommender.from_checkpoint(ckpt).recommend(["u1"], k=3)) == 3  # same files: fine
    train = tiny / "tiny" / "tiny.train.inter"
    train.write_text(train.read_text() + "u1\ti0\n")
    with pytest.raises(CheckpointError, match="saved dataset .*tiny-Dataset.pth"):
        Recommender.from_checkpoint(ckpt, changed_data="recompute")
    saved.unlink()
    assert (
        len(Recommender.from_checkpoint(ckpt, changed_data="recompute").recommend(["u1"], k=3)) == 3
    )


# ---------------------------------------------------------------------------- export
def numpy_topk(
    users: np.ndarray, items: np.ndarray, seen: list[set[int]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows by dot product, seen rows excluded, ties by row (recommend's order)."""
    scores = users @ items.T
    for u, rows in enumerate(seen):
        scores[u, list(rows)] = -np.inf
    order = np.lexsort((np.broadcast_to(np.arange(items.shape[0]), scores.shape), -scores), axis=1)[
        :, :k
    ]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.mark.parametrize("model", DOT_MODELS)
def test_export_round_trip_and_faiss(
    model: str, recommenders: dict[str, Recommender], data_root: Path, tmp_path: Path
) -> None:
    import faiss

    rec = recommenders[model]
    scoring = export_embeddings(rec, tmp_path / "vectors", index=True)
    out = tmp_path / "vectors"
    users, items = np.load(out / "users.npy"), np.load(out / "items.npy")
    user_tokens = (out / "users.txt").read_text().splitlines()
    item_tokens = (out / "items.txt").read_text().splitlines()
    assert users.dtype == items.dtype == np.float32
    assert users.shape == (N_USERS, scoring["dims"]) and items.shape == (N_ITEMS, scoring["dims"])
    assert (
        len(user_tokens) == N_USERS and len(item_tokens) == N_ITEMS and "[PAD]" not in item_tokens
    )
    assert json.loads((out / "scoring.json").read_text()) == scoring
    assert scoring["metric"] == "dot" and scoring["model"] == model and scoring["index"]["exact"]

    # top-K from the files alone (the training split read from the atomic file) = recommend's
    train = split_pairs(data_root, "train")
    row = {t: i for i, t in enumerate(item_tokens)}
    seen = [{row[i] for i in train[u]} for u in user_tokens]
    top, top_scores = numpy_topk(users, items, seen, 10)
    frame = rec.recommend(user_tokens, k=10)
    assert frame["item"].tolist() == [item_tokens[i] for i in top.ravel()]
    np.testing.assert_allclose(frame["score"].to_numpy(), top_scores.ravel(), rtol=1e-5, atol=1e-6)

    # the faiss index returns the unmasked top-K of the same vectors
    index = faiss.read_index(str(out / "items.faiss"))
    distances, ids = index.search(users, 10)
    plain, plain_scores = numpy_topk(users, items, [set()] * N_USERS, 10)
    np.testing.assert_allclose(distances, plain_scores, rtol=1e-5, atol=1e-5)
    assert (ids == plain).mean() > 0.99  # equal up to float-noise ties


@pytest.mark.parametrize("model", ["Pop", "NeuMF"])
def test_export_refuses_models_without_dot_product_scores(
    model: str,
    recommenders: dict[str, Recommender],
    checkpoints: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    with pytest.raises(NotDotProductError, match=f"{model}'s scores are not a dot product"):
        export_embeddings(recommenders[model], tmp_path / "v")
    code, _, err = run_cli(
        ["export", "--checkpoint", str(checkpoints[model]), "--out", str(tmp_path / "w")], capsys
    )
    assert code == 2 and f"{model}'s scores are not a dot product" in one_line_error(err)
    assert not (tmp_path / "v").exists() and not (tmp_path / "w").exists()


# ---------------------------------------------------------------------------- gates
def test_gates_files_and_popularity_table(
    recommenders: dict[str, Recommender], data_root: Path, tmp_path: Path
) -> None:
    rec = recommenders["RLMultimodalRec"]
    result = write_gates(rec, tmp_path / "gates")
    out = tmp_path / "gates"
    assert result["skipped"] is None
    assert (out / "gates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out / "gates.csv", keep_default_na=False)
    assert list(table.columns) == [
        "item",
        "train_interactions",
        "share_image",
        "share_text",
        "modalities",
    ]
    assert len(table) == N_ITEMS
    table = table.set_index("item")
    degree = defaultdict(int)
    for items in split_pairs(data_root, "train").values():
        for item in items:
            degree[item] += 1
    assert table["train_interactions"].to_dict() == {i: degree[i] for i in table.index}
    assert table.loc["i3", "modalities"] == "text" and table.loc["i3", "share_text"] == 1.0
    assert (
        table.loc["i4", "modalities"] == "none"
        and table.loc["i4", ["share_image", "share_text"]].sum() == 0
    )
    assert table.loc["i5", "modalities"] == "image" and table.loc["i5", "share_image"] == 1.0
    complete = table[table["modalities"] == "image+text"]
    assert len(complete) == N_ITEMS - 3
    np.testing.assert_allclose(complete["share_image"] + complete["share_text"], 1.0, atol=1e-6)
    assert complete["share_image"].std() > 0  # a learned, per-item gate

    popularity = pd.read_csv(out / "gates_by_popularity.csv", dtype={"train_interactions": str})
    assert popularity["train_interactions"].tolist() == ["0", "1-2", "3-5", "6-10", "11-25", "26+"]
    assert (
        popularity["items"].sum() == N_ITEMS and popularity["items_with_all"].sum() == N_ITEMS - 3
    )
    bucket = popularity.set_index("train_interactions").loc["6-10"]
    inside = complete[
        (complete["train_interactions"] >= 6) & (complete["train_interactions"] <= 10)
    ]
    assert bucket["items_with_all"] == len(inside) > 0
    assert bucket["mean_share_image"] == pytest.approx(inside["share_image"].mean())


def test_gates_fixed_shares_refusals_and_no_matplotlib(
    recommenders: dict[str, Recommender], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = write_gates(recommenders["RLMultimodalRec-sum"], tmp_path / "sum")["table"]
    complete = table[table["modalities"] == "image+text"]
    np.testing.assert_allclose(complete[["share_image", "share_text"]], 0.5)  # sum: equal shares
    with pytest.raises(NoGateError, match="fusion=concat has no per-modality shares"):
        write_gates(recommenders["RLMultimodalRec-concat"], tmp_path / "concat")
    with pytest.raises(NoGateError, match="LightGCN has no modality gate"):
        write_gates(recommenders["LightGCN"], tmp_path / "lightgcn")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = write_gates(recommenders["RLMultimodalRec"], tmp_path / "noplot")
    assert "recbole-rlmm[plot]" in result["skipped"]
    assert sorted(p.name for p in (tmp_path / "noplot").iterdir()) == [
        "gates.csv",
        "gates_by_popularity.csv",
    ]


# ---------------------------------------------------------------------------- CLI
def test_recommend_command(
    checkpoints: dict[str, Path],
    recommenders: dict[str, Recommender],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ckpt = str(checkpoints["RLMultimodalRec"])
    code, out, _ = run_cli(
        ["recommend", "--checkpoint", ckpt, "--users", "u1", "u2", "--topk", "5"], capsys
    )
    assert code == 0
    printed = pd.read_csv(io.StringIO(out), dtype={"user": str, "item": str})
    expected = recommenders["RLMultimodalRec"].recommend(["u1", "u2"], k=5)
    assert printed[["user", "rank", "item"]].equals(expected[["user", "rank", "item"]])
    np.testing.assert_allclose(printed["score"], expected["score"], rtol=1e-6)

    users = tmp_path / "users.txt"
    users.write_text("u3\n\n u4 \n")
    target = tmp_path / "recs.json"
    args = [
        "recommend",
        "--checkpoint",
        ckpt,
        "--users-file",
        str(users),
        "--topk",
        "3",
        "--format",
        "json",
        "--out",
        str(target),
        "--exclude-valid",
    ]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "to " + str(target) in out
    data = json.loads(target.read_text())
    assert [r["user"] for r in data["recommendations"]] == ["u3", "u4"]
    assert (
        data["recommendations"][0]["items"]
        == recommenders["RLMultimodalRec"]
        .recommend(["u3"], k=3, exclude_valid=True)["item"]
        .tolist()
    )
    assert data["excluded"] == "training and validation items"

    monkeypatch.setattr(sys, "stdin", io.StringIO("u5\nu6\n"))
    code, out, _ = run_cli(
        ["recommend", "--checkpoint", ckpt, "--users-file", "-", "--topk", "2"], capsys
    )
    assert code == 0 and out.count("\nu5,") == 2 and out.count("\nu6,") == 2

    code, _, err = run_cli(args, capsys)  # --out exists
    assert code == 2 and "exists" in one_line_error(err) and "--overwrite" in err
    assert run_cli([*args, "--overwrite"], capsys)[0] == 0

    bad = {
        "unknown user token(s) 'u999' in --users; the checkpoint's dataset has 60 users, e.g. 'u0', 'u1'": [
            "--users",
            "u1",
            "u999",
        ],
        "holds no user tokens": ["--users-file", str(tmp_path / "empty.txt")],
        "not found": ["--users-file", str(tmp_path / "missing.txt")],
        "--topk must be at least 1": ["--users", "u1", "--topk", "0"],
        "--topk 41 exceeds the 40 items": ["--users", "u1", "--topk", "41"],
        "does not exist": ["--users", "u1", "--checkpoint", str(tmp_path / "none.pth")],
    }
    (tmp_path / "empty.txt").write_text("\n \n")
    for message, extra in bad.items():
        code, out, err = run_cli(["recommend", "--checkpoint", ckpt, *extra], capsys)
        assert code == 2 and message in one_line_error(err) and out == "", (message, err)
    assert one_line_error(
        run_cli(["recommend", "--checkpoint", ckpt, "--users", "u999"], capsys)[2]
    ) == (
        "recbole-rlmm: error: unknown user token(s) 'u999' in --users; the checkpoint's dataset has 60 "
        "users, e.g. 'u0', 'u1'"
    )


def test_export_and_gates_commands(
    checkpoints: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ckpt = str(checkpoints["RLMultimodalRec"])
    vectors = tmp_path / "vectors"
    code, out, _ = run_cli(
        ["export", "--checkpoint", ckpt, "--out", str(vectors), "--index"], capsys
    )
    assert code == 0 and "score = dot product" in out
    assert sorted(p.name for p in vectors.iterdir()) == sorted(
        ["users.npy", "items.npy", "users.txt", "items.txt", "scoring.json", "items.faiss"]
    )
    code, _, err = run_cli(["export", "--checkpoint", ckpt, "--out", str(vectors)], capsys)
    assert code == 2 and "not empty" in one_line_error(err)
    code, _, _ = run_cli(
        ["export", "--checkpoint", ckpt, "--out", str(vectors), "--overwrite"], capsys
    )
    assert code == 0 and not (vectors / "items.faiss").exists()  # no index of older vectors left

    monkeypatch.setitem(sys.modules, "faiss", None)
    code, _, err = run_cli(
        ["export", "--checkpoint", "nowhere.pth", "--out", str(tmp_path / "v2"), "--index"], capsys
    )
    assert code == 2 and 'pip install "recbole-rlmm[faiss]"' in one_line_error(
        err
    )  # before loading
    monkeypatch.undo()

    gates = tmp_path / "gates"
    code, out, _ = run_cli(["gates", "--checkpoint", ckpt, "--out", str(gates)], capsys)
    assert code == 0 and "mean_share_image" in out and "26+" in out and "gates.png" in out
    code, _, err = run_cli(
        ["gates", "--checkpoint", str(checkpoints["BPR"]), "--out", str(tmp_path / "g2")], capsys
    )
    assert code == 2 and "BPR has no modality gate" in one_line_error(err)


def test_recommender_is_exported_lazily() -> None:
    import recbole_rlmm

    assert recbole_rlmm.Recommender is Recommender
    assert issubclass(OutputExistsError, recbole_rlmm.errors.UserError)


def test_gates_plot_has_one_panel_per_modality_beyond_two() -> None:
    from recbole_rlmm.inference.gates import plot_shares

    rng = np.random.default_rng(0)
    shares = rng.dirichlet(np.ones(3), size=30)
    table = pd.DataFrame(
        {
            "item": [f"i{k}" for k in range(30)],
            "train_interactions": rng.integers(0, 40, size=30),
            **{f"share_{m}": shares[:, j] for j, m in enumerate(["image", "text", "audio"])},
            "modalities": "image+text+audio",
        }
    )
    png = plot_shares(table, "three modalities")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import struct

    width = struct.unpack(">I", png[16:20])[0]
    assert width > 3 * 500  # three panels side by side


def test_readme_python_snippet(checkpoints: dict[str, Path]) -> None:
    """The README's "Use a trained model" snippet, run on a real checkpoint."""
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Use a trained model") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    snippet = snippet.replace("saved/RLMultimodalRec-....pth", str(checkpoints["RLMultimodalRec"]))
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert list(namespace["recs"].columns) == ["user", "rank", "item", "score"]
    assert namespace["users"].shape == (N_USERS, 8) and namespace["items"].shape == (N_ITEMS, 8)


def test_pickled_recbole_checkpoint_needs_trust(
    recommenders: dict[str, Recommender], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """RecBole's own checkpoint format (a pickled Config) loads only with --trust-checkpoint."""
    rec = recommenders["BPR"]
    legacy = tmp_path / "BPR-legacy.pth"
    torch.save(
        {
            "config": rec.config,
            "state_dict": rec.model.state_dict(),
            "other_parameter": None,
            "epoch": 1,
        },
        legacy,
    )
    args = ["recommend", "--checkpoint", str(legacy), "--users", "u1", "--topk", "4"]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "--trust-checkpoint" in one_line_error(err)
    code, out, _ = run_cli([*args, "--trust-checkpoint"], capsys)
    assert code == 0
    expected = rec.recommend(["u1"], k=4)["item"].tolist()
    assert [line.split(",")[2] for line in out.splitlines()[1:]] == expected
