r"""VBPR: Visual Bayesian Personalized Ranking from implicit feedback.

Reference: Ruining He and Julian McAuley, "VBPR: Visual Bayesian Personalized Ranking
from Implicit Feedback", AAAI 2016. Implementation follows MMRec's "recommended version"
(enoche/MMRec, ``src/models/vbpr.py``):

* item i with content features f_i (all configured modalities concatenated, as MMRec
  concatenates text and image): q_i = [gamma_i ; E f_i + b], gamma_i an ID embedding
  and E a linear map to d;
* user u: p_u = [gamma_u ; theta_u] (ID embedding and visual preference, 2d in total);
* score = <p_u, q_i>; BPR loss plus ``reg_weight`` x RecBole's EmbLoss (sum of the L2
  norms of the batch's user, positive and negative vectors, divided by the batch size).

The item and user bias terms of the paper are left out, as in MMRec.
"""

from __future__ import annotations

from typing import Any

import torch
from recbole.model.init import xavier_normal_initialization
from recbole.model.loss import EmbLoss
from torch import nn

from recbole_rlmm.model.abstract import EmbeddingRecommender, Embeddings
from recbole_rlmm.model.layers import RECBOLE_BPR_GAMMA, bpr_loss, dot_scores


class VBPR(EmbeddingRecommender):
    """Matrix factorisation whose item vectors append a linear projection of item content."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size: int = config["embedding_size"]  # d: ID part and content part each
        self.reg_weight: float = config["reg_weight"]  # weight of EmbLoss on batch vectors
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard per modality

        # load dataset info
        modal = self.load_features(config, dataset)
        self.modalities = modal.names
        self.encoders = self.modality_encoders(modal, self.modalities, self.feature_norm)
        feat_dim = sum(e.in_dim for e in self.encoders.values())

        # define layers and loss
        # p_u = [gamma_u ; theta_u]: one (n_users, 2d) table as in MMRec
        self.u_embedding = nn.Parameter(torch.empty(self.n_users, 2 * self.embedding_size))
        self.i_embedding = nn.Parameter(torch.empty(self.n_items, self.embedding_size))
        self.item_linear = nn.Linear(feat_dim, self.embedding_size)  # E (with bias, as MMRec)
        self.reg_loss = EmbLoss()

        # parameters initialization (MMRec: xavier-uniform tables, xavier-normal Linear)
        nn.init.xavier_uniform_(self.u_embedding)
        nn.init.xavier_uniform_(self.i_embedding)
        self.apply(xavier_normal_initialization)

    def item_features(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenated content features f_i of ``items`` (all items when None)."""
        feats = [e.dense(items) for e in self.encoders.values()]
        return torch.cat(feats, dim=1) if len(feats) > 1 else feats[0]

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """q_i = [gamma_i ; E f_i + b] for ``items`` (all items when None)."""
        gamma = self.i_embedding if items is None else self.i_embedding[items]
        return torch.cat([gamma, self.item_linear(self.item_features(items))], dim=1)

    def forward(self) -> Embeddings:
        """All user vectors (n_users, 2d) and item vectors (n_items, 2d)."""
        return Embeddings(self.u_embedding, self.item_vectors())

    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(BPR, reg_weight x EmbLoss of the batch's vectors)."""
        user, pos_item, neg_item = self.begin_batch(interaction)
        # only the batch's items are projected: same vectors as MMRec's full forward
        u_e = self.u_embedding[user]
        pos_e, neg_e = self.item_vectors(pos_item), self.item_vectors(neg_item)
        bpr = bpr_loss(dot_scores(u_e, pos_e), dot_scores(u_e, neg_e), gamma=RECBOLE_BPR_GAMMA)
        return bpr, self.reg_weight * self.reg_loss(u_e, pos_e, neg_e)

    def predict(self, interaction: Any) -> torch.Tensor:
        user = interaction[self.USER_ID]
        item = interaction[self.ITEM_ID]
        return dot_scores(self.u_embedding[user], self.item_vectors(item))
