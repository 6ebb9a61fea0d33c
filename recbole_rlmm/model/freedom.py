r"""FREEDOM: freezing and denoising graph structures for multimodal recommendation.

Reference: Xin Zhou and Zhiqi Shen, "A Tale of Two Graphs: Freezing and Denoising Graph
Structures for Multimodal Recommendation", ACM MM 2023 (arXiv:2211.06924).
Implementation follows MMRec (enoche/MMRec, ``src/models/freedom.py``):

* frozen item-item graph: per modality, each item's ``knn_k`` most cosine-similar items
  (itself included) of the raw features, S_m[i, j] = 1, normalised D^-1/2 S_m D^-1/2;
  mixed as S = sum_m w_m S_m with w_image = ``mm_image_weight`` and the rest shared by
  the other modalities; built once in ``__init__`` and never updated (no gradient);
* item-graph embedding h = S^L e_item (``n_mm_layers`` steps on the item ID embeddings);
* user-item graph: LightGCN (``n_ui_layers`` steps, mean of layers) on D^-1/2 A D^-1/2;
  while training, on a *degree-sensitively pruned* graph: ``(1 - dropout)`` of the
  interactions are kept, sampled without replacement with probability proportional to
  1 / sqrt(d_u d_i), so edges between high-degree nodes are dropped more often, and the
  kept graph is re-normalised. Evaluation uses the full graph;
* item final = LightGCN item + h; score = dot product;
* loss: BPR(u, i) + ``reg_weight`` x sum_m BPR(u, T_m x_{m,i}), an auxiliary BPR loss
  between the propagated users and linear projections T_m of the raw item features.

The pruned graph is resampled once per epoch, in the epoch's first training batch, like
MMRec's ``pre_epoch_processing``. RecBole's trainer never calls that hook, but it calls
``model.train()`` at the start of every epoch, so :meth:`train` marks the epoch start.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recbole_rlmm.graph import norm_adj_matrix
from recbole_rlmm.mmgraph import (
    dedup_interactions,
    edge_norm,
    fixed_modality_weights,
    knn_graph_edges,
    lightgcn_propagate,
    mix_item_graphs,
    prune_edges,
    register_modalities,
)
from recbole_rlmm.model.abstract import EmbeddingRecommender


def _bpr(u: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """-mean log sigmoid(<u, pos> - <u, neg>), MMRec's ``bpr_loss``."""
    return -F.logsigmoid(torch.mul(u, pos).sum(dim=1) - torch.mul(u, neg).sum(dim=1)).mean()


class FREEDOM(EmbeddingRecommender):
    """LightGCN on a pruned user-item graph plus a frozen multimodal kNN item graph."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size: int = config["embedding_size"]  # d of ID embeddings and T_m outputs
        self.knn_k: int = config["knn_k"]  # neighbours per item in the frozen graph (self included)
        self.mm_image_weight: float = config["mm_image_weight"]  # weight of the image kNN graph
        self.n_mm_layers: int = config["n_mm_layers"]  # item-graph propagation steps
        self.n_ui_layers: int = config["n_ui_layers"]  # LightGCN steps on the user-item graph
        self.reg_weight: float = config["reg_weight"]  # weight of the auxiliary feature BPR loss
        self.dropout: float = config["dropout"]  # share of interactions pruned each epoch
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard per modality
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"FREEDOM: dropout (edge pruning ratio) must lie in [0, 1); got {self.dropout}."
            )

        # load dataset info
        self.modalities = register_modalities(self, "FREEDOM", config, dataset, self.feature_norm)
        interactions = dedup_interactions(dataset.inter_matrix(form="coo"))

        # define layers
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_id_embedding = nn.Embedding(self.n_items, self.embedding_size)
        # T_m: only trained by the auxiliary loss, so only built when it is on
        self.trs = nn.ModuleDict()
        if self.reg_weight > 0:
            for m in self.modalities:
                self.trs[m] = nn.Linear(getattr(self, f"feat_{m}").shape[1], self.embedding_size)

        # generate intermediate data
        self.norm_adj = norm_adj_matrix(interactions, self.n_users, self.n_items).to(self.device)
        self.mm_adj = self._frozen_item_graph().to(self.device)
        # user-item edges and their sampling weights 1 / sqrt(d_u d_i)
        edges = torch.from_numpy(np.vstack([interactions.row, interactions.col]).astype(np.int64))
        self.register_buffer("edge_index", edges, persistent=False)
        self.register_buffer(
            "edge_values", edge_norm(edges, self.n_users, self.n_items), persistent=False
        )
        self.masked_adj: torch.Tensor | None = None  # the pruned graph of the current epoch
        self._resample = True  # set at every epoch start by train()

        # parameters initialization (MMRec: xavier-uniform ID embeddings, default Linear)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)

    # ------------------------------------------------------------------ graphs
    @torch.no_grad()
    def _frozen_item_graph(self) -> torch.Tensor:
        """S = sum_m w_m D^-1/2 S_m D^-1/2 from the raw features, as a sparse tensor."""
        masks = [getattr(self, f"mask_{m}") for m in self.modalities]
        graphs = [
            knn_graph_edges(getattr(self, f"feat_{m}"), self.knn_k, mask, weighted=False)
            for m, mask in zip(self.modalities, masks, strict=True)
        ]
        weights = fixed_modality_weights(self.modalities, self.mm_image_weight)
        return mix_item_graphs(graphs, weights, masks).to_sparse()

    def train(self, mode: bool = True) -> FREEDOM:
        """RecBole's trainer calls ``model.train()`` once per epoch: resample the graph then."""
        if mode:
            self._resample = True
        return super().train(mode)

    @torch.no_grad()
    def pre_epoch_processing(self) -> None:
        """Degree-sensitive edge pruning (MMRec's hook of the same name)."""
        self._resample = False
        if self.dropout <= 0.0:
            self.masked_adj = self.norm_adj
            return
        self.masked_adj = prune_edges(
            self.edge_index, self.edge_values, self.dropout, self.n_users, self.n_items
        )

    # ------------------------------------------------------------------ propagation
    def forward(self, adj: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """User and item vectors on ``adj`` (default: pruned graph in training, full in eval)."""
        if adj is None:
            if self.training:
                if self._resample or self.masked_adj is None:
                    self.pre_epoch_processing()
                adj = self.masked_adj
            else:
                adj = self.norm_adj
        h = self.item_id_embedding.weight
        for _ in range(self.n_mm_layers):
            h = torch.sparse.mm(self.mm_adj, h)
        user_all, item_all = lightgcn_propagate(
            adj, self.user_embedding.weight, self.item_id_embedding.weight, self.n_ui_layers
        )
        return user_all, item_all + h

    # ------------------------------------------------------------------ RecBole API
    def calculate_loss(self, interaction: Any) -> torch.Tensor:
        user, pos_item, neg_item = self.pairwise_batch(interaction)

        user_all, item_all = self.forward()
        u_e = user_all[user]
        loss = _bpr(u_e, item_all[pos_item], item_all[neg_item])
        if self.reg_weight > 0:
            aux = u_e.new_zeros(())
            for m, trs in self.trs.items():
                feat, mask = getattr(self, f"feat_{m}"), getattr(self, f"mask_{m}")
                # items lacking modality m get a zero content vector
                pos_c = trs(feat[pos_item]) * mask[pos_item].unsqueeze(1)
                neg_c = trs(feat[neg_item]) * mask[neg_item].unsqueeze(1)
                aux = aux + _bpr(u_e, pos_c, neg_c)
            loss = loss + self.reg_weight * aux
        return loss
