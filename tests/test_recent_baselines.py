"""BM3, MGCN, LGMRec, SMORE and MENTOR: each model's equations against a dense hand computation
on a small generated dataset (forward pass and loss terms), items missing a modality, and
training through ``recbole-rlmm run`` and ``compare``.

What every plugin model must do (finite gradients, full_sort_predict == predict, checkpoints,
a 2-epoch run through RecBole's trainer) is checked in test_models.py, what every baseline must
do (one and three modalities, no features) in test_baselines.py.
"""

from __future__ import annotations

import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import build_model
from datagen import make_dataset
from reference import (
    first_batch,
    info_nce_dense,
    knn_dense,
    lightgcn_adjacency,
    lightgcn_mean,
    sym_norm_dense,
)

from recbole_rlmm.cli import main

RECENT = ["BM3", "MGCN", "LGMRec", "SMORE", "MENTOR"]


@pytest.fixture
def full(tmp_path: Path) -> Path:
    """Every item has both modalities (image 12-d, text 8-d)."""
    root = tmp_path / "full"
    make_dataset(root)
    return root


def _setup(model: str, root: Path, **extra: Any) -> tuple[Any, Any, torch.Tensor]:
    """The model in eval mode, its first training batch and the dense LightGCN adjacency."""
    net, _, train, *_ = build_model(model, root, **extra)
    assert not net.has_cold_items  # the dense references build graphs over every item
    adj = lightgcn_adjacency(train._dataset.inter_matrix(form="coo"), net.n_users, net.n_items)
    net.eval()
    return net, first_batch(net, train), adj


def _linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return x @ layer.weight.T + (layer.bias if layer.bias is not None else 0.0)


def _projected(encoder: Any) -> torch.Tensor:
    """T_m x_m, zero for items without the modality."""
    return _linear(encoder.projection, encoder.features) * encoder.mask[:, None]


def _batch(net: Any, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return batch[net.USER_ID], batch[net.ITEM_ID], batch[net.NEG_ITEM_ID]


def _bpr(u: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    return -F.logsigmoid((u * pos).sum(1) - (u * neg).sum(1)).mean()


def _id_lightgcn(net: Any, adj: torch.Tensor, n_layers: int) -> torch.Tensor:
    """The mean of LightGCN's layers of the ID embeddings (users then items)."""
    user, item = lightgcn_mean(adj, net.user_embedding.weight, net.item_id_embedding.weight, n_layers)
    return torch.cat([user, item])


# ---------------------------------------------------------------------------- run and compare
@pytest.mark.parametrize("model", RECENT)
def test_trains_through_the_run_command(tiny: Path, model: str, capsys: pytest.CaptureFixture) -> None:
    fast = ["--epochs=1", "--embedding_size=8", "--train_batch_size=128", "--state=ERROR", "--topk=[5,10,20]"]
    code = main(["run", "-m", model, "-d", "tiny", f"--data_path={tiny}", "--benchmark_filename=['train','valid','test']", *fast])
    assert code == 0
    assert f"{model} on tiny" in capsys.readouterr().out


def test_compare_trains_every_recent_baseline(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(
        ["compare", "-d", "tiny", "--models", *RECENT, "--seeds", "1", "--out", str(out),
         "--set", f"data_path={tiny}", "epochs=1", "embedding_size=8", "train_batch_size=128", "state=ERROR",
         "topk=[5,10,20]", "benchmark_filename=['train','valid','test']"]
    )
    assert code == 0
    for model in RECENT:
        record = json.loads((out / "runs" / f"{model}-1.json").read_text())
        assert 0.0 <= record["result"]["test_result"]["recall@20"] <= 1.0, model


# ---------------------------------------------------------------------------- BM3
def test_bm3_scores_predicted_lightgcn_vectors(full: Path) -> None:
    net, _, adj = _setup("BM3", full, n_layers=2)
    with torch.no_grad():
        user, item = lightgcn_mean(adj, net.user_embedding.weight, net.item_id_embedding.weight, 2)
        item = item + net.item_id_embedding.weight  # the ID embedding added again
        out = net.forward()
        torch.testing.assert_close(out.user, _linear(net.predictor, user))
        torch.testing.assert_close(out.item, _linear(net.predictor, item))


def test_bm3_loss_terms(full: Path) -> None:
    net, batch, adj = _setup("BM3", full, dropout=0.0, reg_weight=0.1, cl_weight=2.0)
    users, items, _ = _batch(net, batch)
    net.train()
    with torch.no_grad():
        rec, reg, align = net.calculate_loss(batch)
        h_u, h_i = lightgcn_mean(adj, net.user_embedding.weight, net.item_id_embedding.weight, net.n_layers)
        h_i = h_i + net.item_id_embedding.weight

        def one_minus_cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return 1 - (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1).mean()

        predict = net.predictor
        want_rec = one_minus_cos(_linear(predict, h_u[users]), h_i[items]) + one_minus_cos(_linear(predict, h_i[items]), h_u[users])
        want_reg = 0.1 * (h_u.norm() + h_i.norm()) / net.n_items
        want_align = 0.0
        for encoder in net.encoders.values():
            e = _projected(encoder)[items]
            want_align += one_minus_cos(_linear(predict, e), h_i[items]) + one_minus_cos(_linear(predict, e), e)
    torch.testing.assert_close(rec, want_rec)
    torch.testing.assert_close(reg, want_reg)
    torch.testing.assert_close(align, 2.0 * want_align)


def test_bm3_targets_carry_no_gradient(full: Path) -> None:
    """With f_p's weight zeroed, f_p(h) is a constant and no online path reaches the embeddings:
    any gradient left on them would have come through the (dropped-out) targets."""
    net, batch, _ = _setup("BM3", full, dropout=0.5, cl_weight=1.0, reg_weight=0.0)
    with torch.no_grad():
        net.predictor.weight.zero_()
    net.train()
    rec, _, align = net.calculate_loss(batch)
    (rec + align).backward()
    assert net.predictor.bias.grad.abs().sum() > 0  # the loss does train something
    for table in (net.user_embedding.weight, net.item_id_embedding.weight):
        assert table.grad is None or table.grad.abs().sum() == 0
    for encoder in net.encoders.values():  # T_m learns through f_p(T_m x) only
        assert encoder.projection.weight.grad is None or encoder.projection.weight.grad.abs().sum() == 0


# ---------------------------------------------------------------------------- MGCN / SMORE
def _views_dense(net: Any, adj: torch.Tensor, purified: dict[str, torch.Tensor], graphs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """E_x = [R^ h_x ; h_x], h_x = S_x^L purified_x, R^ the user-item block of ``adj``."""
    r_hat = adj[: net.n_users, net.n_users :]
    views = {}
    for x, p in purified.items():
        h = torch.linalg.matrix_power(graphs[x], net.n_layers) @ p
        views[x] = torch.cat([r_hat @ h, h])
    return views


def _gate(gate: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(_linear(gate[0], x))


def _mgcn_dense(net: Any, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MGCN's E_id and E_side, every item having every modality."""
    content = _id_lightgcn(net, adj, net.n_ui_layers)
    purified, graphs = {}, {}
    for m, enc in net.encoders.items():
        purified[m] = net.item_id_embedding.weight * _gate(net.purifiers[m], _projected(enc))
        graphs[m] = sym_norm_dense(knn_dense(enc.features, enc.mask, net.knn_k, weighted=True))
    views = _views_dense(net, adj, purified, graphs)
    q = net.query
    logits = torch.cat([_linear(q[2], torch.tanh(_linear(q[0], v))) for v in views.values()], dim=1)
    alpha = torch.softmax(logits, dim=1)
    common = sum(alpha[:, k : k + 1] * v for k, v in enumerate(views.values()))
    specific = [_gate(net.preferences[m], content) * (v - common) for m, v in views.items()]
    return content, (sum(specific) + common) / (len(views) + 1)


def test_mgcn_forward_is_the_papers_views_and_fuser(full: Path) -> None:
    net, _, adj = _setup("MGCN", full, n_layers=2)
    with torch.no_grad():
        content, side = _mgcn_dense(net, adj)
        out = net.forward()
    torch.testing.assert_close(torch.cat([out.user, out.item]), content + side, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.views["side"], side, rtol=1e-4, atol=1e-5)


def test_mgcn_item_missing_modalities_fuses_the_ones_it_has(tiny: Path, train_ids: dict[str, int]) -> None:
    net, _, _ = _setup("MGCN", tiny)
    with torch.no_grad():
        views = net.item_views()
        side = net.fuse(views, torch.zeros(net.n_users + net.n_items, net.embedding_size))
    n = net.n_users
    i3, i4 = n + train_ids["i3"], n + train_ids["i4"]  # i3 lacks image, i4 both
    assert views["image"][i3].abs().sum() == 0 and views["image"][i4].abs().sum() == 0
    # i3: attention 1 on text, so E_c = E_text and the text-specific part vanishes
    torch.testing.assert_close(side[i3], views["text"][i3] / 2)
    assert side[i4].abs().sum() == 0  # no modality: the ID view alone


@pytest.mark.parametrize("model", ["MGCN", "SMORE"])
def test_view_fusion_loss_terms(full: Path, model: str) -> None:
    net, batch, _ = _setup(model, full, dropout=0.0) if model == "SMORE" else _setup(model, full)
    users, pos, neg = _batch(net, batch)
    net.train()
    with torch.no_grad():
        bpr, reg, cl = net.calculate_loss(batch)
        out = net.forward()
        u, p, q = out.user[users], out.item[pos], out.item[neg]
        side, content = out.views["side"], out.views["id"]
        node = pos + net.n_users
        want_cl = info_nce_dense(side[node], content[node], 0.2) + info_nce_dense(side[users], content[users], 0.2)
    torch.testing.assert_close(bpr, _bpr(u, p, q))
    torch.testing.assert_close(reg, net.reg_weight * 0.5 * (u.pow(2).sum() + p.pow(2).sum() + q.pow(2).sum()) / len(users))
    torch.testing.assert_close(cl, net.cl_weight * want_cl)


def _spectrum_numpy(f: np.ndarray, w: np.ndarray) -> np.ndarray:
    d = f.shape[1]
    return np.fft.irfft(np.fft.rfft(f, axis=1, norm="ortho") * w, n=d, axis=1, norm="ortho")


def test_smore_spectrum_denoises_and_fuses_by_circular_convolution(full: Path) -> None:
    net, _, _ = _setup("SMORE", full)
    d = net.embedding_size
    with torch.no_grad():
        for p in net.filters.values():
            p.copy_(torch.tensor([1.0, 0.0]).expand_as(p))  # every filter 1 + 0j
        spectrum = net.spectrum()
        image, text = _projected(net.encoders["image"]), _projected(net.encoders["text"])
    torch.testing.assert_close(spectrum["image"], image, rtol=1e-4, atol=1e-5)
    # irFFT(rFFT(a) rFFT(b)) with orthonormal transforms = (a circularly convolved with b) / sqrt(d)
    conv = torch.stack([sum(image[:, j] * text[:, (k - j) % d] for j in range(d)) for k in range(d)], dim=1)
    torch.testing.assert_close(spectrum["fusion"], conv / math.sqrt(d), rtol=1e-4, atol=1e-5)


def test_smore_forward_is_the_papers_views_and_preferences(full: Path) -> None:
    net, _, adj = _setup("SMORE", full, image_knn_k=6, text_knn_k=4)
    with torch.no_grad():
        content = _id_lightgcn(net, adj, net.n_ui_layers)
        f = {m: _projected(enc).numpy() for m, enc in net.encoders.items()}
        w = {x: torch.view_as_complex(p).numpy() for x, p in net.filters.items()}
        spectra = {m: np.fft.rfft(v, axis=1, norm="ortho") for m, v in f.items()}
        conv = {m: _spectrum_numpy(v, w[m]) for m, v in f.items()}
        conv["fusion"] = np.fft.irfft(spectra["image"] * spectra["text"] * w["fusion"], n=net.embedding_size, axis=1, norm="ortho")
        purified = {x: net.item_id_embedding.weight * _gate(net.purifiers[x], torch.from_numpy(c).float()) for x, c in conv.items()}
        graphs = {
            m: sym_norm_dense(knn_dense(enc.features, enc.mask, k, weighted=True))
            for (m, enc), k in zip(net.encoders.items(), (6, 4), strict=True)
        }
        graphs["fusion"] = torch.maximum(graphs["image"], graphs["text"])  # max-pooling of the two
        views = _views_dense(net, adj, purified, graphs)
        parts = []
        for m in ("image", "text"):
            q = net.queries[m]
            attention = torch.softmax(_linear(q[2], torch.tanh(_linear(q[0], views["fusion"]))), dim=1)
            parts.append(_gate(net.preferences[m], content) * attention * views[m])
        parts.append(_gate(net.preferences["fusion"], content) * views["fusion"])
        side = sum(parts) / 3
        out = net.forward()
    torch.testing.assert_close(torch.cat([out.user, out.item]), content + side, rtol=1e-4, atol=1e-5)


def test_smore_fusion_graph_max_pools_the_modality_graphs(full: Path) -> None:
    net, _, _ = _setup("SMORE", full, image_knn_k=5, text_knn_k=3)
    dense = {x: g.to_dense() for x, g in net.item_graphs.items()}
    torch.testing.assert_close(dense["fusion"], torch.maximum(dense["image"], dense["text"]))
    assert (dense["image"] > 0).sum(1).max() == 5 and (dense["text"] > 0).sum(1).max() == 3


# ---------------------------------------------------------------------------- LGMRec
def test_lgmrec_forward_local_and_global_embeddings(full: Path) -> None:
    net, _, adj = _setup("LGMRec", full, n_hyper_layer=2)
    n = net.n_users
    r = (adj[:n, n:] > 0).float()  # the binary interaction matrix
    with torch.no_grad():
        cge = _id_lightgcn(net, adj, net.n_ui_layers)
        local, glob = cge.clone(), 0.0
        for m, enc in net.encoders.items():
            items = enc.features @ net.projections[m]
            users = (r @ items) / (r.sum(1, keepdim=True) + 1e-7)
            local += F.normalize(torch.linalg.matrix_power(adj, net.n_mm_layers) @ torch.cat([users, items]))
            item_h, user_h = net.memberships(m)  # eval: the same seeded draw every time
            torch.testing.assert_close(item_h, net.memberships(m)[0])
            torch.testing.assert_close(item_h.sum(1), torch.ones(net.n_items) * enc.mask)
            e_i = cge[n:]
            for _ in range(2):
                latent = item_h.T @ e_i
                e_i, e_u = item_h @ latent, user_h @ latent
            glob = glob + torch.cat([e_u, e_i])
        want = local + net.alpha * F.normalize(glob)
        out = net.forward()
    torch.testing.assert_close(torch.cat([out.user, out.item]), want, rtol=1e-4, atol=1e-5)


def test_lgmrec_memberships_follow_the_hyperedge_logits(full: Path) -> None:
    """H = softmax((X V + g) / tau): the Gumbel draw g is the same for any V, so scaling the
    logits' differences by c changes the log-ratios of H by exactly c times theirs / tau."""
    net, _, _ = _setup("LGMRec", full)
    with torch.no_grad():
        item_h, _ = net.memberships("text")
        logits = net.encoders["text"].features @ net.hyperedges["text"]
        noise = torch.log(item_h) * 0.2 - logits  # g, up to a per-row constant
        net.hyperedges["text"].mul_(3.0)
        item_h3, _ = net.memberships("text")
        want = torch.softmax((3.0 * logits + noise) / 0.2, dim=1)
    rows = net.encoders["text"].mask  # the padding item (no features) is in no hyperedge
    assert rows.sum() == net.n_items - 1
    torch.testing.assert_close(item_h3[rows], want[rows], rtol=1e-4, atol=1e-6)


def test_lgmrec_loss_terms(full: Path) -> None:
    net, batch, _ = _setup("LGMRec", full, keep_rate=1.0, cl_weight=0.5, reg_weight=0.01)
    users, pos, neg = _batch(net, batch)
    net.train()
    with torch.no_grad():
        torch.manual_seed(3)
        bpr, hcl, reg = net.calculate_loss(batch)
        torch.manual_seed(3)  # the same Gumbel draws
        out = net.forward()
        u, p, q = out.user[users], out.item[pos], out.item[neg]
        hu, hi = out.views["hyper_user"], out.views["hyper_item"]

        def triple(a: torch.Tensor, every: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            sim = torch.exp(F.normalize(a, dim=1) @ F.normalize(every, dim=1).T / 0.2)
            return -torch.log(sim[torch.arange(len(index)), index] / sim.sum(1)).sum()

        want_hcl = triple(hu[0][users], hu[1], users) + triple(hi[0][pos], hi[1], pos)
    torch.testing.assert_close(bpr, _bpr(u, p, q))
    torch.testing.assert_close(hcl, 0.5 * want_hcl)
    torch.testing.assert_close(reg, 0.01 * (u.norm() + p.norm() + q.norm()) / len(users))


def test_lgmrec_items_missing_a_modality_join_none_of_its_hyperedges(tiny: Path, train_ids: dict[str, int]) -> None:
    net, _, _ = _setup("LGMRec", tiny)
    with torch.no_grad():
        image_h, _ = net.memberships("image")
    assert image_h[train_ids["i3"]].abs().sum() == 0 and image_h[train_ids["i4"]].abs().sum() == 0
    torch.testing.assert_close(image_h[train_ids["i5"]].sum(), torch.tensor(1.0))


# ---------------------------------------------------------------------------- MENTOR
def _mentor_gcn_dense(gcn: Any, features: torch.Tensor, mask: torch.Tensor | None, adj: torch.Tensor, n_layers: int) -> torch.Tensor:
    content = _linear(gcn.mlp_out, F.leaky_relu(_linear(gcn.mlp, features)))
    if mask is not None:
        content = content * mask[:, None]
    x = F.normalize(torch.cat([gcn.preference, content]), dim=1)
    return sum(torch.linalg.matrix_power(adj, k) @ x for k in range(n_layers + 1))


def test_mentor_forward_fuses_modality_gcns_with_user_weights(full: Path) -> None:
    net, _, adj = _setup("MENTOR", full)
    n = net.n_users
    with torch.no_grad():
        masks = {m: enc.mask for m, enc in net.encoders.items()}
        graph = 0.1 * sym_norm_dense(knn_dense(net.encoders["image"].features, masks["image"], net.knn_k, False))
        graph = graph + 0.9 * sym_norm_dense(knn_dense(net.encoders["text"].features, masks["text"], net.knn_k, False))
        reps = [_mentor_gcn_dense(net.gcns[m], enc.features, enc.mask, adj, 2) for m, enc in net.encoders.items()]
        users = torch.cat([net.weight_u[:, k] * r[:n] for k, r in enumerate(reps)], dim=1)
        items = torch.cat([r[n:] for r in reps], dim=1)
        items = items + graph @ items
        out = net.forward()
    torch.testing.assert_close(out.user, users, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.item, items, rtol=1e-4, atol=1e-5)


def test_mentor_perturbed_layers_move_by_the_noise_size(full: Path) -> None:
    """One perturbed layer: h' = h + sign(h) * normalize(U(0, 1)) * 0.1, so every row whose
    propagated vector has no zero entry moves by exactly 0.1."""
    net, _, adj = _setup("MENTOR", full)
    gcn, enc = net.gcns["text"], net.encoders["text"]
    with torch.no_grad():
        x = _mentor_gcn_dense(gcn, enc.features, enc.mask, adj, 0)
        clean = gcn(enc.features, enc.mask, net.norm_adj, 1)
        noisy = gcn(enc.features, enc.mask, net.norm_adj, 1, noise=0.1)
    rows = (clean - x).ne(0).all(dim=1)
    assert rows.sum() > net.n_items  # every user and item with training interactions
    moved = (noisy - clean).norm(dim=1)[rows]
    torch.testing.assert_close(moved, torch.full_like(moved, 0.1))


def test_mentor_loss_terms(full: Path) -> None:
    net, batch, _ = _setup("MENTOR", full, reg_weight=0.01, align_weight=0.5, mask_weight_g=0.2, temp=0.4)
    users, pos, neg = _batch(net, batch)
    net.train()
    with torch.no_grad():
        torch.manual_seed(5)
        bpr, reg, align, graph_cl = net.calculate_loss(batch)
        torch.manual_seed(5)  # the same perturbation noise
        out = net.forward()
        u = out.user[users]
        want_bpr = -torch.log2(torch.sigmoid((u * out.item[pos]).sum(1) - (u * out.item[neg]).sum(1))).mean()
        want_reg = sum(net.gcns[m].preference[users].pow(2).mean() for m in net.modalities) + net.weight_u.pow(2).mean()
        n = net.n_users
        real = [k for k in range(n + net.n_items) if k not in (0, n)]
        levels = [out.views[x][real] for x in ("fused", "id", "image", "text")]
        want_align = sum(
            (a.var() - b.var()).abs() + (a.mean() - b.mean()).abs() for a, b in combinations(levels, 2)
        )
        n1, n2 = out.views["noisy1"], out.views["noisy2"]
        want_cl = info_nce_dense(n1[1:n], n2[1:n], 0.4) + info_nce_dense(n1[n + 1 :], n2[n + 1 :], 0.4)
    assert len(list(combinations(levels, 2))) == 6
    torch.testing.assert_close(bpr, want_bpr)
    torch.testing.assert_close(reg, 0.01 * want_reg)
    torch.testing.assert_close(align, 0.5 * want_align)
    torch.testing.assert_close(graph_cl, 0.2 * want_cl)


# ---------------------------------------------------------------------------- shared
@pytest.fixture
def train_ids(tiny: Path) -> dict[str, int]:
    """Item token -> RecBole id in the ``tiny`` dataset."""
    _, _, train, *_ = build_model("BPR", tiny)
    return {f"i{k}": int(train._dataset.token2id(train._dataset.iid_field, f"i{k}")) for k in range(40)}
