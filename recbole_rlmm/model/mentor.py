r"""MENTOR: multi-level self-supervised learning for multimodal recommendation.

Reference: Jinfeng Xu, Zheyu Chen, Shuo Yang, Jinze Li, Hewei Wang and Edith C.-H. Ngai,
"MENTOR: Multi-level Self-supervised Learning for Multimodal Recommendation", AAAI 2025
(arXiv:2402.19407). Implementation follows the authors' code (Jinfeng-Xu/MENTOR,
``src/models/mentor.py``), with its torch_geometric convolution written as a sparse product:

* one GCN per modality m and one for the item IDs: x = normalize([P ; MLP(X)]) (P a learned
  user preference, MLP: X -> 4d -> d with a LeakyReLU between, X the modality's raw features
  or, for the IDs, a learned item table), x^(l+1) = A x^(l) with A = D^-1/2 A D^-1/2 (no
  self-loops), ``n_ui_layers`` steps, r_m = x^(0) + x^(1) + ... (sum of layers);
* fused representation: users [w_u1 r_1,u ; ... ; w_uM r_M,u] (w_u: learned per-user modality
  weights, initialised by a softmax), items [r_1,i ; ... ; r_M,i] + S^L [r_1,i ; ... ; r_M,i],
  S FREEDOM's frozen item graph (binary cosine kNN of the raw features, ``knn_k``, self
  included, D^-1/2 S D^-1/2, image weighted ``mm_image_weight``), L = ``n_mm_layers``;
  score = dot product;
* the same assembly of the ID GCN (guide, [r_id ; ... ; r_id]) and of each modality alone
  ([r_m ; ... ; r_m]) gives the alignment views;
* graph perturbation: two further GCNs per modality (their own parameters) add
  sign(h) * normalize(U(0, 1)) * 0.1 after every layer (SimGCL's noise); assembled like the
  fused representation (with w_u);
* loss: BPR / ln 2 (the reference's log2) + ``reg_weight`` x (sum_m mean P_m,u^2 + mean w^2)
  + ``align_weight`` x sum over pairs of {fused, guide, each modality} of
  |var_a - var_b| + |mean_a - mean_b| (over all user and item vectors; the multilevel
  cross-modal alignment) + ``mask_weight_g`` x [InfoNCE(noisy 1, noisy 2) of all users + of all
  items] at temperature ``temp``.

The padding user and item of RecBole (id 0) take no part in the full-table terms.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recbole_rlmm.graph import dedup_interactions, mix_item_graphs, norm_adj_matrix
from recbole_rlmm.graph.sparse import sparse_mm
from recbole_rlmm.model.abstract import EmbeddingRecommender, Embeddings
from recbole_rlmm.model.freedom import fixed_modality_weights
from recbole_rlmm.model.layers import bpr_loss, dot_scores, info_nce, propagate

#: Size of SimGCL's noise in the perturbed GCNs (fixed in MENTOR's code).
NOISE = 0.1
#: The ID view's name (the guide of the alignment).
GUIDE = "id"


class MentorGCN(nn.Module):
    """One MENTOR GCN: x = normalize([P ; MLP(X)]), r = sum of ``n_layers`` + 1 layers."""

    def __init__(self, n_users: int, feat_dim: int, dim: int) -> None:
        super().__init__()
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, dim)))  # P
        self.mlp = nn.Linear(feat_dim, 4 * dim)
        self.mlp_out = nn.Linear(4 * dim, dim)

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor | None, adj: torch.Tensor, n_layers: int, noise: float = 0.0
    ) -> torch.Tensor:
        """r = sum_l x^(l) over the user-item graph ``adj`` (users first); ``noise`` > 0 adds
        sign(h) * normalize(U(0, 1)) * noise to every propagated layer."""
        content = self.mlp_out(F.leaky_relu(self.mlp(features)))
        if mask is not None:  # items lacking the modality carry no content
            content = content * mask.unsqueeze(1)
        x = F.normalize(torch.cat([self.preference, content]))
        out, h = x, x
        for _ in range(n_layers):
            h = sparse_mm(adj, h)
            if noise > 0:
                h = h + torch.sign(h) * F.normalize(torch.rand_like(h), dim=-1) * noise
            out = out + h
        return out


def distribution_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|var(a) - var(b)| + |mean(a) - mean(b)| over all entries (MENTOR's alignment)."""
    return (torch.var(a) - torch.var(b)).abs() + (torch.mean(a) - torch.mean(b)).abs()


class MENTOR(EmbeddingRecommender):
    """Per-modality GCNs fused with learned user weights, trained with multilevel alignment."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size: int = config["embedding_size"]  # d of each GCN's output
        self.knn_k: int = config["knn_k"]  # neighbours per item in the frozen item graph
        self.mm_image_weight: float = config["mm_image_weight"]  # weight of the image kNN graph
        self.n_mm_layers: int = config["n_mm_layers"]  # item-graph steps
        self.n_ui_layers: int = config["n_ui_layers"]  # GCN steps on the user-item graph
        self.reg_weight: float = config["reg_weight"]  # L2 on the batch's preferences and on w
        self.align_weight: float = config["align_weight"]  # weight of the distribution alignment
        self.mask_weight_g: float = config["mask_weight_g"]  # weight of the perturbed-graph InfoNCE
        self.temp: float = config["temp"]  # its temperature
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard per modality

        # load dataset info
        modal = self.load_features(config, dataset)
        self.modalities = modal.names
        d = self.embedding_size

        # define layers
        self.encoders = self.modality_encoders(modal, self.modalities, self.feature_norm)
        dims = {m: self.encoders[m].in_dim for m in self.modalities}
        self.gcns = nn.ModuleDict({m: MentorGCN(self.n_users, dims[m], d) for m in self.modalities})
        self.noisy_gcns = nn.ModuleList(
            nn.ModuleDict({m: MentorGCN(self.n_users, dims[m], d) for m in self.modalities}) for _ in range(2)
        )
        self.id_feat = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.n_items, d)))
        self.id_gcn = MentorGCN(self.n_users, d, d)
        # w_u: per-user modality weights (MENTOR: softmax of a xavier-normal draw, then free)
        weight_u = nn.init.xavier_normal_(torch.empty(self.n_users, len(self.modalities), 1))
        self.weight_u = nn.Parameter(torch.softmax(weight_u, dim=1))

        # generate intermediate data
        interactions = dedup_interactions(dataset.inter_matrix(form="coo"))
        self.norm_adj = norm_adj_matrix(interactions, self.n_users, self.n_items).to(self.device)
        self.mm_adj, self.scoring_mm_adj = (g.to(self.device) for g in self._frozen_item_graphs())

    @torch.no_grad()
    def _frozen_item_graphs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """S = sum_m w_m D^-1/2 S_m D^-1/2 (FREEDOM's), for training and for scoring."""
        encoders = [self.encoders[m] for m in self.modalities]
        masks = [e.mask for e in encoders]
        graphs = self.knn_graphs([e.features for e in encoders], masks, self.knn_k, weighted=False)
        weights = fixed_modality_weights(self.modalities, self.mm_image_weight)
        rows = ([m & self.warm_items for m in masks], masks)
        return tuple(mix_item_graphs(g, weights, r).to_sparse() for g, r in zip(graphs, rows, strict=True))

    # ------------------------------------------------------------------ representations
    def gcn_outputs(self, gcns: nn.ModuleDict, noise: float = 0.0) -> list[torch.Tensor]:
        """r_m of every modality (users then items), through ``gcns``."""
        return [
            gcns[m](self.encoders[m].dense(), self.encoders[m].mask, self.norm_adj, self.n_ui_layers, noise)
            for m in self.modalities
        ]

    def assemble(self, reps: list[torch.Tensor], weighted: bool) -> torch.Tensor:
        """[users ; items]: users [w_um r_m,u]_m (or [r_m,u]_m), items [r_m,i]_m + S^L [r_m,i]_m."""
        item_graph = self.mm_adj if self.training else self.scoring_mm_adj
        users, items = [], []
        for m, r in enumerate(reps):
            user_r, item_r = torch.split(r, [self.n_users, self.n_items])
            users.append(self.weight_u[:, m] * user_r if weighted else user_r)
            items.append(item_r + propagate(item_graph, item_r, self.n_mm_layers))
        return torch.cat([torch.cat(users, dim=1), torch.cat(items, dim=1)])

    def forward(self) -> Embeddings:
        """The fused vectors; in training ``views`` also holds the guide, each modality's and
        the two perturbed representations (users then items)."""
        reps = self.gcn_outputs(self.gcns)
        fused = self.assemble(reps, weighted=True)
        user_all, item_all = torch.split(fused, [self.n_users, self.n_items])
        if not self.training:
            return Embeddings(user_all, item_all)
        n = len(self.modalities)
        guide = self.id_gcn(self.id_feat, None, self.norm_adj, self.n_ui_layers)
        views = {"fused": fused, GUIDE: self.assemble([guide] * n, weighted=False)}
        for m, r in zip(self.modalities, reps, strict=True):
            views[m] = self.assemble([r] * n, weighted=False)
        for k, gcns in enumerate(self.noisy_gcns):
            views[f"noisy{k + 1}"] = self.assemble(self.gcn_outputs(gcns, NOISE), weighted=True)
        return Embeddings(user_all, item_all, views=views)

    # ------------------------------------------------------------------ RecBole API
    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, ...]:
        """(BPR / ln 2, reg_weight x L2, align_weight x alignment, mask_weight_g x InfoNCE)."""
        user, pos_item, neg_item = self.begin_batch(interaction)
        out = self.forward()
        u_e = out.user[user]
        bpr = bpr_loss(dot_scores(u_e, out.item[pos_item]), dot_scores(u_e, out.item[neg_item])) / math.log(2)

        reg = sum(self.gcns[m].preference[user].pow(2).mean() for m in self.modalities)
        reg = self.reg_weight * (reg + self.weight_u.pow(2).mean())

        real = torch.cat([torch.arange(1, self.n_users), torch.arange(self.n_users + 1, self.n_users + self.n_items)])
        real = real.to(u_e.device)  # every node but RecBole's padding user and item
        levels = ["fused", GUIDE, *self.modalities]
        align = sum(distribution_gap(out.views[a][real], out.views[b][real]) for a, b in combinations(levels, 2))

        noisy1, noisy2 = out.views["noisy1"], out.views["noisy2"]
        users, items = slice(1, self.n_users), slice(self.n_users + 1, None)
        graph_cl = info_nce(noisy1[users], noisy2[users], self.temp) + info_nce(noisy1[items], noisy2[items], self.temp)
        return bpr, reg, self.align_weight * align, self.mask_weight_g * graph_cl
