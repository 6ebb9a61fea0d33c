r"""MGCN: multi-view graph convolutional network for multimedia recommendation.

Reference: Penghang Yu, Zhiyi Tan, Guanming Lu and Bing-Kun Bao, "Multi-View Graph
Convolutional Network for Multimedia Recommendation", ACM MM 2023 (arXiv:2308.03588).
Implementation follows MMRec (enoche/MMRec, ``src/models/mgcn.py``, from the authors'
demonph10/MGCN):

* frozen item-item graph per modality: each item's ``knn_k`` most cosine-similar items
  (itself included) of the raw features, weighted by the similarity, S_m = D^-1/2 S D^-1/2;
* behaviour-guided purifier: e~_m = e_item * sigmoid(W_m (T_m x_m) + b_m), T_m a linear map
  of the raw features to d;
* user-item view: LightGCN (``n_ui_layers`` steps, mean of layers) on D^-1/2 A D^-1/2 gives
  E_id (users and items);
* item-item view per modality: h_m = S_m^L e~_m (``n_layers`` steps), users
  u_m = R^ h_m with R^ the user-item block of D^-1/2 A D^-1/2; E_m = [u_m ; h_m];
* behaviour-aware fuser: alpha = softmax_m(q(E_m)), q(x) = w^T tanh(W x + b) (one scalar per
  node and modality); common E_c = sum_m alpha_m E_m; specific E~_m = E_m - E_c, weighted by
  the user/item preference P_m = sigmoid(W'_m E_id + b'_m);
  E_side = (sum_m P_m * E~_m + E_c) / (M + 1);
* final = E_id + E_side; score = dot product;
* loss: BPR + ``reg_weight`` x (||u||^2 + ||i+||^2 + ||i-||^2) / (2 B)
  + ``cl_weight`` x [InfoNCE(E_side, E_id) of the batch's positive items + of its users],
  InfoNCE at temperature 0.2 (fixed in the reference code).

A node lacking modality m (an item without its features) has no E_m: the fuser's softmax and
the mean run over the modalities the node has (every user has them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from recbole_rlmm.graph import dedup_interactions, norm_adj_matrix, user_item_block
from recbole_rlmm.graph.sparse import sparse_mm
from recbole_rlmm.model.abstract import EmbeddingRecommender, Embeddings
from recbole_rlmm.model.layers import (
    bpr_loss,
    dot_scores,
    info_nce,
    lightgcn_propagate,
    propagate,
    sigmoid_gate,
)

#: InfoNCE temperature of the view-alignment loss (MGCN's and SMORE's code fix it at 0.2).
TEMPERATURE = 0.2


def node_masks(item_masks: Sequence[torch.Tensor], n_users: int) -> torch.Tensor:
    """(M, n_users + n_items) bool: which nodes have each modality (users have them all)."""
    users = torch.ones(n_users, dtype=torch.bool, device=item_masks[0].device)
    return torch.stack([torch.cat([users, m]) for m in item_masks])


def masked_softmax(logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 0 restricted to ``present`` entries; 0 elsewhere (and for a column
    with nothing present)."""
    logits = logits.masked_fill(~present, float("-inf")).masked_fill(~present.any(dim=0, keepdim=True), 0.0)
    return torch.softmax(logits, dim=0) * present


def masked_mean(views: Sequence[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
    """Mean of ``views`` (each (n, d)) over the ones a node has (``present``: (V, n) bool)."""
    stacked = torch.stack(list(views)) * present.unsqueeze(2)
    return stacked.sum(dim=0) / present.sum(dim=0).clamp_min(1).unsqueeze(1)


class ViewFusionRecommender(EmbeddingRecommender):
    """What MGCN and SMORE share: E_id from LightGCN, a side vector E_side fused from item-item
    views (:meth:`item_views`, :meth:`fuse`), final = E_id + E_side, and MGCN's loss."""

    norm_adj: torch.Tensor
    n_ui_layers: int
    reg_weight: float
    cl_weight: float

    def item_views(self) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fuse(self, views: dict[str, torch.Tensor], content: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self) -> Embeddings:
        """Final vectors E_id + E_side; ``views`` holds E_id and E_side (users first), which
        the InfoNCE aligns."""
        user_id, item_id = lightgcn_propagate(
            self.norm_adj, self.user_embedding.weight, self.item_id_embedding.weight, self.n_ui_layers
        )
        content = torch.cat([user_id, item_id])
        side = self.fuse(self.item_views(), content)
        user_all, item_all = torch.split(content + side, [self.n_users, self.n_items])
        return Embeddings(user_all, item_all, views={"id": content, "side": side})

    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, ...]:
        """(BPR, reg_weight x L2 / (2 B), cl_weight x InfoNCE of the item and user views)."""
        user, pos_item, neg_item = self.begin_batch(interaction)
        out = self.forward()
        u_e, pos_e, neg_e = out.user[user], out.item[pos_item], out.item[neg_item]
        bpr = bpr_loss(dot_scores(u_e, pos_e), dot_scores(u_e, neg_e))
        regularizer = 0.5 * (u_e.pow(2).sum() + pos_e.pow(2).sum() + neg_e.pow(2).sum()) / len(user)
        pos_node = pos_item + self.n_users
        side, content = out.views["side"], out.views["id"]
        cl = info_nce(side[pos_node], content[pos_node], TEMPERATURE) + info_nce(side[user], content[user], TEMPERATURE)
        return bpr, self.reg_weight * regularizer, self.cl_weight * cl


class MGCN(ViewFusionRecommender):
    """LightGCN plus per-modality item-item views, purified by behaviour and fused by attention."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size: int = config["embedding_size"]  # d of ID embeddings and of T_m outputs
        self.knn_k: int = config["knn_k"]  # neighbours per item in the frozen graphs (itself included)
        self.n_layers: int = config["n_layers"]  # item-item graph steps
        self.n_ui_layers: int = config["n_ui_layers"]  # LightGCN steps
        self.reg_weight: float = config["reg_weight"]  # L2 on the batch's final vectors
        self.cl_weight: float = config["cl_weight"]  # weight of the InfoNCE between views (MMRec: cl_loss)
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard per modality

        # load dataset info
        modal = self.load_features(config, dataset)
        self.modalities = modal.names
        d = self.embedding_size

        # define layers
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        self.encoders = self.modality_encoders(modal, self.modalities, self.feature_norm, d)  # T_m
        self.purifiers = nn.ModuleDict({m: sigmoid_gate(d) for m in self.modalities})  # W_m, b_m
        self.preferences = nn.ModuleDict({m: sigmoid_gate(d) for m in self.modalities})  # W'_m, b'_m
        self.query = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False))  # q

        # generate intermediate data
        interactions = dedup_interactions(dataset.inter_matrix(form="coo"))
        self.norm_adj = norm_adj_matrix(interactions, self.n_users, self.n_items).to(self.device)
        self.R = user_item_block(self.norm_adj, self.n_users, self.n_items)
        encoders = [self.encoders[m] for m in self.modalities]
        training, scoring = self.knn_graphs([e.features for e in encoders], [e.mask for e in encoders], self.knn_k, weighted=True)
        self.item_graphs = [g.to_sparse().to(self.device) for g in training]  # S_m over warm items
        self.scoring_item_graphs = (
            self.item_graphs if scoring is training else [g.to_sparse().to(self.device) for g in scoring]
        )

        # parameters initialization (MMRec: xavier-uniform ID embeddings, PyTorch's default layers)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)

    # ------------------------------------------------------------------ views
    def item_views(self) -> dict[str, torch.Tensor]:
        """E_m = [R^ h_m ; h_m], h_m = S_m^L (e_item * sigmoid(W_m T_m x_m + b_m))."""
        graphs = self.item_graphs if self.training else self.scoring_item_graphs
        views = {}
        for m, graph in zip(self.modalities, graphs, strict=True):
            purified = self.item_id_embedding.weight * self.purifiers[m](self.encoders[m]())
            h = propagate(graph, purified, self.n_layers) * self.encoders[m].mask.unsqueeze(1)
            views[m] = torch.cat([sparse_mm(self.R, h), h])
        return views

    def fuse(self, views: dict[str, torch.Tensor], content: torch.Tensor) -> torch.Tensor:
        """E_side = (sum_m P_m * (E_m - E_c) + E_c) / (M + 1), E_c = sum_m alpha_m E_m."""
        present = node_masks([self.encoders[m].mask for m in self.modalities], self.n_users)
        stacked = torch.stack(list(views.values()))  # (M, n, d)
        alpha = masked_softmax(self.query(stacked).squeeze(2), present)
        common = (alpha.unsqueeze(2) * stacked).sum(dim=0)
        specific = [self.preferences[m](content) * (views[m] - common) for m in self.modalities]
        everyone = torch.ones_like(present[:1])
        return masked_mean([*specific, common], torch.cat([present, everyone]))
