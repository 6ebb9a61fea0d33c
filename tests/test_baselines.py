"""Model-specific checks of the multimodal baselines VBPR, MMGCN, LATTICE and FREEDOM (the
checks every baseline shares run for BM3, MGCN, LGMRec, SMORE and MENTOR too; their own are in
test_recent_baselines.py).

Generic checks (finite loss and gradients, full_sort_predict == predict, checkpoint
round trip, a 2-epoch run) live in test_models.py for every plugin model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import build_model
from datagen import make_dataset
from recbole.data.interaction import Interaction
from reference import first_batch as _batch
from reference import knn_dense as _knn
from reference import sym_norm_dense as _sym_norm
from reference import total_loss

from recbole_rlmm.data.features import FeatureFileError

BASELINES = ["VBPR", "MMGCN", "LATTICE", "FREEDOM", "BM3", "MGCN", "LGMRec", "SMORE", "MENTOR"]
MISSING = {"image": [3, 4], "text": [4, 5]}  # i3 lacks image, i4 both, i5 text


def _iid(train: Any, token: str) -> int:
    return int(train._dataset.token2id(train._dataset.iid_field, token))


# ---------------------------------------------------------------------------- all baselines
@pytest.mark.parametrize("model", BASELINES)
def test_dataset_without_features_is_refused(tmp_path: Path, model: str) -> None:
    root = tmp_path / "data"
    make_dataset(root)
    with pytest.raises(FeatureFileError, match="`modalities`") as err:
        build_model(model, root, modalities={})
    assert model in str(err.value)


@pytest.mark.parametrize("model", BASELINES)
@pytest.mark.parametrize(
    "dims",
    [{"text": 6}, {"image": 7, "text": 5, "audio": 3}],
    ids=["one-modality", "three-modalities"],
)
def test_any_number_of_modalities_trains_and_ranks(
    tmp_path: Path, model: str, dims: dict[str, int]
) -> None:
    root = tmp_path / "data"
    make_dataset(root, dims=dims, missing={"text": [2, 3]})
    net, _, train, *_ = build_model(model, root)
    assert sorted(net.modalities) == sorted(dims)
    loss = total_loss(net.calculate_loss(_batch(net, train)))
    loss.backward()
    assert torch.isfinite(loss).all()
    net.eval()
    with torch.no_grad():
        users = torch.arange(1, net.n_users, device=net.device)
        scores = net.full_sort_predict(Interaction({net.USER_ID: users}))
    assert scores.shape == ((net.n_users - 1) * net.n_items,) and torch.isfinite(scores).all()


# ---------------------------------------------------------------------------- VBPR
def test_vbpr_item_is_id_embedding_and_projected_concatenated_features(tiny: Path) -> None:
    net, config, *_ = build_model("VBPR", tiny)
    d = config["embedding_size"]
    image, text = net.encoders["image"].features, net.encoders["text"].features
    assert net.item_linear.in_features == image.shape[1] + text.shape[1]
    net.eval()
    user_all, item_all = net.forward()[:2]
    assert user_all.shape == (net.n_users, 2 * d) and item_all.shape == (net.n_items, 2 * d)
    torch.testing.assert_close(item_all[:, :d], net.i_embedding)
    torch.testing.assert_close(item_all[:, d:], net.item_linear(torch.cat([image, text], dim=1)))


# ---------------------------------------------------------------------------- MMGCN
def test_mmgcn_has_one_branch_per_modality_and_averages_them(tiny: Path) -> None:
    net, *_ = build_model("MMGCN", tiny, dim_latent=4)
    assert list(net.branches) == ["image", "text"]
    net.eval()
    with torch.no_grad():
        before = net.branch_outputs()
        user_all, item_all = net.forward()[:2]
        torch.testing.assert_close(
            torch.cat([user_all, item_all]), (before["image"] + before["text"]) / 2
        )
        net.encoders["text"].features.mul_(-1.0)  # text enters the text branch only
        after = net.branch_outputs()
    torch.testing.assert_close(after["image"], before["image"])
    assert not torch.allclose(after["text"], before["text"])


def test_mmgcn_ids_and_preferences_stay_at_their_random_draws_and_loss_is_bpr(tiny: Path) -> None:
    """As in the authors' code: e_id and P_m are never trained (persistent buffers, saved with
    the checkpoint), the layers are; the loss is BPR on the averaged branches, by hand."""
    net, _, train, *_ = build_model("MMGCN", tiny, dim_latent=4)
    names = {n for n, _ in net.named_parameters()}
    assert "id_embedding" not in names and not any(n.endswith("preference") for n in names)
    state = net.state_dict()
    assert "id_embedding" in state and {f"branches.{m}.preference" for m in net.branches} <= set(state)
    fixed = {k: v.clone() for k, v in state.items() if k == "id_embedding" or k.endswith("preference")}
    trained = {n: p.detach().clone() for n, p in net.named_parameters()}
    batch = _batch(net, train)
    net.train()
    loss = total_loss(net.calculate_loss(batch))
    with torch.no_grad():
        rep = torch.stack(list(net.branch_outputs().values())).mean(dim=0)
        users = rep[batch[net.USER_ID]]
        pos = rep[net.n_users + batch[net.ITEM_ID]]
        neg = rep[net.n_users + batch[net.NEG_ITEM_ID]]
        diff = (users * pos).sum(1) - (users * neg).sum(1)
        expected = -torch.log(1e-10 + torch.sigmoid(diff)).mean()
    torch.testing.assert_close(loss.detach(), expected)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        total_loss(net.calculate_loss(batch)).backward()
        optimizer.step()
    after = net.state_dict()
    for key, value in fixed.items():
        torch.testing.assert_close(after[key], value)
    assert any(not torch.equal(p, trained[n]) for n, p in net.named_parameters())


# ---------------------------------------------------------------------------- LATTICE
@pytest.mark.parametrize("lambda_coeff", [0.0, 0.9, 1.0])
def test_lattice_item_graph_mixes_learned_and_frozen_knn_graphs(
    tiny: Path, lambda_coeff: float
) -> None:
    net, config, *_ = build_model("LATTICE", tiny, lambda_coeff=lambda_coeff)
    k, names = config["knn_k"], ["image", "text"]
    masks = [net.encoders[m].mask for m in names]
    net.eval()
    with torch.no_grad():
        w = torch.softmax(net.modal_weight, dim=0)
        # learned: kNN of the projections, mixed, then normalised (MMRec)
        projected = [
            _knn(net.encoders[m].projection(net.encoders[m].features), mk, k, True)
            for m, mk in zip(names, masks, strict=True)
        ]
        learned = _sym_norm(w[0] * projected[0] + w[1] * projected[1])
        # frozen: normalised kNN of raw features, mixed with each item's weights
        # re-normalised over the modalities it has
        frozen = [
            _sym_norm(_knn(net.encoders[m].features, mk, k, True))
            for m, mk in zip(names, masks, strict=True)
        ]
        share = torch.stack([w[i] * masks[i].float() for i in range(2)])
        share = share / share.sum(dim=0).clamp_min(1e-12)
        original = share[0][:, None] * frozen[0] + share[1][:, None] * frozen[1]
        expected = (1 - lambda_coeff) * learned + lambda_coeff * original
        torch.testing.assert_close(net.item_graph().to_dense(), expected)


def test_lattice_learned_graph_trains_in_first_batch_of_each_epoch(tiny: Path) -> None:
    net, _, train, *_ = build_model("LATTICE", tiny)
    batch = _batch(net, train)

    def grads() -> tuple[float, float]:
        net.zero_grad(set_to_none=False)
        total_loss(net.calculate_loss(batch)).backward()
        trs = sum(float(e.projection.weight.grad.abs().sum()) for e in net.encoders.values())
        return trs, float(net.modal_weight.grad.abs().sum())

    net.train()
    first = grads()
    assert first[0] > 0 and first[1] > 0  # graph rebuilt with gradients
    second = grads()
    assert second[0] == 0  # reused, detached: no gradient into the projections
    net.eval()
    net.train()  # what RecBole's trainer does at the next epoch start
    assert grads()[0] > 0


# ---------------------------------------------------------------------------- FREEDOM
@pytest.mark.parametrize("dropout", [0.5, 0.8, 0.9])
def test_freedom_pruning_keeps_the_requested_share_renormalised(tiny: Path, dropout: float) -> None:
    net, *_ = build_model("FREEDOM", tiny, dropout=dropout)
    n_edges = net.edge_sampler.edges.shape[1]
    net.pre_epoch()
    adj = net.masked_adj.coalesce()
    n_kept = int(n_edges * (1 - dropout))
    assert adj._nnz() == 2 * n_kept  # both directions
    dense = adj.to_dense()
    torch.testing.assert_close(dense, dense.T)
    binary = (dense > 0).float()
    deg = binary.sum(dim=1)
    rows, cols = binary.nonzero(as_tuple=True)
    torch.testing.assert_close(dense[rows, cols], (deg[rows] * deg[cols]).pow(-0.5))
    # evaluation uses the full graph
    net.eval()
    with torch.no_grad():
        for got, want in zip(net.forward()[:2], net.forward(net.norm_adj)[:2], strict=True):
            torch.testing.assert_close(got, want)


def test_freedom_pruning_drops_high_degree_edges_more_often(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_dataset(root, n_users=80, n_items=60, per_user=12)
    net, *_ = build_model("FREEDOM", root, dropout=0.7)
    users, items = net.edge_sampler.edges
    n = net.n_users
    kept = torch.zeros(users.shape[0])
    torch.manual_seed(0)
    for _ in range(300):
        net.train()  # a new epoch: a new draw
        net.start_epoch()
        index = net.masked_adj.coalesce().indices()
        forward = index[:, index[0] < n]
        hit = {(int(u), int(i) - n) for u, i in forward.T}
        kept += torch.tensor(
            [(int(u), int(i)) in hit for u, i in zip(users, items, strict=True)]
        ).float()
    deg_u = torch.bincount(users, minlength=net.n_users).float()
    deg_i = torch.bincount(items, minlength=net.n_items).float()
    product = deg_u[users] * deg_i[items]
    low, high = product <= product.quantile(0.25), product >= product.quantile(0.75)
    keep_rate = kept / 300
    assert keep_rate.mean() == pytest.approx(int(0.3 * len(users)) / len(users))
    # sampling noise of these means is ~0.005; the degree effect here is ~0.09
    assert keep_rate[low].mean() > keep_rate[high].mean() + 0.05


def test_freedom_item_graph_is_frozen_knn_of_raw_features(tiny: Path) -> None:
    net, config, train, *_ = build_model("FREEDOM", tiny)
    k, w_image = config["knn_k"], config["mm_image_weight"]
    assert not net.mm_adj.requires_grad
    assert all("mm_adj" not in name for name in net.state_dict())
    before = net.mm_adj.to_dense().clone()
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    total_loss(net.calculate_loss(_batch(net, train))).backward()
    optimizer.step()
    torch.testing.assert_close(net.mm_adj.to_dense(), before)
    # every item with both modalities: w_image x image kNN row + (1 - w_image) x text kNN row
    image, text = net.encoders["image"], net.encoders["text"]
    both = image.mask & text.mask
    image = _sym_norm(_knn(image.features, image.mask, k, weighted=False))
    text = _sym_norm(_knn(text.features, text.mask, k, weighted=False))
    torch.testing.assert_close(before[both], (w_image * image + (1 - w_image) * text)[both])


@pytest.mark.parametrize("model", ["LATTICE", "FREEDOM"])
def test_items_missing_a_modality_get_no_knn_neighbours(tiny: Path, model: str) -> None:
    net, _, train, *_ = build_model(model, tiny)
    i3, i4 = _iid(train, "i3"), _iid(train, "i4")  # i3 lacks image, i4 lacks both
    weighted = model == "LATTICE"
    net.eval()
    with torch.no_grad():
        graph = net.original_graph().to_dense() if weighted else net.mm_adj.to_dense()
        text_enc = net.encoders["text"]
        text = _sym_norm(_knn(text_enc.features, text_enc.mask, net.knn_k, weighted))
        if weighted:
            learned = net.learned_graph().to_dense()
            assert learned[i4].abs().sum() == 0 and learned[:, i4].abs().sum() == 0
    assert graph[i4].abs().sum() == 0 and graph[:, i4].abs().sum() == 0
    # i3's row is its whole text kNN row, and only items with text point at it
    torch.testing.assert_close(graph[i3], text[i3])
    assert net.encoders["text"].mask[graph[:, i3] > 0].all()
