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

The pruned graph is resampled once per epoch by :meth:`FREEDOM.pre_epoch` (MMRec's
``pre_epoch_processing``; see :mod:`recbole_rlmm.model.abstract` for when it runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from recbole_rlmm.graph import (
    EdgeDropout,
    dedup_interactions,
    mix_item_graphs,
    norm_adj_matrix,
)
from recbole_rlmm.model.abstract import EmbeddingRecommender, Embeddings
from recbole_rlmm.model.layers import bpr_loss, dot_scores, lightgcn_propagate, propagate


def fixed_modality_weights(names: Sequence[str], image_weight: float) -> torch.Tensor:
    """FREEDOM's modality weights: ``image`` gets ``image_weight`` (MMRec's mm_image_weight),
    the other modalities share the rest equally; equal weights when there is no ``image``."""
    n = len(names)
    if n == 1:
        return torch.ones(1)
    if "image" not in names:
        return torch.full((n,), 1.0 / n)
    if not 0.0 <= image_weight <= 1.0:
        raise ValueError(f"mm_image_weight must lie in [0, 1]; got {image_weight}.")
    rest = (1.0 - image_weight) / (n - 1)
    return torch.tensor(
        [image_weight if m == "image" else rest for m in names], dtype=torch.float32
    )


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

        # load dataset info
        modal = self.load_features(config, dataset)
        self.modalities = modal.names

        # define layers
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_id_embedding = nn.Embedding(self.n_items, self.embedding_size)
        # T_m: only trained by the auxiliary loss, so only built when it is on
        out_dim = self.embedding_size if self.reg_weight > 0 else None
        self.encoders = self.modality_encoders(modal, self.modalities, self.feature_norm, out_dim)

        # generate intermediate data
        interactions = dedup_interactions(dataset.inter_matrix(form="coo"))
        self.norm_adj = norm_adj_matrix(interactions, self.n_users, self.n_items).to(self.device)
        # over warm items while training; with rows for cold items when scoring
        self.mm_adj, self.scoring_mm_adj = (g.to(self.device) for g in self._frozen_item_graphs())
        self.edge_sampler: EdgeDropout | None = (
            EdgeDropout(interactions, self.n_users, self.n_items, self.dropout)
            if self.dropout > 0
            else None
        )
        self.masked_adj: torch.Tensor | None = None  # the pruned graph of the current epoch

        # parameters initialization (MMRec: xavier-uniform ID embeddings, default Linear)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)

    # ------------------------------------------------------------------ graphs
    @torch.no_grad()
    def _frozen_item_graphs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """S = sum_m w_m D^-1/2 S_m D^-1/2 from the raw features, as sparse tensors: for
        training and for scoring (see :meth:`EmbeddingRecommender.knn_graphs`)."""
        encoders = [self.encoders[m] for m in self.modalities]
        masks = [e.mask for e in encoders]
        training, scoring = self.knn_graphs([e.features for e in encoders], masks, self.knn_k, weighted=False)
        weights = fixed_modality_weights(self.modalities, self.mm_image_weight)
        train_graph = mix_item_graphs(training, weights, [m & self.warm_items for m in masks]).to_sparse()
        if scoring is training:
            return train_graph, train_graph
        return train_graph, mix_item_graphs(scoring, weights, masks).to_sparse()

    @torch.no_grad()
    def pre_epoch(self) -> None:
        """Degree-sensitive edge pruning (MMRec's ``pre_epoch_processing``)."""
        if self.edge_sampler is None:
            self.masked_adj = self.norm_adj
        else:
            self.masked_adj = self.edge_sampler.sample(self.epoch_generator(self.edge_sampler.edges.device))

    # ------------------------------------------------------------------ propagation
    def forward(self, adj: torch.Tensor | None = None) -> Embeddings:
        """User and item vectors on ``adj`` (default: pruned graph in training, full in eval)."""
        if adj is None:
            adj = self.norm_adj
            if self.training:
                self.start_epoch()
                adj = self.masked_adj
        item_graph = self.mm_adj if self.training else self.scoring_mm_adj
        h = propagate(item_graph, self.item_id_embedding.weight, self.n_mm_layers)
        user_all, item_all = lightgcn_propagate(
            adj, self.user_embedding.weight, self.item_id_embedding.weight, self.n_ui_layers
        )
        return Embeddings(user_all, item_all + h)

    # ------------------------------------------------------------------ RecBole API
    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, ...]:
        """(BPR[, reg_weight x the auxiliary BPR of the projected features])."""
        user, pos_item, neg_item = self.begin_batch(interaction)
        out = self.forward()
        bpr, u_e = self.batch_bpr(out, user, pos_item, neg_item)
        if self.reg_weight <= 0:
            return (bpr,)
        aux = u_e.new_zeros(())
        for encoder in self.encoders.values():
            # T_m x of the batch's items; items lacking modality m get a zero content vector
            aux = aux + bpr_loss(dot_scores(u_e, encoder(pos_item)), dot_scores(u_e, encoder(neg_item)))
        return bpr, self.reg_weight * aux
