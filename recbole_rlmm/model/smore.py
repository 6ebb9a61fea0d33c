r"""SMORE: spectrum-based modality representation fusion graph convolutional network.

Reference: Rongqing Kenneth Ong and Andy W. H. Khong, "Spectrum-based Modality Representation
Fusion Graph Convolutional Network for Multimodal Recommendation", WSDM 2025
(arXiv:2412.14978). Implementation follows the authors' code (kennethorq/SMORE,
``src/models/smore.py``; MMRec holds the same file), which extends MGCN
(:mod:`recbole_rlmm.model.mgcn`):

* frozen item-item graph per modality: weighted cosine kNN of the raw features (itself
  included), S_m = D^-1/2 S D^-1/2, with ``image_knn_k`` / ``text_knn_k`` neighbours (``knn_k``
  for a modality of another name); the fusion graph S_f keeps every edge of any S_m with the
  largest of its values (max-pooling);
* spectrum: f_m = T_m x_m (linear map to d), F_m = rFFT(f_m) over the d dimensions
  (orthonormal); uni-modal denoising c_m = irFFT(F_m * W_m), cross-modal fusion
  c_f = irFFT(prod_m F_m * W_f), with learned complex filters W (d/2 + 1 frequencies);
* purifier: e~_x = e_item * sigmoid(G_x c_x + b_x) for x in {modalities, fusion};
* user-item view: LightGCN (``n_ui_layers`` steps, mean of layers) on D^-1/2 A D^-1/2 -> E_id;
* item-item views: h_x = S_x^L e~_x (``n_layers`` steps), users R^ h_x (R^ the user-item
  block of D^-1/2 A D^-1/2), E_x = [R^ h_x ; h_x];
* modality-aware preference: A_m = softmax over dimensions of Q_m(E_f), Q_m(x) =
  W2 tanh(W1 x + b1); P_x = dropout(sigmoid(W_x E_id + b_x)) (``dropout``);
  E_side = mean(P_m * A_m * E_m for each m, P_f * E_f);
* final = E_id + E_side; the loss is MGCN's: BPR + ``reg_weight`` x L2 / (2 B)
  + ``cl_weight`` x InfoNCE(E_side, E_id) of the batch's positive items and users (T = 0.2).

Items lacking modality m: F_m is left out of the fusion product (an item with no modality
has no fusion spectrum), E_m is zero and the mean runs over the views the item has.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recbole_rlmm.graph import EdgeGraph, dedup_interactions, norm_adj_matrix, user_item_block
from recbole_rlmm.graph.sparse import sparse_mm
from recbole_rlmm.model.layers import propagate, sigmoid_gate
from recbole_rlmm.model.mgcn import ViewFusionRecommender, masked_mean, node_masks

#: The view that fuses every modality.
FUSION = "fusion"


def max_pool_graphs(graphs: list[EdgeGraph]) -> EdgeGraph:
    """The union of the graphs' edges, each with the largest of its values."""
    size = graphs[0].size
    merged = EdgeGraph.cat([g.detach() for g in graphs])
    keys, inverse = torch.unique(merged.rows * size + merged.cols, return_inverse=True)
    values = merged.values.new_full((len(keys),), float("-inf"))
    values = values.scatter_reduce(0, inverse, merged.values, reduce="amax", include_self=True)
    return EdgeGraph(keys // size, keys % size, values, size)


class SMORE(ViewFusionRecommender):
    """MGCN's views with spectrum-domain denoising and a spectrum-fused modality view."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size: int = config["embedding_size"]  # d of ID embeddings and of T_m outputs
        self.image_knn_k: int = config["image_knn_k"]  # neighbours in the image graph
        self.text_knn_k: int = config["text_knn_k"]  # neighbours in the text graph
        self.knn_k: int = config["knn_k"]  # neighbours in the graph of any other modality
        self.n_layers: int = config["n_layers"]  # item-item graph steps
        self.n_ui_layers: int = config["n_ui_layers"]  # LightGCN steps
        self.reg_weight: float = config["reg_weight"]  # L2 on the batch's final vectors
        self.cl_weight: float = config["cl_weight"]  # weight of the InfoNCE between views (SMORE: cl_loss)
        self.dropout_rate: float = config["dropout"]  # dropout on the preference gates (SMORE: dropout_rate)
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard per modality

        # load dataset info
        modal = self.load_features(config, dataset)
        self.modalities = modal.names
        self.views = [*self.modalities, FUSION]
        d = self.embedding_size

        # define layers
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        self.encoders = self.modality_encoders(modal, self.modalities, self.feature_norm, d)  # T_m
        self.purifiers = nn.ModuleDict({x: sigmoid_gate(d) for x in self.views})  # G_x, b_x
        self.preferences = nn.ModuleDict({x: sigmoid_gate(d) for x in self.views})  # W_x, b_x
        self.queries = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, d, bias=False)) for m in self.modalities}
        )
        # complex filters over the d/2 + 1 frequencies (real and imaginary parts), randn as in SMORE
        self.filters = nn.ParameterDict({x: nn.Parameter(torch.randn(1, d // 2 + 1, 2)) for x in self.views})
        self.dropout = nn.Dropout(p=self.dropout_rate)

        # generate intermediate data
        interactions = dedup_interactions(dataset.inter_matrix(form="coo"))
        self.norm_adj = norm_adj_matrix(interactions, self.n_users, self.n_items).to(self.device)
        self.R = user_item_block(self.norm_adj, self.n_users, self.n_items)
        training, scoring = {}, {}
        for m in self.modalities:
            encoder = self.encoders[m]
            train_m, score_m = self.knn_graphs([encoder.features], [encoder.mask], self.modality_knn_k(m), weighted=True)
            training[m], scoring[m] = train_m[0], score_m[0]
        self.item_graphs = self._sparse_graphs(training)  # S_m and S_f over warm items
        self.scoring_item_graphs = (
            self.item_graphs
            if all(scoring[m] is training[m] for m in self.modalities)
            else self._sparse_graphs(scoring)
        )

        # parameters initialization (SMORE: xavier-uniform ID embeddings, PyTorch's default layers)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)

    def modality_knn_k(self, modality: str) -> int:
        """Neighbours per item in modality ``modality``'s graph."""
        return {"image": self.image_knn_k, "text": self.text_knn_k}.get(modality, self.knn_k)

    def _sparse_graphs(self, graphs: dict[str, EdgeGraph]) -> dict[str, torch.Tensor]:
        """S_m for each modality and the max-pooled S_f, as sparse tensors."""
        out = {m: g.to_sparse().to(self.device) for m, g in graphs.items()}
        out[FUSION] = max_pool_graphs(list(graphs.values())).to_sparse().to(self.device)
        return out

    # ------------------------------------------------------------------ spectrum
    def spectrum(self) -> dict[str, torch.Tensor]:
        """c_m = irFFT(F_m W_m) per modality and c_f = irFFT(prod_m F_m W_f)."""
        d = self.embedding_size
        spectra = {m: torch.fft.rfft(self.encoders[m](), dim=1, norm="ortho") for m in self.modalities}
        out = {
            m: torch.fft.irfft(f * torch.view_as_complex(self.filters[m]), n=d, dim=1, norm="ortho")
            for m, f in spectra.items()
        }
        fused, has_any = None, None
        for m, f in spectra.items():
            mask = self.encoders[m].mask.unsqueeze(1)
            f = torch.where(mask, f, torch.ones_like(f))  # a missing modality drops out of the product
            fused = f if fused is None else fused * f
            has_any = mask if has_any is None else has_any | mask
        fused = fused * has_any
        out[FUSION] = torch.fft.irfft(fused * torch.view_as_complex(self.filters[FUSION]), n=d, dim=1, norm="ortho")
        return out

    # ------------------------------------------------------------------ views
    def item_views(self) -> dict[str, torch.Tensor]:
        """E_x = [R^ h_x ; h_x], h_x = S_x^L (e_item * sigmoid(G_x c_x + b_x))."""
        graphs = self.item_graphs if self.training else self.scoring_item_graphs
        masks = {m: self.encoders[m].mask for m in self.modalities}
        masks[FUSION] = torch.stack(list(masks.values())).any(dim=0)
        views = {}
        for x, c in self.spectrum().items():
            purified = self.item_id_embedding.weight * self.purifiers[x](c)
            h = propagate(graphs[x], purified, self.n_layers) * masks[x].unsqueeze(1)
            views[x] = torch.cat([sparse_mm(self.R, h), h])
        return views

    def fuse(self, views: dict[str, torch.Tensor], content: torch.Tensor) -> torch.Tensor:
        """E_side = mean(P_m * softmax(Q_m(E_f)) * E_m, P_f * E_f)."""
        present = node_masks([self.encoders[m].mask for m in self.modalities], self.n_users)
        fusion = views[FUSION]
        parts = [
            self.dropout(self.preferences[m](content)) * torch.softmax(self.queries[m](fusion), dim=-1) * views[m]
            for m in self.modalities
        ]
        parts.append(self.dropout(self.preferences[FUSION](content)) * fusion)
        everyone = torch.ones_like(present[:1])
        return masked_mean(parts, torch.cat([present, everyone]))
