r"""MMGCN: multi-modal graph convolution network.

Reference: Yinwei Wei, Xiang Wang, Liqiang Nie, Xiangnan He, Richang Hong and Tat-Seng
Chua, "MMGCN: Multi-modal Graph Convolution Network for Personalized Recommendation of
Micro-video", ACM MM 2019. Implementation follows MMRec (enoche/MMRec,
``src/models/mmgcn.py``), with the graph convolution written as a sparse matrix product
instead of torch_geometric's ``MessagePassing``:

* one branch per modality m on the user-item graph. Layer 0 input
  x = normalize([P_m ; M_m(X_m)]): a learned user preference P_m next to the item
  features X_m, projected by an MLP M_m to ``dim_latent`` (0 = raw features);
* each layer l: h = LeakyReLU(A (x W_l)) (A: mean aggregation over graph neighbours),
  x_hat = LeakyReLU(L_l x) + e_id (a user/item ID embedding shared by every branch),
  x = LeakyReLU(G_l [h ; x_hat]) (``concat``) or LeakyReLU(G_l h + x_hat);
* representation = mean over the modality branches; score = dot product;
* loss: BPR.

As in the authors' code (and MMRec's), the ID embeddings e_id and the user preferences P_m
are fixed at their random (Xavier-normal) initialisation: there they are plain tensors that
the optimizer never sees. Training them, as the paper's text reads, scored 7-8% lower on
validation and 10-11% lower on test on Scientific than keeping them fixed (docs/RESULTS.md,
Reference parity), so it was removed, and with it ``reg_weight``, whose penalty only touched those tensors. They are
persistent buffers, saved with the checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from recbole.model.init import xavier_normal_initialization
from torch import nn

from recbole_rlmm.graph import bipartite_adjacency, row_norm_adjacency, to_torch_sparse
from recbole_rlmm.graph.sparse import sparse_mm
from recbole_rlmm.model.abstract import EmbeddingRecommender, Embeddings
from recbole_rlmm.model.layers import RECBOLE_BPR_GAMMA, ModalityEncoder
from recbole_rlmm.model.layers import linear as stored_linear


class ModalityGCN(nn.Module):
    """One MMGCN branch: graph convolutions over [user preference ; item features]."""

    def __init__(
        self,
        n_users: int,
        feat_dim: int,
        dim_id: int,
        dim_latent: int,
        n_layers: int,
        concat: bool,
    ) -> None:
        super().__init__()
        self.concat = concat
        dim_in = dim_latent if dim_latent > 0 else feat_dim
        self.mlp: nn.Linear | None = nn.Linear(feat_dim, dim_latent) if dim_latent > 0 else None
        # P_m: fixed at its random initialisation, as in the authors' code
        self.register_buffer("preference", torch.empty(n_users, dim_in))
        self.convs = nn.ModuleList()  # W_l (bias-free, as torch_geometric's conv weight)
        self.linears = nn.ModuleList()  # L_l
        self.combines = nn.ModuleList()  # G_l
        for layer in range(n_layers):
            width = dim_in if layer == 0 else dim_id
            self.convs.append(nn.Linear(width, width, bias=False))
            self.linears.append(nn.Linear(width, dim_id))
            self.combines.append(nn.Linear(width + dim_id if concat else width, dim_id))

    def forward(
        self, encoder: ModalityEncoder, id_embedding: torch.Tensor, adj: torch.Tensor
    ) -> torch.Tensor:
        """Representation of every user and item (n_users + n_items, dim_id)."""
        features, mask = encoder.features, encoder.mask
        content = stored_linear(self.mlp, features) if self.mlp is not None else encoder.dense()
        content = content * mask.unsqueeze(1)  # items without this modality carry no content
        x = F.normalize(torch.cat([self.preference, content], dim=0))
        for conv, linear, combine in zip(self.convs, self.linears, self.combines, strict=True):
            h = F.leaky_relu(sparse_mm(adj, conv(x)))
            x_hat = F.leaky_relu(linear(x)) + id_embedding
            x = F.leaky_relu(
                combine(torch.cat([h, x_hat], dim=1)) if self.concat else combine(h) + x_hat
            )
        return x


class MMGCN(EmbeddingRecommender):
    """One graph-convolution branch per modality over the user-item graph, averaged."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size: int = config["embedding_size"]  # d: ID embedding / output size
        self.n_layers: int = config["n_layers"]  # graph convolution layers per branch
        self.dim_latent: int = config["dim_latent"]  # MLP size for features before layer 0; 0 = raw
        self.concat: bool = config["concat"]  # combine [h ; x_hat] (True) or h + x_hat (False)
        self.aggr: str = config["aggr"]  # neighbour aggregation: mean | add
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard per modality

        # load dataset info
        modal = self.load_features(config, dataset)
        self.modalities = modal.names
        self.encoders = self.modality_encoders(modal, self.modalities, self.feature_norm)
        interactions = dataset.inter_matrix(form="coo").astype("float32")

        # define layers and loss
        # e_id of every user and item: fixed at its random initialisation, as in the authors' code
        self.register_buffer("id_embedding", torch.empty(self.n_users + self.n_items, self.embedding_size))
        self.branches = nn.ModuleDict(
            {
                m: ModalityGCN(
                    self.n_users,
                    self.encoders[m].in_dim,
                    self.embedding_size,
                    self.dim_latent,
                    self.n_layers,
                    self.concat,
                )
                for m in self.modalities
            }
        )

        # generate intermediate data: the user-item graph, both directions, no self-loops
        if self.aggr == "mean":
            adj = row_norm_adjacency(interactions, self.n_users, self.n_items, self_loops=False)
        else:
            adj = to_torch_sparse(bipartite_adjacency(interactions, self.n_users, self.n_items))
        self.adj = adj.to(self.device)

        # parameters initialization (MMRec: xavier-normal everywhere)
        self.apply(xavier_normal_initialization)
        nn.init.xavier_normal_(self.id_embedding)
        for branch in self.branches.values():
            nn.init.xavier_normal_(branch.preference)

    def branch_outputs(self) -> dict[str, torch.Tensor]:
        """Each modality branch's (n_users + n_items, d) representation."""
        return {
            m: branch(self.encoders[m], self.id_embedding, self.adj)
            for m, branch in self.branches.items()
        }

    def forward(self) -> Embeddings:
        representation = torch.stack(list(self.branch_outputs().values())).mean(dim=0)
        user_all, item_all = torch.split(representation, [self.n_users, self.n_items])
        return Embeddings(user_all, item_all)

    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor]:
        """(BPR,): the reference's squared-embedding penalty falls on fixed tensors only."""
        user, pos_item, neg_item = self.begin_batch(interaction)
        bpr, _ = self.batch_bpr(self.forward(), user, pos_item, neg_item, gamma=RECBOLE_BPR_GAMMA)
        return (bpr,)
