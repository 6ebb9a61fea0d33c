"""RLMultimodalRec against the paper's equations, computed by hand on a tiny dataset, and one
behavioural assertion per remaining option (recbole_rlmm/model/rlmultimodalrec.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import build_model
from datagen import base_config, make_dataset
from reference import (
    first_batch,
    info_nce_dense,
    knn_dense,
    lightgcn_adjacency,
    lightgcn_mean,
    recbole_bpr,
    sym_norm_dense,
    total_loss,
)

from recbole_rlmm.data.features import FeatureFileError
from recbole_rlmm.runner import run_recbole_rlmm

#: The paper's model without the extensions: gated fusion, LightGCN, BPR.
PAPER = {"item_graph_k": 0, "edge_dropout": 0.0}


def _paper_model(root: Path, **extra: Any) -> tuple[Any, Any, Any]:
    net, _, train, *_ = build_model("RLMultimodalRec", root, **{**PAPER, **extra})
    net.eval()
    return net, train, train._dataset


def _linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return x @ layer.weight.T + layer.bias


def _projections(net: Any) -> dict[str, torch.Tensor]:
    """p_m = X_m W_m + b_m, zero rows where the item lacks modality m."""
    return {
        m: _linear(e.projection, e.features) * e.mask[:, None].float()
        for m, e in net.encoders.items()
    }


def _expected_fused(net: Any, gate_type: str) -> torch.Tensor:
    """f = g * p_image + (1 - g) * p_text, g = sigmoid([p_image ; p_text] W_g + b_g); an item
    with one modality takes that modality, an item with none gets 0."""
    p = _projections(net)
    image, text = net.encoders["image"].mask, net.encoders["text"].mask
    g = torch.sigmoid(_linear(net.fusion_layer.gate, torch.cat([p["image"], p["text"]], dim=1)))
    assert g.shape[1] == (1 if gate_type == "scalar" else net.embedding_size)
    both = (image & text)[:, None].float()
    only_image = (image & ~text)[:, None].float()
    only_text = (~image & text)[:, None].float()
    return both * (g * p["image"] + (1 - g) * p["text"]) + only_image * p["image"] + only_text * p["text"]


# ---------------------------------------------------------------------------- the paper
@pytest.mark.parametrize("gate_type", ["vector", "scalar"])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_forward_is_the_papers_model(tiny: Path, gate_type: str, n_layers: int) -> None:
    """Gate, fusion, layer-0 item = ID + content_scale * f, LightGCN mean of layers (the ID of
    an item without training interactions, here only the padding item, is zero)."""
    net, train, ds = _paper_model(tiny, gate_type=gate_type, n_layers=n_layers, content_scale=0.37)
    with torch.no_grad():
        fused, _ = net.content()
        torch.testing.assert_close(fused, _expected_fused(net, gate_type))
        item0 = net.item_embedding.weight * net.warm_items[:, None] + 0.37 * fused
        adj = lightgcn_adjacency(ds.inter_matrix(form="coo"), net.n_users, net.n_items)
        user_ref, item_ref = lightgcn_mean(adj, net.user_embedding.weight, item0, n_layers)
        out = net.forward()
    torch.testing.assert_close(out.item_ego, item0)
    torch.testing.assert_close(out.user, user_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.item, item_ref, rtol=1e-5, atol=1e-6)


def test_missing_modalities_follow_the_masks(tiny: Path) -> None:
    """i3 lacks an image, i5 lacks text, i4 has neither (tests/conftest.py)."""
    net, _, ds = _paper_model(tiny)
    only_text, only_image, none = (ds.token2id(ds.iid_field, t) for t in ("i3", "i5", "i4"))
    gates = net.gate_values()
    assert gates["text"][only_text] == 1 and gates["image"][only_text] == 0
    assert gates["image"][only_image] == 1 and gates["text"][only_image] == 0
    assert gates["image"][none] == 0 and gates["text"][none] == 0
    with torch.no_grad():
        out = net.forward()
    torch.testing.assert_close(out.item_ego[none], net.item_embedding.weight[none])  # ID only
    assert out.content[none].abs().sum() == 0


def test_gate_values_are_the_gate(tiny: Path) -> None:
    """gate_values() returns g (image) and 1 - g (text), per dimension or averaged."""
    net, *_ = _paper_model(tiny)
    p = _projections(net)
    with torch.no_grad():
        g = torch.sigmoid(_linear(net.fusion_layer.gate, torch.cat([p["image"], p["text"]], dim=1)))
    both = net.encoders["image"].mask & net.encoders["text"].mask
    per_dim = net.gate_values(per_dimension=True)
    torch.testing.assert_close(per_dim["image"][both], g[both])
    torch.testing.assert_close(per_dim["text"][both], 1 - g[both])
    torch.testing.assert_close(net.gate_values()["image"][both], g[both].mean(dim=1))


def test_three_modalities_use_a_softmax_gate(tmp_path: Path) -> None:
    root = tmp_path / "d"
    make_dataset(root, dims={"image": 6, "text": 5, "audio": 4}, missing={"audio": [2]})
    net, _, ds = _paper_model(root)
    p = _projections(net)
    names = list(net.encoders)
    masks = torch.stack([net.encoders[m].mask for m in names]).float()
    with torch.no_grad():
        logits = _linear(net.fusion_layer.gate, torch.cat([p[m] for m in names], dim=1))
        w = torch.softmax(logits.view(net.n_items, 3, -1).transpose(0, 1), dim=0) * masks[:, :, None]
        w = w / w.sum(dim=0, keepdim=True).clamp_min(1e-12)
        expected = sum(w[i] * p[m] for i, m in enumerate(names))
        fused, _ = net.content()
    torch.testing.assert_close(fused, expected)
    assert net.gate_values()["audio"][ds.token2id(ds.iid_field, "i2")] == 0


def test_loss_terms_are_bpr_and_l2_of_layer0(tiny: Path) -> None:
    net, train, _ = _paper_model(tiny, reg_weight=0.01)
    batch = first_batch(net, train)
    net.train()
    bpr, reg = net.calculate_loss(batch)
    with torch.no_grad():
        out = net.forward()
    u, pos, neg = batch[net.USER_ID], batch[net.ITEM_ID], batch[net.NEG_ITEM_ID]
    scores = (out.user[u] * out.item[pos]).sum(1), (out.user[u] * out.item[neg]).sum(1)
    torch.testing.assert_close(bpr, recbole_bpr(*scores))
    l2 = out.user_ego[u].norm() + out.item_ego[pos].norm() + out.item_ego[neg].norm()
    torch.testing.assert_close(reg.reshape(()), 0.01 * l2 / len(u))


def test_fusion_none_reproduces_recbole_lightgcn(tiny: Path) -> None:
    ours = run_recbole_rlmm(
        "RLMultimodalRec", config_dict=base_config(tiny, fusion="none", edge_dropout=0.0)
    )
    theirs = run_recbole_rlmm("LightGCN", config_dict=base_config(tiny))
    assert ours["test_result"] == theirs["test_result"]
    assert ours["best_valid_result"] == theirs["best_valid_result"]


def test_fusion_none_reads_no_feature_file(tiny: Path) -> None:
    cfg = base_config(tiny, fusion="none", modalities={"image": "absent.npy"})
    assert run_recbole_rlmm("RLMultimodalRec", config_dict=cfg)["epochs_run"] == 2


# ---------------------------------------------------------------------------- ablation fusions
@pytest.mark.parametrize("fusion", ["sum", "concat", "image", "text"])
def test_ablation_fusions(tiny: Path, fusion: str) -> None:
    net, *_ = _paper_model(tiny, fusion=fusion)
    p = _projections(net)
    image = net.encoders["image"].mask if "image" in net.encoders else None
    with torch.no_grad():
        fused, _ = net.content()
        if fusion == "sum":
            expected = p["image"] + p["text"]
        elif fusion == "concat":
            has_any = (net.encoders["image"].mask | net.encoders["text"].mask)[:, None].float()
            expected = _linear(net.fusion_layer.concat, torch.cat([p["image"], p["text"]], 1)) * has_any
        else:
            assert list(net.encoders) == [fusion] and (image is None or fusion == "image")
            expected = p[fusion]
    torch.testing.assert_close(fused, expected)
    assert net.fusion_layer.gate is None


def test_late_fusion_adds_content_after_propagation(tiny: Path) -> None:
    net, _, ds = _paper_model(tiny, fusion_stage="late", content_scale=0.5)
    with torch.no_grad():
        fused, _ = net.content()
        adj = lightgcn_adjacency(ds.inter_matrix(form="coo"), net.n_users, net.n_items)
        user_ref, item_ref = lightgcn_mean(
            adj, net.user_embedding.weight, net.item_embedding.weight * net.warm_items[:, None], net.n_layers
        )
        out = net.forward()
    torch.testing.assert_close(out.item_ego, net.item_embedding.weight * net.warm_items[:, None])
    torch.testing.assert_close(out.item, item_ref + 0.5 * fused, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm", ["none", "l2", "standard"])
def test_feature_norm_scales_what_the_projections_see(tiny: Path, norm: str) -> None:
    import numpy as np

    net, _, ds = _paper_model(tiny, feature_norm=norm)
    raw = np.load(tiny / "tiny" / "tiny.image.npy")
    tokens = (tiny / "tiny" / "tiny.item_index").read_text().split()
    ids = [ds.token2id(ds.iid_field, t) for t in tokens]
    x = torch.zeros(net.n_items, raw.shape[1])
    x[ids] = torch.from_numpy(raw)
    mask = net.encoders["image"].mask
    rows = x[mask]
    if norm == "standard":
        rows = (rows - rows.mean(0)) / (rows.std(0, unbiased=False) + 1e-6)
    if norm != "none":
        rows = rows / rows.norm(dim=1, keepdim=True)
    torch.testing.assert_close(net.encoders["image"].features[mask], rows)


# ---------------------------------------------------------------------------- extensions
@pytest.mark.parametrize("purify", [False, True])
@pytest.mark.parametrize("users", [False, True])
def test_item_graphs_follow_the_gate(tiny: Path, purify: bool, users: bool) -> None:
    """h(i) = w * sum_m share_m(i) (S_m X_m)(i), S_m the kNN graph of the raw features, X_m the
    layer-0 vectors E_0 or (``item_graph_purify``) E_id * sigmoid(W_m p_m + b_m); item final += h,
    and (``item_graph_users``) user final += (R^ h)(u) with LightGCN's normalisation."""
    import numpy as np

    net, _, ds = _paper_model(
        tiny, item_graph_k=3, item_graph_weight=0.7, item_graph_purify=purify, item_graph_users=users
    )
    with torch.no_grad():
        out = net.forward()
        _, shares = net.content()
        graphs = net.scoring_item_graphs
        net.item_graphs, net.scoring_item_graphs, net.user_item_adj = [], [], None
        without = net.forward()
    assert (len(net.purifiers) > 0) == purify
    tokens = (tiny / "tiny" / "tiny.item_index").read_text().split()
    ids = [ds.token2id(ds.iid_field, t) for t in tokens]
    projections = _projections(net)
    expected = torch.zeros_like(out.item)
    for m_index, m in enumerate(net.modalities):
        raw = torch.zeros(net.n_items, net.encoders[m].in_dim)
        raw[ids] = torch.from_numpy(np.load(tiny / "tiny" / f"tiny.{m}.npy"))
        s = sym_norm_dense(knn_dense(raw, net.encoders[m].mask, 3, weighted=False))
        torch.testing.assert_close(graphs[m_index].to_dense(), s)
        if purify:
            gate = net.purifiers[m_index][0]
            x = net.item_embedding.weight * torch.sigmoid(_linear(gate, projections[m]))
        else:
            x = out.item_ego
        expected += shares[m_index] * (s @ x)
    torch.testing.assert_close(out.item - without.item, 0.7 * expected, rtol=1e-5, atol=1e-6)
    r_hat = lightgcn_adjacency(ds.inter_matrix(form="coo"), net.n_users, net.n_items)[: net.n_users, net.n_users :]
    user_side = r_hat @ (0.7 * expected) if users else torch.zeros_like(out.user)
    torch.testing.assert_close(out.user - without.user, user_side, rtol=1e-5, atol=1e-6)
    only_text = int(torch.nonzero(~net.encoders["image"].mask & net.encoders["text"].mask)[0])
    assert shares[0, only_text] == 0 and shares[1, only_text] == 1  # listens to text only


def test_edge_dropout_prunes_once_per_epoch_and_never_at_evaluation(tiny: Path) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", tiny, edge_dropout=0.5)
    n_edges = net.edge_sampler.edges.shape[1]
    batch = first_batch(net, train)
    net.train()
    net.calculate_loss(batch)
    first = net.pruned_adj
    assert first._nnz() == 2 * int(n_edges * 0.5)  # both directions of the kept edges
    net.calculate_loss(batch)
    assert net.pruned_adj is first  # same graph within an epoch
    net.train()  # RecBole's trainer: next epoch
    net.calculate_loss(batch)
    assert net.pruned_adj is not first
    net.eval()
    with torch.no_grad():
        pruned = torch.sparse.mm(net.pruned_adj, torch.ones(net.n_users + net.n_items, 1))
        full = torch.sparse.mm(net.norm_adj_matrix, torch.ones(net.n_users + net.n_items, 1))
        assert not torch.allclose(pruned, full)
        out = net.forward()
        net.edge_sampler, net.pruned_adj = None, None
        torch.testing.assert_close(net.forward().user, out.user)  # evaluation: the full graph


def test_alignment_term_is_info_nce_of_content_and_item_vectors(tiny: Path) -> None:
    net, train, _ = _paper_model(tiny, align_weight=0.3, align_temperature=0.5)
    batch = first_batch(net, train)
    net.train()
    *_, align = net.calculate_loss(batch)
    with torch.no_grad():
        out = net.forward()
    items = torch.unique(batch[net.ITEM_ID])
    items = items[(net.encoders["image"].mask | net.encoders["text"].mask)[items]]
    expected = 0.3 * info_nce_dense(out.item[items], out.content[items], 0.5)
    torch.testing.assert_close(align, expected)


def test_alignment_trains_the_gate_and_projections(tiny: Path) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", tiny, align_weight=1.0, content_scale=0.0, item_graph_k=0)
    batch = first_batch(net, train)
    total_loss(net.calculate_loss(batch)).backward()
    # content_scale 0, no item graph: content reaches the loss only through the alignment
    assert net.fusion_layer.gate.weight.grad.abs().sum() > 0
    assert all(e.projection.weight.grad.abs().sum() > 0 for e in net.encoders.values())
    net.zero_grad()
    net.align_weight = 0.0
    assert len(net.calculate_loss(batch)) == 2  # BPR and L2 only
    total_loss(net.calculate_loss(batch)).backward()
    assert net.fusion_layer.gate.weight.grad is None or net.fusion_layer.gate.weight.grad.abs().sum() == 0


def test_content_bpr_is_each_modality_ranking_the_triples_alone(tiny: Path) -> None:
    """``content_bpr_weight`` (FREEDOM's auxiliary loss): the BPR of the batch's triples scored by
    the user's final vector against each modality's projection, summed over modalities."""
    net, train, _ = _paper_model(tiny, content_bpr_weight=0.3)
    batch = first_batch(net, train)
    net.train()
    *_, aux = net.calculate_loss(batch)
    with torch.no_grad():
        out = net.forward()  # no edge dropout here: the loss's pass saw the same graph
    user, pos, neg = batch[net.USER_ID], batch[net.ITEM_ID], batch[net.NEG_ITEM_ID]
    u = out.user[user]
    expected = 0.3 * sum(
        -torch.log(1e-10 + torch.sigmoid((u * p[pos]).sum(1) - (u * p[neg]).sum(1))).mean()
        for p in net.project()[0]
    )
    torch.testing.assert_close(aux, expected)


def test_content_bpr_trains_the_projections_and_is_off_by_default(tiny: Path) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", tiny, content_bpr_weight=1.0, content_scale=0.0, item_graph_k=0)
    batch = first_batch(net, train)
    losses = net.calculate_loss(batch)
    assert len(losses) == 3
    total_loss(losses).backward()
    # content_scale 0, no item graph: content reaches the loss only through the content BPR
    assert all(e.projection.weight.grad.abs().sum() > 0 for e in net.encoders.values())
    default, _, train, *_ = build_model("RLMultimodalRec", tiny, item_graph_k=0)
    assert default.content_bpr_weight == 0 and len(default.calculate_loss(first_batch(default, train))) == 2


# ---------------------------------------------------------------------------- bad options
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"modalities": {}}, "--fusion=none"),
        ({"fusion": "image", "modalities": {"text": "tiny.text.npy"}}, "'image' entry"),
        ({"fusion": "bogus"}, "fusion='bogus'"),
        ({"gate_type": "matrix"}, "gate_type='matrix'"),
        # value checks come from the key table (recbole_rlmm/keys/)
        ({"item_graph_k": -1}, "item_graph_k=-1 .* it is not >= 0. Set item_graph_k to an integer >= 0"),
        ({"n_layers": 1.5}, "n_layers=1.5 .* it is not an integer"),
        ({"edge_dropout": 1.0}, "edge_dropout=1.0 .* it is not in .0, 1.. Set edge_dropout to a number in"),
    ],
)
def test_bad_model_options(tiny: Path, extra: dict[str, Any], message: str) -> None:
    with pytest.raises((FeatureFileError, ValueError), match=message.replace("(", r"\(")):
        build_model("RLMultimodalRec", tiny, **extra)
