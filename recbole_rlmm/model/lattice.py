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

The learned graph is rebuilt (with gradients into T_m and alpha) in the first training
batch of every epoch and reused, detached, in the others, as MMRec does through
``pre_epoch_processing``; here :meth:`train` marks the epoch start because RecBole's
trainer calls ``model.train()`` at the start of every epoch. In eval mode the graph is
always rebuilt from the current parameters, so scores are deterministic.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recbole_rlmm.mmgraph import (
    EdgeGraph,
    dedup_interactions,
    knn_graph_edges,
    lightgcn_propagate,
    mix_item_graphs,
    register_modalities,
    row_norm_adjacency,
    sym_norm_values,
)
from recbole_rlmm.model.abstract import EmbeddingRecommender


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
        if not 0.0 <= self.lambda_coeff <= 1.0:
            raise ValueError(f"LATTICE: lambda_coeff must lie in [0, 1]; got {self.lambda_coeff}.")

        # load dataset info
        self.modalities = register_modalities(self, "LATTICE", config, dataset, self.feature_norm)
        interactions = dedup_interactions(dataset.inter_matrix(form="coo"))

        # define layers and loss
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_id_embedding = nn.Embedding(self.n_items, self.embedding_size)
        self.trs = nn.ModuleDict(
            {
                m: nn.Linear(getattr(self, f"feat_{m}").shape[1], self.feat_embed_dim)
                for m in self.modalities
            }
        )
        # alpha: softmax gives the modality weights (MMRec initialises [0.5, 0.5])
        self.modal_weight: nn.Parameter | None = (
            nn.Parameter(torch.full((len(self.modalities),), 0.5))
            if len(self.modalities) > 1
            else None
        )

        # generate intermediate data
        self.norm_adj = row_norm_adjacency(
            interactions, self.n_users, self.n_items, self_loops=True
        ).to(self.device)
        # frozen kNN graph S_m^0 of each modality's raw features, normalised separately
        self.original_graphs: list[EdgeGraph] = [
            knn_graph_edges(self._feat(m), self.knn_k, self._mask(m), weighted=True)
            .detach()
            .to(self.device)
            for m in self.modalities
        ]
        self._item_adj: torch.Tensor | None = None  # A_I of the current epoch, detached, sparse
        self._rebuild_graph = True  # set at every epoch start by train()

        # parameters initialization (MMRec: xavier-uniform ID embeddings, default Linear)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)

    # ------------------------------------------------------------------ helpers
    def _feat(self, m: str) -> torch.Tensor:
        return getattr(self, f"feat_{m}")

    def _mask(self, m: str) -> torch.Tensor:
        return getattr(self, f"mask_{m}")

    def modality_weights(self) -> torch.Tensor:
        """w = softmax(alpha); a single modality gets weight 1."""
        if self.modal_weight is None:
            return torch.ones(1, device=self.item_id_embedding.weight.device)
        return torch.softmax(self.modal_weight, dim=0)

    def learned_graph(self) -> EdgeGraph:
        """A = norm(sum_m w_m S_m) from the projected features (differentiable)."""
        weights = self.modality_weights()
        parts = [
            knn_graph_edges(
                self.trs[m](self._feat(m)),
                self.knn_k,
                self._mask(m),
                weighted=True,
                normalize=False,
            )
            for m in self.modalities
        ]
        mixed = EdgeGraph.cat([g.scaled(weights[i]) for i, g in enumerate(parts)])
        values = sym_norm_values(mixed.rows, mixed.cols, mixed.values, self.n_items)
        return EdgeGraph(mixed.rows, mixed.cols, values, self.n_items)

    def original_graph(self) -> EdgeGraph:
        """A^0 = sum_m w_m norm(S_m^0) (per-item weights over the modalities it has)."""
        masks = [self._mask(m) for m in self.modalities]
        return mix_item_graphs(self.original_graphs, self.modality_weights(), masks)

    def item_graph(self) -> EdgeGraph:
        """A_I = (1 - lambda) A + lambda A^0."""
        learned = self.learned_graph().scaled(1.0 - self.lambda_coeff)
        original = self.original_graph().scaled(self.lambda_coeff)
        return EdgeGraph.cat([learned, original])

    def train(self, mode: bool = True) -> LATTICE:
        """RecBole's trainer calls ``model.train()`` once per epoch: rebuild A_I then."""
        if mode:
            self.pre_epoch_processing()
        return super().train(mode)

    def pre_epoch_processing(self) -> None:
        """MMRec's hook: rebuild the learned item graph in the next training batch."""
        self._rebuild_graph = True

    def _current_item_graph(self) -> EdgeGraph | torch.Tensor:
        """A_I as an edge list when it needs gradients, else as a (faster) sparse tensor."""
        if not self.training:
            return self.item_graph().to_sparse()  # always fresh in eval: deterministic scores
        if self._rebuild_graph or self._item_adj is None:
            graph = self.item_graph()  # gradients flow into trs and alpha in this batch
            self._item_adj = graph.to_sparse()
            self._rebuild_graph = False
            return graph
        return self._item_adj

    # ------------------------------------------------------------------ propagation
    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        graph = self._current_item_graph()
        h = self.item_id_embedding.weight
        for _ in range(self.n_layers):
            h = graph.propagate(h) if isinstance(graph, EdgeGraph) else torch.sparse.mm(graph, h)
        user_all, item_all = lightgcn_propagate(
            self.norm_adj,
            self.user_embedding.weight,
            self.item_id_embedding.weight,
            self.n_ui_layers,
        )
        return user_all, item_all + F.normalize(h, p=2, dim=1)

    # ------------------------------------------------------------------ RecBole API
    def calculate_loss(self, interaction: Any) -> torch.Tensor:
        user, pos_item, neg_item = self.pairwise_batch(interaction)

        user_all, item_all = self.forward()
        u_e, pos_e, neg_e = user_all[user], item_all[pos_item], item_all[neg_item]
        pos_scores = torch.mul(u_e, pos_e).sum(dim=1)
        neg_scores = torch.mul(u_e, neg_e).sum(dim=1)
        mf_loss = -F.logsigmoid(pos_scores - neg_scores).mean()
        regularizer = 0.5 * (u_e.pow(2).sum() + pos_e.pow(2).sum() + neg_e.pow(2).sum())
        return mf_loss + self.reg_weight * regularizer / len(user)
