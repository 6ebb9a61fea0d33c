r"""LATTICE: mining latent item-item structures for multimedia recommendation.

Reference: Jinghao Zhang, Yanqiao Zhu, Qiang Liu, Shu Wu, Shuhui Wang and Liang Wang,
"Mining Latent Structures for Multimedia Recommendation", ACM MM 2021. Implementation
follows MMRec (enoche/MMRec, ``src/models/lattice.py``) with ``cf_model: lightgcn``:

* per modality m: a frozen kNN graph S_m^0 of the raw features and a *learned* kNN graph
  S_m of the projected features T_m X_m (``feat_embed_dim``); both keep each item's
  ``knn_k`` most cosine-similar items (itself included) weighted by the similarity;
* modality weights w = softmax(alpha) (learned, one per modality);
  learned graph  A = norm(sum_m w_m S_m),  frozen graph  A^0 = sum_m w_m norm(S_m^0),
  norm(S) = D^-1/2 S D^-1/2;  item graph  A_I = (1 - lambda) A + lambda A^0;
* item-graph embedding h = A_I^L e_item (``n_layers`` steps on the item ID embeddings);
* LightGCN on D^-1 (R + I) (LATTICE's row-normalised user-item graph with self-loops),
  ``n_ui_layers`` steps, mean of layers; item final = LightGCN item + normalize(h);
* loss: BPR + ``reg_weight`` x (||u||^2 + ||i+||^2 + ||i-||^2) / (2 x batch size).

The learned graph is rebuilt (with gradients into T_m and alpha) by :meth:`LATTICE.pre_epoch`
(MMRec's ``pre_epoch_processing``), used with its gradients in the epoch's first training
batch and reused, detached, in the others. In eval mode the graph is always rebuilt from the
current parameters, so scores are deterministic.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recbole_rlmm.graph import (
    EdgeGraph,
    dedup_interactions,
    knn_graph_edges,
    mix_item_graphs,
    row_norm_adjacency,
    sym_norm_values,
)
from recbole_rlmm.model.abstract import EmbeddingRecommender, Embeddings
from recbole_rlmm.model.layers import bpr_loss, dot_scores, lightgcn_propagate, linear, propagate


class LATTICE(EmbeddingRecommender):
    """LightGCN plus an item-item graph learned from modality features (LATTICE)."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size: int = config["embedding_size"]  # d of user/item ID embeddings
        self.feat_embed_dim: int = config["feat_embed_dim"]  # projection size for learned graph
        self.knn_k: int = config["knn_k"]  # neighbours kept per item (itself included)
        self.lambda_coeff: float = config["lambda_coeff"]  # weight of the frozen raw-feature graph
        self.n_layers: int = config["n_layers"]  # item-graph propagation steps
        self.n_ui_layers: int = config["n_ui_layers"]  # LightGCN steps (MMRec: len(weight_size))
        self.reg_weight: float = config["reg_weight"]  # L2 weight on the batch's final vectors
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard per modality

        # load dataset info
        modal = self.load_features(config, dataset)
        self.modalities = modal.names

        # define layers and loss
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_id_embedding = nn.Embedding(self.n_items, self.embedding_size)
        # T_m: projections whose kNN graph is learned
        self.encoders = self.modality_encoders(
            modal, self.modalities, self.feature_norm, self.feat_embed_dim
        )
        # alpha: softmax gives the modality weights (MMRec initialises [0.5, 0.5])
        self.modal_weight: nn.Parameter | None = (
            nn.Parameter(torch.full((len(self.modalities),), 0.5))
            if len(self.modalities) > 1
            else None
        )

        # generate intermediate data
        interactions = dedup_interactions(dataset.inter_matrix(form="coo"))
        self.norm_adj = row_norm_adjacency(
            interactions, self.n_users, self.n_items, self_loops=True
        ).to(self.device)
        # frozen kNN graph S_m^0 of each modality's raw features, normalised separately: over
        # warm items while training, with rows for cold items when scoring
        encoders = list(self.encoders.values())
        training, scoring = self.knn_graphs([e.features for e in encoders], [e.mask for e in encoders], self.knn_k, weighted=True)
        self.original_graphs: list[EdgeGraph] = [g.detach().to(self.device) for g in training]
        self.scoring_original_graphs: list[EdgeGraph] = (
            self.original_graphs if scoring is training else [g.detach().to(self.device) for g in scoring]
        )
        self._epoch_graph: EdgeGraph | None = None  # A_I with gradients, for the next batch
        self._item_adj: torch.Tensor | None = None  # A_I of the current epoch, detached, sparse

        # parameters initialization (MMRec: xavier-uniform ID embeddings, default Linear)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)

    # ------------------------------------------------------------------ item graph
    def modality_weights(self) -> torch.Tensor:
        """w = softmax(alpha); a single modality gets weight 1."""
        if self.modal_weight is None:
            return torch.ones(1, device=self.item_id_embedding.weight.device)
        return torch.softmax(self.modal_weight, dim=0)

    def _rows(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rows and neighbour candidates of a kNN graph: warm items while training; every
        item with the modality when scoring, its neighbours warm."""
        warm = mask & self.warm_items
        return (warm, None) if self.training else (mask, warm)

    def learned_graph(self) -> EdgeGraph:
        """A = norm(sum_m w_m S_m) from the projected features (differentiable)."""
        weights = self.modality_weights()
        parts = []
        for e in self.encoders.values():
            rows, candidates = self._rows(e.mask)
            parts.append(
                knn_graph_edges(
                    linear(e.projection, e.features), self.knn_k, rows, weighted=True, normalize=False, candidates=candidates
                )
            )
        mixed = EdgeGraph.cat([g.scaled(weights[i]) for i, g in enumerate(parts)])
        values = sym_norm_values(mixed.rows, mixed.cols, mixed.values, self.n_items)
        return EdgeGraph(mixed.rows, mixed.cols, values, self.n_items)

    def original_graph(self) -> EdgeGraph:
        """A^0 = sum_m w_m norm(S_m^0) (per-item weights over the modalities it has)."""
        masks = [self._rows(e.mask)[0] for e in self.encoders.values()]
        graphs = self.original_graphs if self.training else self.scoring_original_graphs
        return mix_item_graphs(graphs, self.modality_weights(), masks)

    def item_graph(self) -> EdgeGraph:
        """A_I = (1 - lambda) A + lambda A^0."""
        learned = self.learned_graph().scaled(1.0 - self.lambda_coeff)
        original = self.original_graph().scaled(self.lambda_coeff)
        return EdgeGraph.cat([learned, original])

    def pre_epoch(self) -> None:
        """Rebuild A_I from the current parameters (MMRec's ``pre_epoch_processing``)."""
        self._epoch_graph = self.item_graph()  # gradients flow into T_m and alpha in one batch
        self._item_adj = self._epoch_graph.to_sparse()

    def _current_item_graph(self) -> EdgeGraph | torch.Tensor:
        """A_I: with gradients in an epoch's first training batch, then detached and sparse;
        always fresh in eval mode, so scores are deterministic."""
        if not self.training:
            return self.item_graph().to_sparse()
        self.start_epoch()
        graph, self._epoch_graph = self._epoch_graph, None
        return graph if graph is not None else self._item_adj

    # ------------------------------------------------------------------ propagation
    def forward(self) -> Embeddings:
        h = propagate(self._current_item_graph(), self.item_id_embedding.weight, self.n_layers)
        user_all, item_all = lightgcn_propagate(
            self.norm_adj,
            self.user_embedding.weight,
            self.item_id_embedding.weight,
            self.n_ui_layers,
        )
        return Embeddings(user_all, item_all + F.normalize(h, p=2, dim=1))

    # ------------------------------------------------------------------ RecBole API
    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, ...]:
        """(BPR, reg_weight x L2 of the batch's final vectors / (2 x batch size))."""
        user, pos_item, neg_item = self.begin_batch(interaction)
        out = self.forward()
        u_e, pos_e, neg_e = out.user[user], out.item[pos_item], out.item[neg_item]
        bpr = bpr_loss(dot_scores(u_e, pos_e), dot_scores(u_e, neg_e))
        regularizer = 0.5 * (u_e.pow(2).sum() + pos_e.pow(2).sum() + neg_e.pow(2).sum())
        return bpr, self.reg_weight * regularizer / len(user)
