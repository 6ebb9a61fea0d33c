"""Generic checks for every plugin model, then RLMultimodalRec's own behaviour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import build_model
from datagen import base_config, make_dataset

from recbole_rlmm import run_recbole_rlmm
from recbole_rlmm.features import FeatureFileError
from recbole_rlmm.utils import plugin_models

MODELS = plugin_models()


def _batch(train: Any) -> Any:
    return next(iter(train))


def _all_pairs(net: Any, users: list[int]) -> Any:
    from recbole.data.interaction import Interaction

    u = torch.tensor(users).repeat_interleave(net.n_items)
    i = torch.arange(net.n_items).repeat(len(users))
    return Interaction({net.USER_ID: u, net.ITEM_ID: i})


@pytest.mark.parametrize("model", MODELS)
def test_forward_backward(tiny: Path, model: str) -> None:
    net, _, train, *_ = build_model(model, tiny)
    net.train()
    loss = net.calculate_loss(_batch(train))
    if isinstance(loss, tuple):  # RecBole lets a model return its loss terms separately
        loss = sum(loss)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("model", MODELS)
def test_full_sort_equals_predict(tiny: Path, model: str) -> None:
    from recbole.data.interaction import Interaction

    net, *_ = build_model(model, tiny)
    net.eval()
    users = [1, 2, 5]
    with torch.no_grad():
        full = net.full_sort_predict(Interaction({net.USER_ID: torch.tensor(users)}))
        pairs = net.predict(_all_pairs(net, users))
    torch.testing.assert_close(full.view(len(users), -1), pairs.view(len(users), -1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model", MODELS)
def test_checkpoint_reload_gives_identical_scores(tiny: Path, tmp_path: Path, model: str) -> None:
    from recbole.data.interaction import Interaction

    net, *_ = build_model(model, tiny)
    with torch.no_grad():  # move weights away from their initial values
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    net.eval()
    users = Interaction({net.USER_ID: torch.tensor([1, 3])})
    before = net.full_sort_predict(users)
    torch.save({"state_dict": net.state_dict(), "other_parameter": net.other_parameter()}, tmp_path / "m.pth")
    fresh, *_ = build_model(model, tiny)
    ckpt = torch.load(tmp_path / "m.pth", weights_only=False)
    fresh.load_state_dict(ckpt["state_dict"])
    fresh.load_other_parameter(ckpt["other_parameter"])
    fresh.eval()
    torch.testing.assert_close(fresh.full_sort_predict(users), before)


@pytest.mark.parametrize("model", [*MODELS, "BPR", "LightGCN"])
def test_end_to_end_two_epochs(tiny: Path, model: str) -> None:
    result = run_recbole_rlmm(model, config_dict=base_config(tiny), saved=True)
    assert Path(result["checkpoint"]).is_file()
    assert set(result) >= {"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result"}
    assert result["epochs_run"] == 2 and 0 <= result["best_epoch"] <= 1
    assert 0 <= result["test_result"]["recall@20"] <= 1


def test_checkpoint_names_are_unique_within_one_second(tiny: Path) -> None:
    from recbole_rlmm.config import create_config
    from recbole_rlmm.quick_start import unique_checkpoint_path

    config = create_config("BPR", config_dict=base_config(tiny))
    names = {unique_checkpoint_path(config) for _ in range(20)}
    assert len(names) == 20 and all("BPR-tiny-" in n for n in names)


# ---------------------------------------------------------------------------- RLMultimodalRec


def _gates(root: Path, **extra: Any) -> tuple[Any, dict[str, torch.Tensor], Any]:
    net, config, train, *_ = build_model("RLMultimodalRec", root, **extra)
    return net, net.gate_values(), train._dataset


@pytest.mark.parametrize("gate_type", ["vector", "scalar"])
def test_gate_values_in_open_unit_interval_and_sum_to_one(tiny: Path, gate_type: str) -> None:
    net, gates, ds = _gates(tiny, gate_type=gate_type)
    both = net.mask_image & net.mask_text
    assert ((gates["image"][both] > 0) & (gates["image"][both] < 1)).all()
    torch.testing.assert_close(gates["image"][both] + gates["text"][both], torch.ones(int(both.sum())))
    per_dim = net.gate_values(per_dimension=True)["image"]
    assert per_dim.shape == (net.n_items, net.embedding_size)
    if gate_type == "scalar":  # one value per item, shared by every dimension
        assert torch.allclose(per_dim[both].std(dim=1), torch.zeros(int(both.sum())), atol=1e-6)


def test_item_missing_a_modality_gets_exactly_the_other(tiny: Path) -> None:
    net, gates, ds = _gates(tiny)
    only_text = ds.token2id(ds.iid_field, "i3")
    only_image = ds.token2id(ds.iid_field, "i5")
    none = ds.token2id(ds.iid_field, "i4")
    assert gates["text"][only_text] == 1 and gates["image"][only_text] == 0
    assert gates["image"][only_image] == 1 and gates["text"][only_image] == 0
    assert gates["image"][none] == 0 and gates["text"][none] == 0
    net.eval()
    fused, has_any = net.fused_content()
    p_text = net.projections["text"](net.feat_text)
    torch.testing.assert_close(fused[only_text], p_text[only_text])
    assert not has_any[none] and fused[none].abs().sum() == 0
    _, item_e, _, _ = net.get_ego_embeddings()
    torch.testing.assert_close(item_e[none], net.item_embedding.weight[none])  # ID only


@pytest.mark.parametrize(
    "extra",
    [
        {"fusion": "sum"},
        {"fusion": "concat"},
        {"fusion": "image"},
        {"fusion": "text"},
        {"fusion": "none"},
        {"fusion_stage": "late"},
        {"feature_norm": "none", "modality_dropout": 0.3},
        {"learn_content_scale": True, "content_scale": 0.0},
        {"item_graph_k": 3},
        {"item_graph_k": 3, "fusion": "concat"},
        {"edge_dropout": 0.5},
        {"proj_reg_weight": 1e-3},
        {"content_bpr_weight": 0.1},
        {"item_graph_k": 3, "item_graph_layers": 2},
        {"item_graph_k": 3, "item_graph_degree_power": 0.5},
        {"user_graph_k": 2},
        {"user_graph_k": 2, "fusion": "none"},
        {"cl_weight": 0.1},
        {"cl_weight": 0.1, "n_layers": 1, "fusion": "none"},
        {"align_weight": 0.1},
    ],
    ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()),
)
def test_variants_train(tiny: Path, extra: dict[str, Any]) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", tiny, **extra)
    loss = net.calculate_loss(_batch(train))
    loss.backward()
    assert torch.isfinite(loss)
    if extra.get("learn_content_scale"):
        assert net.content_scale.grad is not None


def test_three_modalities_use_softmax_gate(tmp_path: Path) -> None:
    root = tmp_path / "d"
    make_dataset(root, dims={"image": 6, "text": 5, "audio": 4}, missing={"audio": [2]})
    net, gates, ds = _gates(root)
    total = gates["image"] + gates["text"] + gates["audio"]
    has_any = net.mask_image | net.mask_text | net.mask_audio
    torch.testing.assert_close(total[has_any], torch.ones(int(has_any.sum())))
    assert gates["audio"][ds.token2id(ds.iid_field, "i2")] == 0


def test_fusion_none_reproduces_recbole_lightgcn(tiny: Path) -> None:
    ours = run_recbole_rlmm(
        "RLMultimodalRec", config_dict=base_config(tiny, fusion="none", edge_dropout=0.0)
    )
    theirs = run_recbole_rlmm("LightGCN", config_dict=base_config(tiny))
    assert ours["test_result"] == theirs["test_result"]
    assert ours["best_valid_result"] == theirs["best_valid_result"]


def test_fusion_none_needs_no_feature_files(tiny: Path) -> None:
    cfg = base_config(tiny, fusion="none", modalities={"image": "absent.npy"})
    assert run_recbole_rlmm("RLMultimodalRec", config_dict=cfg)["epochs_run"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"modalities": {}}, "--fusion=none"),
        ({"fusion": "image", "modalities": {"text": "tiny.text.npy"}}, "'image' entry"),
        ({"fusion": "bogus"}, "fusion='bogus'"),
        ({"gate_type": "matrix"}, "gate_type='matrix'"),
        ({"user_graph_k": -1}, "user_graph_k must be an integer >= 0"),
        ({"item_graph_layers": 1.5}, "item_graph_layers must be an integer >= 0"),
        ({"edge_dropout": 1.0}, "must lie in"),
    ],
)
def test_bad_model_options(tiny: Path, extra: dict[str, Any], message: str) -> None:
    with pytest.raises((FeatureFileError, ValueError), match=message.replace("(", r"\(")):
        build_model("RLMultimodalRec", tiny, **extra)


def test_full_sort_cache_is_dropped_when_training(tiny: Path) -> None:
    from recbole.data.interaction import Interaction

    net, _, train, *_ = build_model("RLMultimodalRec", tiny)
    net.eval()
    net.full_sort_predict(Interaction({net.USER_ID: torch.tensor([1])}))
    assert net.restore_user_e is not None
    net.train()
    net.calculate_loss(_batch(train))
    assert net.restore_user_e is None and net.restore_item_e is None


def test_edge_dropout_prunes_once_per_epoch_and_never_at_evaluation(tiny: Path) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", tiny, edge_dropout=0.5)
    n_edges = net.edge_index.shape[1]
    net.train()
    net.calculate_loss(_batch(train))
    first = net.pruned_adj
    assert first._nnz() == 2 * int(n_edges * 0.5)  # both directions of the kept edges
    net.calculate_loss(_batch(train))
    assert net.pruned_adj is first  # same graph within an epoch
    net.train()  # RecBole's trainer: next epoch
    net.calculate_loss(_batch(train))
    assert net.pruned_adj is not first
    assert net._user_item_graph(train=False) is net.norm_adj_matrix


def _item_graph_part(net: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """In evaluation mode: what the item graphs add to the final item vectors, the layer-0
    item embeddings, the modality shares and the graphs (removed from ``net`` afterwards)."""
    net.eval()
    _, item_e, _, shares = net.get_ego_embeddings()
    with torch.no_grad():
        _, item_all = net.forward()
        graphs, net.item_graphs = net.item_graphs, []
        _, without = net.forward()
    return item_all - without, item_e, shares, graphs


def test_item_graph_follows_the_gate(tiny: Path) -> None:
    """Smoothing = sum_m share_m(i) (S_m E)(i): an item without an image listens to text only."""
    net, *_ = build_model("RLMultimodalRec", tiny, item_graph_k=3, item_graph_weight=1.0)
    added, item_e, shares, (image_graph, text_graph) = _item_graph_part(net)
    only_text = int(torch.nonzero(~net.mask_image & net.mask_text)[0])
    assert shares[0, only_text] == 0 and shares[1, only_text] == 1
    expected = torch.sparse.mm(text_graph, item_e)[only_text]
    torch.testing.assert_close(added[only_text], expected)


def test_content_bpr_adds_a_ranking_loss_on_the_fused_content(tiny: Path) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", tiny, content_bpr_weight=0.5, edge_dropout=0.0)
    batch = _batch(train)
    net.eval()  # no dropout: both losses see identical embeddings
    with torch.no_grad():
        with_aux = net.calculate_loss(batch)
        fused, _ = net.fused_content()
        user_all, _ = net.forward(train=True)
        u = user_all[batch[net.USER_ID]]
        pos = (u * fused[batch[net.ITEM_ID]]).sum(dim=1)
        neg = (u * fused[batch[net.NEG_ITEM_ID]]).sum(dim=1)
        net.content_bpr_weight = 0.0
        without = net.calculate_loss(batch)
    torch.testing.assert_close((with_aux - without).reshape(()), 0.5 * net.mf_loss(pos, neg))


def test_item_graph_layers_repeat_the_smoothing(tiny: Path) -> None:
    """Two item-graph steps give sum_m share_m(i) (S_m S_m E)(i)."""
    net, *_ = build_model("RLMultimodalRec", tiny, item_graph_k=3, item_graph_weight=1.0, item_graph_layers=2)
    added, item_e, shares, graphs = _item_graph_part(net)
    expected = sum(shares[m] * torch.sparse.mm(g, torch.sparse.mm(g, item_e)) for m, g in enumerate(graphs))
    torch.testing.assert_close(added, expected)


def test_user_graph_smooths_users_over_co_interacting_users(tiny: Path) -> None:
    net, *_ = build_model("RLMultimodalRec", tiny, user_graph_k=2, user_graph_weight=0.7)
    net.eval()
    with torch.no_grad():
        user_all, item_all = net.forward()
        graph, net.user_graph = net.user_graph, None
        without_u, without_i = net.forward()
    expected = 0.7 * torch.sparse.mm(graph, net.user_embedding.weight)
    torch.testing.assert_close(user_all - without_u, expected)
    torch.testing.assert_close(item_all, without_i)  # items untouched


def test_contrastive_loss_only_while_training_and_never_at_evaluation(tiny: Path) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", tiny, cl_weight=0.5, edge_dropout=0.0)
    batch = _batch(train)
    torch.manual_seed(0)
    with_cl = net.calculate_loss(batch)
    assert net._cl_view is not None
    with torch.no_grad():
        clean = net.forward(train=False)
        again = net.forward(train=False)
    assert net._cl_view is None  # evaluation: no noise, no view
    for a, b in zip(clean, again, strict=True):
        torch.testing.assert_close(a, b)  # deterministic without the perturbation
    net.cl_weight = 0.0
    without = net.calculate_loss(batch)
    assert with_cl > without  # InfoNCE is positive
    with_cl.backward()
    assert net.user_embedding.weight.grad is not None


def test_alignment_loss_trains_the_gate_and_projections(tiny: Path) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", tiny, align_weight=1.0, content_scale=0.0, item_graph_k=0)
    batch = _batch(train)
    net.calculate_loss(batch).backward()
    # content_scale 0, no item graph: content reaches the loss only through the alignment
    assert net.gate.weight.grad.abs().sum() > 0
    assert all(p.weight.grad.abs().sum() > 0 for p in net.projections.values())
    net.zero_grad()
    net.align_weight = 0.0
    net.calculate_loss(batch).backward()
    assert net.gate.weight.grad is None or net.gate.weight.grad.abs().sum() == 0


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0])
def test_item_graph_weight_follows_item_degree(tiny: Path, power: float) -> None:
    """w_i = item_graph_weight * (median(d + 1) / (d_i + 1)) ** p: colder items get more."""
    net, _, train, *_ = build_model(
        "RLMultimodalRec", tiny, item_graph_k=3, item_graph_weight=0.4, item_graph_degree_power=power
    )
    degree = torch.bincount(
        train._dataset.inter_feat[train._dataset.iid_field], minlength=net.n_items
    ).float() + 1.0
    expected = 0.4 * (degree[1:].median() / degree) ** power
    torch.testing.assert_close(net.item_graph_scale.squeeze(1), expected)
    if power > 0:
        cold, hot = int(degree[1:].argmin()) + 1, int(degree[1:].argmax()) + 1
        assert net.item_graph_scale[cold] > net.item_graph_scale[hot]
    added, item_e, shares, graphs = _item_graph_part(net)
    smoothed = sum(shares[m] * torch.sparse.mm(g, item_e) for m, g in enumerate(graphs))
    torch.testing.assert_close(added, net.item_graph_scale * smoothed)
