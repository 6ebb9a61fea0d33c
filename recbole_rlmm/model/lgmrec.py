r"""LGMRec: local and global graph learning for multimodal recommendation.

Reference: Zhiqiang Guo, Jianjun Li, Guohui Li, Chaoyang Wang, Si Shi and Bin Ruan, "LGMRec:
Local and Global Graph Learning for Multimodal Recommendation", AAAI 2024
(arXiv:2312.16400). Implementation follows MMRec (enoche/MMRec, ``src/models/lgmrec.py``,
from the authors' georgeguo-cn/LGMRec):

* collaborative graph embedding (CGE): LightGCN (``n_ui_layers`` steps, mean of layers) on
  D^-1/2 A D^-1/2 gives E^c (0 steps: MMRec's ``cf_model: mf``);
* modality graph embedding (MGE) per modality m: items f_m = X_m W_m (W_m: d_m x d, no bias),
  users the mean of their training items' f_m, then ``n_mm_layers`` steps on D^-1/2 A D^-1/2
  (the last layer, no mean): E^m;
* local embedding E^l = E^c + sum_m normalize(E^m);
* global hypergraph embedding (GHE) per modality: item-hyperedge memberships
  H_i^m = GumbelSoftmax(X_m V_m, tau) over ``hyper_num`` hyperedges, user memberships
  H_u^m = GumbelSoftmax(R X_m V_m, tau) (R: the binary interaction matrix), both dropped out
  with keep probability ``keep_rate``; ``n_hyper_layer`` steps of L = H_i^T E_i,
  E_i <- H_i L, E_u = H_u L from the CGE item vectors; E^h = sum_m [E_u ; E_i];
* final E = E^l + ``alpha`` x normalize(E^h); score = dot product;
* loss: BPR + ``cl_weight`` x L_hcl + ``reg_weight`` x (||u|| + ||i+|| + ||i-||) / B, with
  L_hcl = sum over modality pairs (a, b) of the summed InfoNCE between a's and b's hypergraph
  vectors of the batch's users (against all of b's users) and positive items (against all of
  b's items), tau = 0.2 (fixed in the reference code, as is the Gumbel temperature).

In eval mode the Gumbel noise is drawn from a generator seeded by ``seed``, so scores are
deterministic; training draws from the global generator, as the reference does. Items lacking
modality m belong to none of its hyperedges.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from recbole.model.loss import EmbLoss
from torch import nn

from recbole_rlmm.graph import dedup_interactions, norm_adj_matrix, to_torch_sparse
from recbole_rlmm.graph.sparse import sparse_mm
from recbole_rlmm.model.abstract import EmbeddingRecommender, Embeddings
from recbole_rlmm.model.layers import bpr_loss, dot_scores, lightgcn_propagate

#: tau of the Gumbel-Softmax and of the hypergraph contrast (fixed in LGMRec's code).
TEMPERATURE = 0.2


def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """softmax((logits + g) / tau) over dim 1, g ~ Gumbel(0, 1) (``F.gumbel_softmax`` with
    ``hard=False``, drawing from ``generator``)."""
    gumbels = -torch.empty_like(logits).exponential_(generator=generator).log()
    return torch.softmax((logits + gumbels) / tau, dim=1)


def hyper_contrast(anchor: torch.Tensor, candidates: torch.Tensor, index: torch.Tensor, tau: float) -> torch.Tensor:
    """-sum_b log softmax_n(cos(anchor_b, candidates_n) / tau)[index_b] (LGMRec's ssl_triple_loss)."""
    logits = F.normalize(anchor, dim=1) @ F.normalize(candidates, dim=1).T / tau
    return F.cross_entropy(logits, index, reduction="sum")


class LGMRec(EmbeddingRecommender):
    """LightGCN plus local modality graphs and global modality hypergraphs."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size: int = config["embedding_size"]  # d of ID embeddings and of W_m outputs
        self.n_ui_layers: int = config["n_ui_layers"]  # LightGCN steps (CGE)
        self.n_mm_layers: int = config["n_mm_layers"]  # modality graph steps (MGE)
        self.n_hyper_layer: int = config["n_hyper_layer"]  # hypergraph steps (GHE)
        self.hyper_num: int = config["hyper_num"]  # hyperedges per modality
        self.keep_rate: float = config["keep_rate"]  # dropout keep probability of the memberships
        self.alpha: float = config["alpha"]  # weight of the global embedding
        self.cl_weight: float = config["cl_weight"]  # weight of the hypergraph contrast
        self.reg_weight: float = config["reg_weight"]  # EmbLoss weight on the batch's final vectors
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard per modality

        # load dataset info
        modal = self.load_features(config, dataset)
        self.modalities = modal.names
        d = self.embedding_size

        # define layers and loss
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        self.encoders = self.modality_encoders(modal, self.modalities, self.feature_norm)
        self.projections = nn.ParameterDict(  # W_m
            {m: nn.Parameter(torch.empty(self.encoders[m].in_dim, d)) for m in self.modalities}
        )
        self.hyperedges = nn.ParameterDict(  # V_m
            {m: nn.Parameter(torch.empty(self.encoders[m].in_dim, self.hyper_num)) for m in self.modalities}
        )
        self.membership_dropout = nn.Dropout(p=1.0 - self.keep_rate)
        self.reg_loss = EmbLoss()

        # generate intermediate data
        interactions = dedup_interactions(dataset.inter_matrix(form="coo"))
        self.norm_adj = norm_adj_matrix(interactions, self.n_users, self.n_items).to(self.device)
        self.R = to_torch_sparse(interactions).to(self.device)  # binary (n_users, n_items)
        degree = np.asarray(interactions.sum(axis=1)).flatten()
        self.register_buffer("user_degree_inv", torch.from_numpy(1.0 / (degree + 1e-7)).float().unsqueeze(1), persistent=False)

        # parameters initialization (LGMRec: xavier-uniform everywhere)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        for m in self.modalities:
            nn.init.xavier_uniform_(self.projections[m])
            nn.init.xavier_uniform_(self.hyperedges[m])

    # ------------------------------------------------------------------ local
    def modality_graph_embedding(self, m: str) -> torch.Tensor:
        """E^m: [mean of the user's items' f_m ; f_m], ``n_mm_layers`` steps on the graph."""
        items = self.encoders[m].dense() @ self.projections[m]
        users = sparse_mm(self.R, items) * self.user_degree_inv
        x = torch.cat([users, items])
        for _ in range(self.n_mm_layers):
            x = sparse_mm(self.norm_adj, x)
        return x

    # ------------------------------------------------------------------ global
    def memberships(self, m: str) -> tuple[torch.Tensor, torch.Tensor]:
        """H_i^m and H_u^m: Gumbel-Softmax of X_m V_m and of R X_m V_m (items lacking m: 0)."""
        generator = None
        if not self.training:  # deterministic scores: the same draw at every evaluation
            generator = torch.Generator(device=self.item_id_embedding.weight.device)
            generator.manual_seed(self._seed + self.modalities.index(m))
        encoder = self.encoders[m]
        item_logits = encoder.dense() @ self.hyperedges[m]
        user_logits = sparse_mm(self.R, item_logits)
        item_h = gumbel_softmax(item_logits, TEMPERATURE, generator) * encoder.mask.unsqueeze(1)
        user_h = gumbel_softmax(user_logits, TEMPERATURE, generator)
        return item_h, user_h

    def hypergraph_embedding(self, item_h: torch.Tensor, user_h: torch.Tensor, item_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_hyper_layer`` steps of L = H_i^T E_i, E_i <- H_i L, E_u = H_u L."""
        item_h, user_h = self.membership_dropout(item_h), self.membership_dropout(user_h)
        user_e = None
        for _ in range(self.n_hyper_layer):
            latent = item_h.T @ item_e
            item_e = item_h @ latent
            user_e = user_h @ latent
        return user_e, item_e

    def forward(self) -> Embeddings:
        """Final vectors; ``views`` holds each modality's hypergraph vectors, stacked
        (``hyper_user``: (M, n_users, d), ``hyper_item``: (M, n_items, d))."""
        user_c, item_c = lightgcn_propagate(
            self.norm_adj, self.user_embedding.weight, self.item_id_embedding.weight, self.n_ui_layers
        )
        local = torch.cat([user_c, item_c])
        hyper_users, hyper_items = [], []
        for m in self.modalities:
            local = local + F.normalize(self.modality_graph_embedding(m))
            user_e, item_e = self.hypergraph_embedding(*self.memberships(m), item_c)
            hyper_users.append(user_e)
            hyper_items.append(item_e)
        glob = torch.cat([sum(hyper_users), sum(hyper_items)])
        user_all, item_all = torch.split(local + self.alpha * F.normalize(glob), [self.n_users, self.n_items])
        views = {"hyper_user": torch.stack(hyper_users), "hyper_item": torch.stack(hyper_items)}
        return Embeddings(user_all, item_all, views=views)

    # ------------------------------------------------------------------ RecBole API
    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, ...]:
        """(BPR, cl_weight x L_hcl, reg_weight x EmbLoss of the batch's final vectors)."""
        user, pos_item, neg_item = self.begin_batch(interaction)
        out = self.forward()
        u_e, pos_e, neg_e = out.user[user], out.item[pos_item], out.item[neg_item]
        bpr = bpr_loss(dot_scores(u_e, pos_e), dot_scores(u_e, neg_e))
        hyper_u, hyper_i = out.views["hyper_user"], out.views["hyper_item"]
        hcl = u_e.new_zeros(())
        for a, b in combinations(range(len(self.modalities)), 2):
            hcl = hcl + hyper_contrast(hyper_u[a][user], hyper_u[b], user, TEMPERATURE)
            hcl = hcl + hyper_contrast(hyper_i[a][pos_item], hyper_i[b], pos_item, TEMPERATURE)
        reg = self.reg_loss(u_e, pos_e, neg_e).squeeze()
        return bpr, self.cl_weight * hcl, self.reg_weight * reg
