"""Every RecBole 1.2.1 compatibility patch of recbole_rlmm.compat, and the built-ins it enables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from datagen import FIELD_TYPE_KNOWN, base_config, make_dataset, make_field_type_dataset

from recbole_rlmm import compat, run_recbole_rlmm


def test_all_patches_applied_once() -> None:
    applied = compat.apply()
    names = {p.__name__.lstrip("_") for patches in compat.PATCHES.values() for p in patches}
    assert sorted(applied) == sorted(names) and len(applied) == len(names)
    assert compat.apply() is applied  # idempotent


@pytest.mark.parametrize("first", ["recbole.config", "recbole_rlmm"])
def test_patches_apply_whichever_is_imported_first(first: str) -> None:
    """``import recbole_rlmm`` is light and patches RecBole modules imported before or after."""
    code = f"""
import sys
import {first}
assert ("torch" in sys.modules) == ({first!r} != "recbole_rlmm")  # recbole_rlmm imports no torch
import recbole_rlmm
from recbole.config import Config
from recbole.data.dataset import dataset
from recbole.model.general_recommender import lightgcn
Config.compatibility_settings(None)
assert dataset.Dataset._remap.__module__.startswith("recbole_rlmm.compat")
assert lightgcn.LightGCN.get_norm_adj_mat.__module__.startswith("recbole_rlmm.compat")
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_numpy_aliases_make_config_work() -> None:
    from recbole.config import Config

    Config.compatibility_settings(None)  # raised AttributeError on numpy 2 before the patch
    assert np.float is np.float64 or np.float is float  # noqa: NPY001
    assert np.int is not None  # noqa: NPY001


def _recbole_reference_adj(inter: sp.coo_matrix, n_users: int, n_items: int) -> np.ndarray:
    """RecBole's LightGCN.get_norm_adj_mat, written densely."""
    n = n_users + n_items
    a = np.zeros((n, n), dtype=np.float64)
    for r, c in zip(inter.row, inter.col):
        a[r, c + n_users] = 1
        a[c + n_users, r] = 1
    deg = (a > 0).sum(axis=1) + 1e-7
    d = np.diag(np.power(deg, -0.5))
    return d @ a @ d


@pytest.mark.parametrize("model_name", ["LightGCN", "NGCF", "NCL"])
def test_norm_adj_matches_recbole_formula(model_name: str) -> None:
    from recbole.utils import get_model

    rng = np.random.default_rng(0)
    dense = (rng.random((7, 5)) < 0.4).astype(np.float32)
    dense[0, 0] = 1.0
    inter = sp.coo_matrix(dense)

    class Holder:
        interaction_matrix = inter
        n_users, n_items = 7, 5

    cls = get_model(model_name)
    got = cls.get_norm_adj_mat(Holder()).to_dense().numpy()
    np.testing.assert_allclose(got, _recbole_reference_adj(inter, 7, 5), rtol=1e-5, atol=1e-7)


def test_dok_update_available() -> None:
    a = sp.dok_matrix((3, 3), dtype=np.float32)
    a._update({(0, 1): 1.0, (2, 2): 3.0})
    assert a[0, 1] == 1.0 and a[2, 2] == 3.0 and a.nnz == 2


class _Pickled:
    """A non-tensor object, like the Config that RecBole pickles into checkpoints."""

    value = 3


def test_recboles_trainer_reads_recboles_pickled_checkpoints(tmp_path: Path) -> None:
    """torch >= 2.6 loads weights only by default; inside RecBole's modules torch.load reads
    RecBole's pickled checkpoints again, as on torch < 2.6. Global torch.load is untouched."""
    from recbole.trainer import trainer

    from recbole_rlmm.compat import torch_loads_weights_only

    path = tmp_path / "ckpt.pth"
    torch.save({"config": _Pickled(), "state_dict": {}}, path)
    assert isinstance(trainer.torch.load(path)["config"], _Pickled)
    assert trainer.torch.nn is torch.nn  # the rest of torch is forwarded
    if torch_loads_weights_only():
        with pytest.raises(Exception, match="weights_only"):
            torch.load(path)  # global torch.load keeps torch's safe default
        with pytest.raises(Exception, match="weights_only"):
            trainer.torch.load(path, weights_only=True)  # an explicit choice is kept


def test_fillna_fills_missing_item_fields(tmp_path: Path) -> None:
    """Missing token, float and token_seq values get RecBole's documented fill values."""
    from recbole.config import Config
    from recbole.data import create_dataset

    folder = tmp_path / "nan"
    folder.mkdir()
    rows = [f"u{u}\ti{i}" for u in range(8) for i in range(6) if (u + i) % 2 == 0]
    (folder / "nan.inter").write_text("user_id:token\titem_id:token\n" + "\n".join(rows) + "\n")
    items = ["item_id:token\tbrand:token\tprice:float\ttags:token_seq"]
    for i in range(6):
        items.append(f"i{i}\t{'' if i == 1 else 'b' + str(i % 2)}\t{'' if i == 2 else i}\t{'' if i == 3 else 'x y'}")
    (folder / "nan.item").write_text("\n".join(items) + "\n")
    config = Config(
        model="BPR",
        dataset="nan",
        config_dict={
            "data_path": str(tmp_path),
            "load_col": {"inter": ["user_id", "item_id"], "item": ["item_id", "brand", "price", "tags"]},
            "state": "ERROR",
        },
    )
    ds = create_dataset(config)
    ds.build()  # converts the frames into the Interactions that models read
    feat = ds.get_item_feature()
    assert not torch.isnan(feat["price"]).any()
    i2 = ds.token2id("item_id", "i2")
    assert feat["price"][i2] == pytest.approx(np.mean([0, 1, 3, 4, 5]))
    i1 = ds.token2id("item_id", "i1")
    assert feat["brand"][i1] == 0  # missing token -> [PAD]
    tags = ds.field2id_token["tags"]
    i0, i3 = ds.token2id("item_id", "i0"), ds.token2id("item_id", "i3")
    assert [tags[t] for t in feat["tags"][i0].tolist() if t] == ["x", "y"]
    assert feat["tags"][i3].sum() == 0  # empty sequence -> all padding


def test_token_seq_remap_splits_per_row_and_keeps_one_token_sequences() -> None:
    """pandas 3 ``Series.agg(len)`` is the Series' length; a one-token sequence must stay 1-d."""
    import types

    import pandas as pd
    from recbole.data.dataset.dataset import Dataset
    from recbole.utils import FeatureType

    feat = pd.DataFrame({"id": [0, 1, 2, 3]})
    feat["tags"] = [np.array(["a"]), np.array(["b", "a"]), np.array([]), np.array(["c"])]
    holder = types.SimpleNamespace(field2id_token={}, field2token_id={})
    holder._concat_remaped_tokens = lambda remap_list: Dataset._concat_remaped_tokens(holder, remap_list)
    Dataset._remap(holder, [(feat, "tags", FeatureType.TOKEN_SEQ)])
    id_token = holder.field2id_token["tags"]
    assert [[str(id_token[i]) for i in seq] for seq in feat["tags"]] == [["a"], ["b", "a"], [], ["c"]]
    assert all(isinstance(seq, np.ndarray) and seq.ndim == 1 for seq in feat["tags"])
    # RecBole's _fill_nan maps the column with Series.apply, which unboxes 0-d arrays
    assert [len(seq) for seq in feat["tags"].apply(lambda x: x)] == [1, 2, 0, 1]


def test_one_token_sequences_survive_build(tmp_path: Path) -> None:
    """The field-type dataset used to crash in ``_dataframe_to_interaction`` ('int' object is
    not subscriptable) on a one-token ``token_seq`` cell."""
    from recbole.data import create_dataset

    from recbole_rlmm.config import create_config

    make_field_type_dataset(tmp_path)
    config = create_config("BPR", "ftype", config_dict={"data_path": str(tmp_path), "state": "ERROR"})
    ds = create_dataset(config)
    ds.build()
    k = FIELD_TYPE_KNOWN["item"]
    categories = ds.get_item_feature()["categories"][ds.token2id("item_id", k["item_id"])]
    assert [ds.field2id_token["categories"][i] for i in categories.tolist() if i] == k["categories"]


def _field_type_dataset(root: Path, **config: object) -> object:
    from recbole.data import create_dataset

    from recbole_rlmm.config import create_config

    make_field_type_dataset(root)
    cfg = create_config("BPR", "ftype", config_dict={"data_path": str(root), "state": "ERROR", **config})
    ds = create_dataset(cfg)
    ds.build()
    return ds


def _embeddings(root: Path) -> tuple[dict[str, list[float]], np.ndarray]:
    rows = (root / "ftype" / "ftype.item").read_text().splitlines()[1:]
    per_item = {r.split("\t")[0]: [float(x) for x in r.split("\t")[4].split()] for r in rows}
    return per_item, np.concatenate([np.array(v) for v in per_item.values()])


def test_float_seq_normalize_matches_recbole_formula(tmp_path: Path) -> None:
    ds = _field_type_dataset(tmp_path, normalize_all=True)
    per_item, values = _embeddings(tmp_path)
    item = FIELD_TYPE_KNOWN["item"]["item_id"]
    got = ds.get_item_feature()["embedding"][ds.token2id("item_id", item)].numpy()
    expected = (np.array(per_item[item]) - values.min()) / (values.max() - values.min())
    np.testing.assert_allclose(got[: len(expected)], expected, rtol=1e-5)


def test_float_seq_discretization_matches_recbole_formula(tmp_path: Path) -> None:
    """``numerical_features`` float_seq fields become (value, index) pairs; ED buckets them."""
    bucket = 4
    ds = _field_type_dataset(
        tmp_path,
        numerical_features=["embedding", "profile"],
        discretization={"embedding": {"method": "ED", "bucket": bucket}},
    )
    per_item, values = _embeddings(tmp_path)
    item = FIELD_TYPE_KNOWN["item"]["item_id"]
    got = ds.get_item_feature()["embedding"][ds.token2id("item_id", item)].numpy()
    lower, upper = values.min(), values.max() + 1e-9
    expected = np.floor((np.array(per_item[item]) - lower) * bucket / (upper - lower) + 1)
    n = len(expected)
    np.testing.assert_array_equal(got[:n, 0], np.ones(n))
    np.testing.assert_array_equal(got[:n, 1], expected)
    assert ds.field2bucketnum["embedding"] == bucket + 1  # int(max(bucketed) + 1)
    user = FIELD_TYPE_KNOWN["user"]
    profile = ds.get_user_feature()["profile"][ds.token2id("user_id", user["user_id"])].numpy()
    np.testing.assert_allclose(profile[0], [user["profile"][0], 1.0])  # not discretized: (value, 1)


def test_recbole_quick_start_and_ray_never_imported() -> None:
    code = "import sys, recbole_rlmm.cli; recbole_rlmm.cli.build_parser(); print('recbole.quick_start' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("model", ["BPR", "LightGCN", "NGCF", "ItemKNN", "Pop"])
def test_builtin_trains_and_reloads_best(tmp_path: Path, model: str) -> None:
    root = tmp_path / "data"
    make_dataset(root)
    result = run_recbole_rlmm(model, config_dict=base_config(root), saved=True)
    assert set(result["test_result"]) >= {"recall@20", "ndcg@20"}
    assert 0.0 <= result["test_result"]["recall@20"] <= 1.0
    assert result["best_epoch"] >= 0


def test_collector_concatenates_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_linear_collector``: batch results are kept as blocks and concatenated once, when read,
    instead of onto everything collected before at every batch (quadratic in the users)."""
    compat.apply()
    from recbole.evaluator import collector

    blocks = [torch.arange(i * 6, i * 6 + 6).view(2, 3) for i in range(50)]
    struct = collector.DataStruct()
    calls = []
    real_cat = torch.cat
    monkeypatch.setattr(torch, "cat", lambda *a, **k: calls.append(1) or real_cat(*a, **k))
    for block in blocks:
        struct.update_tensor("rec.topk", block)
    assert calls == []  # nothing copied while collecting
    blocks[0].zero_()  # the struct holds its own copies, as RecBole's did
    expected = real_cat([b if i else torch.arange(6).view(2, 3) for i, b in enumerate(blocks)])
    assert torch.equal(struct.get("rec.topk"), expected) and len(calls) == 1
    assert torch.equal(struct["rec.topk"], expected) and len(calls) == 1  # concatenated once

    struct.set("data.num_items", 7)
    with pytest.raises(ValueError, match="data.num_items is not a tensor"):
        struct.update_tensor("data.num_items", blocks[1])

    # the collector hands the metrics concatenated CPU tensors and forgets the batch results
    holder = type("Holder", (), {})()
    holder.data_struct = collector.DataStruct()
    for block in blocks[1:4]:
        holder.data_struct.update_tensor("rec.items", block)
    returned = collector.Collector.get_data_struct(holder)
    assert torch.equal(returned.get("rec.items"), real_cat(blocks[1:4])) and "rec.items" not in holder.data_struct


def test_recboles_result_dicts_read_as_on_numpy_1(tiny: Path) -> None:
    """numpy 2 shows a scalar's type in its repr: RecBole's logged result dicts read
    OrderedDict([('recall@10', np.float64(0.117)), ...]). The evaluator returns the same values as
    Python floats, so they read OrderedDict([('recall@10', 0.117), ...]) as on numpy 1."""
    from conftest import build_model
    from recbole.utils import get_trainer

    net, config, _, valid, _ = build_model("BPR", tiny)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)  # RecBole's own
    result = trainer.evaluate(valid, load_best_model=False)
    assert "np.float64" not in repr(result) and all(isinstance(v, float) for v in result.values())
    assert repr(result).startswith("OrderedDict([('recall@5', ")
