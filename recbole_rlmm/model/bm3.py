r"""BM3: bootstrap latent representations for multimodal recommendation.

Reference: Xin Zhou, Hongyu Zhou, Yong Liu, Zhiwei Zeng, Chunyan Miao, Pengwei Wang, Yuan You
and Feijun Jiang, "Bootstrap Latent Representations for Multi-modal Recommendation", WWW 2023
(arXiv:2207.05969). Implementation follows MMRec (enoche/MMRec, ``src/models/bm3.py``):

* online encoder: LightGCN (``n_layers`` steps, mean of layers) on D^-1/2 A D^-1/2 gives
  h_u, h_i; the item's ID embedding is added again, h_i <- h_i + e_i;
* modality m: e_m = T_m x_m (a linear map of the raw features to d);
* predictor f_p (one linear map d -> d, shared by every view);
* target views: a dropout of the online vectors, without gradient (the "latent embedding
  dropout" that replaces BYOL's target network): h~ = dropout(sg(h)), e~_m = dropout(sg(e_m));
* loss, over the batch's (user, positive item) pairs (no negative item):
  L_rec = [1 - cos(f_p(h_u), h~_i)] + [1 - cos(f_p(h_i), h~_u)]
  L_align = sum_m [1 - cos(f_p(e_m,i), h~_i)] + [1 - cos(f_p(e_m,i), e~_m,i)]
  loss = L_rec + ``reg_weight`` x (||H_u|| + ||H_i||) / n_items + ``cl_weight`` x L_align,
  the regulariser being RecBole's (and MMRec's) EmbLoss on the full online tables;
* score(u, i) = <f_p(h_u), f_p(h_i)>.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from recbole.model.loss import EmbLoss
from torch import nn

from recbole_rlmm.graph import dedup_interactions, norm_adj_matrix
from recbole_rlmm.model.abstract import EmbeddingRecommender, Embeddings
from recbole_rlmm.model.layers import lightgcn_propagate


def cosine_loss(online: torch.Tensor, target: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - mean cos(online, target)`` over the rows (over ``rows`` only when given: items
    without a modality take no part in that modality's terms)."""
    cos = F.cosine_similarity(online, target.detach(), dim=-1)
    if rows is None:
        return 1.0 - cos.mean()
    if not bool(rows.any()):
        return cos.new_zeros(())
    return 1.0 - cos[rows].mean()


class BM3(EmbeddingRecommender):
    """LightGCN trained by bootstrapping: predicted views against dropped-out target views."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size: int = config["embedding_size"]  # d of ID embeddings and of T_m outputs
        self.n_layers: int = config["n_layers"]  # LightGCN steps
        self.reg_weight: float = config["reg_weight"]  # EmbLoss weight on the online tables
        self.cl_weight: float = config["cl_weight"]  # weight of the modality alignment terms
        self.dropout: float = config["dropout"]  # dropout ratio that makes the target views
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard per modality

        # load dataset info
        modal = self.load_features(config, dataset)
        self.modalities = modal.names

        # define layers and loss
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_id_embedding = nn.Embedding(self.n_items, self.embedding_size)
        self.predictor = nn.Linear(self.embedding_size, self.embedding_size)  # f_p
        self.encoders = self.modality_encoders(modal, self.modalities, self.feature_norm, self.embedding_size)  # T_m
        self.reg_loss = EmbLoss()

        # generate intermediate data
        interactions = dedup_interactions(dataset.inter_matrix(form="coo"))
        self.norm_adj = norm_adj_matrix(interactions, self.n_users, self.n_items).to(self.device)

        # parameters initialization (MMRec: xavier-uniform ID embeddings, xavier-normal
        # weights of f_p and T_m, PyTorch's default biases)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        nn.init.xavier_normal_(self.predictor.weight)
        for encoder in self.encoders.values():
            nn.init.xavier_normal_(encoder.projection.weight)

    def online(self) -> tuple[torch.Tensor, torch.Tensor]:
        """h_u, h_i: LightGCN's vectors, the item's ID embedding added again."""
        user_all, item_all = lightgcn_propagate(
            self.norm_adj, self.user_embedding.weight, self.item_id_embedding.weight, self.n_layers
        )
        return user_all, item_all + self.item_id_embedding.weight

    def forward(self) -> Embeddings:
        """Scoring vectors f_p(h) and, in ``views``, the online vectors h the loss reads."""
        h_u, h_i = self.online()
        return Embeddings(self.predictor(h_u), self.predictor(h_i), views={"user": h_u, "item": h_i})

    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, ...]:
        """(L_rec, reg_weight x EmbLoss, cl_weight x L_align); the negative item is unused."""
        user, item, _ = self.begin_batch(interaction)
        out = self.forward()
        h_u, h_i = out.views["user"], out.views["item"]
        with torch.no_grad():  # target views: dropped-out copies, no gradient
            target_u = F.dropout(h_u[user], self.dropout)
            target_i = F.dropout(h_i[item], self.dropout)
        rec = cosine_loss(out.user[user], target_i) + cosine_loss(out.item[item], target_u)
        align = h_u.new_zeros(())
        for encoder in self.encoders.values():
            e_m = encoder(item)  # T_m x_m of the batch's items (zero where the modality is missing)
            with torch.no_grad():
                target_m = F.dropout(e_m, self.dropout)
            online_m = self.predictor(e_m)
            has = encoder.mask[item]
            align = align + cosine_loss(online_m, target_i, has) + cosine_loss(online_m, target_m, has)
        reg = self.reg_weight * self.reg_loss(h_u, h_i).squeeze()
        return rec, reg, self.cl_weight * align
