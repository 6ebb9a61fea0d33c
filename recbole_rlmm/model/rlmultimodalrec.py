r"""RLMultimodalRec: gated multimodal graph learning for personalized recommendation.

Reference: "Gated Multimodal Graph Learning for Personalized Recommendation",
arXiv:2506.00107. Only the abstract is public; the design below follows it and the
project's specification (see README, "How the model maps to the paper"):

* per modality m with item features X_m: p_m = X_m W_m + b_m (a linear map to d);
* a learned gate balances the modalities per item: for two modalities
  g = sigmoid([p_a ; p_b] W_g + b_g) (one value per dimension, or one per item) and
  f = g * p_a + (1 - g) * p_b; for N modalities a per-dimension softmax over N scores;
  modalities an item lacks get weight 0, and an item with none has f = 0;
* ``fusion_stage: early``: item layer-0 embedding = ID embedding + content_scale * f, so
  content is propagated; ``late``: f is added to the propagated item embedding;
* LightGCN over the symmetric-normalised training user-item graph, ``n_layers`` steps,
  final embedding = mean of layers 0..n_layers; score = dot product; BPR loss plus
  ``reg_weight`` x L2 of the batch's layer-0 embeddings.

Extensions, each a config key (docs/MODELS.md): gated frozen kNN item graphs and
degree-sensitive edge dropout (on by default, chosen on validation data); content
alignment (``align_weight``), XSimGCL's contrast (``cl_weight``), a co-occurrence user graph
(``user_graph_k``) and deeper item graphs (``item_graph_layers``), off by default.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from recbole.model.init import xavier_uniform_initialization
from recbole.model.loss import BPRLoss, EmbLoss
from torch import nn

from recbole_rlmm.features import (
    FeatureFileError,
    ModalityFeatures,
    load_modalities,
    normalize_features,
)
from recbole_rlmm.graph import norm_adj_matrix
from recbole_rlmm.mmgraph import (
    cooccurrence_knn_edges,
    dedup_interactions,
    edge_norm,
    info_nce,
    knn_graph_edges,
    lightgcn_layers,
    prune_edges,
)
from recbole_rlmm.model.abstract import EmbeddingRecommender

FUSIONS = ("gate", "sum", "concat", "image", "text", "none")
GATE_TYPES = ("vector", "scalar")
FUSION_STAGES = ("early", "late")


class RLMultimodalRec(EmbeddingRecommender):
    """Gated image/text fusion + ID embedding, propagated by a LightGCN, trained with BPR."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size: int = config["embedding_size"]  # d, size of every embedding
        self.n_layers: int = config["n_layers"]  # LightGCN propagation steps
        self.reg_weight: float = config["reg_weight"]  # L2 weight on batch layer-0 embeddings
        self.fusion: str = config["fusion"]  # gate | sum | concat | image | text | none
        self.gate_type: str = config["gate_type"]  # vector (per dimension) | scalar (per item)
        self.fusion_stage: str = config["fusion_stage"]  # early (before propagation) | late
        self.modality_dropout: float = config["modality_dropout"]  # dropout on projections p_m
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard (per modality)
        self.content_scale_init: float = config["content_scale"]  # initial weight of f
        self.learn_content_scale: bool = config["learn_content_scale"]
        self.proj_reg_weight: float = config["proj_reg_weight"]  # L2 on projection weights
        self.content_bpr_weight: float = config["content_bpr_weight"]  # BPR on u . f alone
        self.item_graph_k: int = config["item_graph_k"]  # 0 = off; >0: gated kNN item graphs
        self.item_graph_weight: float = config["item_graph_weight"]  # weight of their smoothing
        self.item_graph_layers: int = config["item_graph_layers"]  # steps on the item graphs
        # >0: cold items lean more on their content neighbours, weight ~ (median / degree)^p
        self.item_graph_degree_power: float = config["item_graph_degree_power"]
        self.user_graph_k: int = config["user_graph_k"]  # 0 = off; >0: co-occurrence user graph
        self.user_graph_weight: float = config["user_graph_weight"]  # weight of its smoothing
        self.cl_weight: float = config["cl_weight"]  # 0 = off; weight of the contrastive loss
        self.cl_noise: float = config["cl_noise"]  # XSimGCL perturbation size per layer
        self.cl_temperature: float = config["cl_temperature"]  # InfoNCE temperature
        self.align_weight: float = config["align_weight"]  # 0 = off; content-to-item InfoNCE
        self.edge_dropout: float = config["edge_dropout"]  # share of user-item edges pruned/epoch
        self._check_options()

        # load dataset info
        self.interaction_matrix = dataset.inter_matrix(form="coo").astype("float32")
        modal = load_modalities(config, dataset) if self.fusion != "none" else ModalityFeatures()
        self.modalities: list[str] = self._used_modalities(config, modal.names)
        self.coverage: dict[str, float] = modal.coverage()  # items with each modality

        # define layers and loss
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)
        self.projections = nn.ModuleDict()
        for m in self.modalities:
            feats = normalize_features(modal.features[m], modal.masks[m], self.feature_norm)
            self.register_buffer(f"feat_{m}", feats, persistent=False)
            self.register_buffer(f"mask_{m}", modal.masks[m].clone(), persistent=False)
            self.projections[m] = nn.Linear(feats.shape[1], self.embedding_size)
        has_content = torch.zeros(self.n_items, dtype=torch.bool)
        for m in self.modalities:
            has_content |= modal.masks[m]
        self.register_buffer("_has_content", has_content, persistent=False)
        n_mod = len(self.modalities)
        self.gate: nn.Linear | None = None
        self.concat_proj: nn.Linear | None = None
        if self.fusion == "gate" and n_mod >= 2:
            out = 1 if self.gate_type == "scalar" else self.embedding_size
            # two modalities: one logit (sigmoid); N modalities: N logits (softmax)
            self.gate = nn.Linear(n_mod * self.embedding_size, out if n_mod == 2 else out * n_mod)
        if self.fusion == "concat" and n_mod >= 1:
            self.concat_proj = nn.Linear(n_mod * self.embedding_size, self.embedding_size)
        self.content_scale = nn.Parameter(
            torch.tensor(float(self.content_scale_init)), requires_grad=self.learn_content_scale
        )
        self.dropout = nn.Dropout(self.modality_dropout)
        self.mf_loss = BPRLoss()
        self.reg_loss = EmbLoss()

        # generate intermediate data
        self.norm_adj_matrix = norm_adj_matrix(
            self.interaction_matrix, self.n_users, self.n_items
        ).to(self.device)
        inter = dedup_interactions(self.interaction_matrix)  # binary, once for every graph below
        if self.edge_dropout > 0:
            edges = torch.from_numpy(np.vstack([inter.row, inter.col]).astype(np.int64))
            self.register_buffer("edge_index", edges, persistent=False)
            weights = edge_norm(edges, self.n_users, self.n_items)
            self.register_buffer("edge_weights", weights, persistent=False)
        self.pruned_adj: torch.Tensor | None = None  # this epoch's graph when edge_dropout > 0
        self._cl_view: tuple[torch.Tensor, torch.Tensor] | None = None  # XSimGCL's layer-1 view
        self.item_graphs: list[torch.Tensor] = []
        if self.item_graph_k > 0 and self.modalities:
            self.item_graphs = [g.to(self.device) for g in self._modality_item_graphs(modal)]
        item_degree = np.bincount(inter.col, minlength=self.n_items)
        self.register_buffer("item_graph_scale", self._item_graph_scale(item_degree), persistent=False)
        self.user_graph: torch.Tensor | None = None
        if self.user_graph_k > 0:
            graph = cooccurrence_knn_edges(inter, self.user_graph_k)
            self.user_graph = graph.to_sparse().to(self.device)

        # parameters initialization
        self.apply(xavier_uniform_initialization)

    # ------------------------------------------------------------------ set-up helpers
    def _check_options(self) -> None:
        for key, value, allowed in (
            ("fusion", self.fusion, FUSIONS),
            ("gate_type", self.gate_type, GATE_TYPES),
            ("fusion_stage", self.fusion_stage, FUSION_STAGES),
        ):
            if value not in allowed:
                raise ValueError(f"RLMultimodalRec: {key}={value!r}; choose one of {', '.join(allowed)}.")
        for key, count in (
            ("n_layers", self.n_layers),
            ("item_graph_k", self.item_graph_k),
            ("item_graph_layers", self.item_graph_layers),
            ("user_graph_k", self.user_graph_k),
        ):
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"RLMultimodalRec: {key} must be an integer >= 0; got {count!r}.")
        if not 0.0 <= self.edge_dropout < 1.0:
            raise ValueError(
                f"RLMultimodalRec: edge_dropout (share of user-item edges pruned) must lie in "
                f"[0, 1); got {self.edge_dropout}."
            )

    def _used_modalities(self, config: Any, available: list[str]) -> list[str]:
        if self.fusion == "none":
            return []
        if not available:
            raise FeatureFileError(
                f"RLMultimodalRec with fusion={self.fusion!r} needs item features, but dataset "
                f"'{config['dataset']}' has no `modalities` configured. Add e.g. "
                f"`modalities: {{image: {config['dataset']}.image.npy, text: {config['dataset']}.text.npy}}` "
                f"to the dataset yaml (files are made by `recbole-rlmm prepare`), or run ID-only "
                f"with --fusion=none."
            )
        if self.fusion in ("image", "text"):
            if self.fusion not in available:
                raise FeatureFileError(
                    f"fusion={self.fusion!r} uses only the '{self.fusion}' modality, but the config "
                    f"lists {available}. Add a '{self.fusion}' entry to `modalities`."
                )
            return [self.fusion]
        return available

    @torch.no_grad()
    def _item_graph_scale(self, item_degree: np.ndarray) -> torch.Tensor:
        """Per-item weight of the item-graph smoothing, (n_items, 1).

        ``item_graph_weight`` for every item when ``item_graph_degree_power`` is 0; else
        ``item_graph_weight * (median(d + 1) / (d_i + 1)) ** p`` with d_i the item's number of
        training interactions: an item of median degree keeps the base weight, colder items
        listen more to their content neighbours and popular items less.
        """
        base = torch.full((self.n_items, 1), float(self.item_graph_weight))
        if self.item_graph_degree_power == 0:
            return base
        degree = torch.from_numpy(item_degree).float() + 1.0
        median = degree[1:].median()  # id 0 is RecBole's padding item
        return base * (median / degree).pow(self.item_graph_degree_power).unsqueeze(1)

    @torch.no_grad()
    def _modality_item_graphs(self, modal: ModalityFeatures) -> list[torch.Tensor]:
        """Frozen kNN item-item graph per used modality (FREEDOM's construction).

        Neighbours come from the cosine similarity of the *raw* features, as in FREEDOM and
        LATTICE: the encoders' own geometry (sentence embeddings are made for cosine), not
        the per-dimension standardisation applied before the projections.
        """
        return [
            knn_graph_edges(modal.features[m], self.item_graph_k, modal.masks[m], weighted=False).to_sparse()
            for m in self.modalities
        ]

    # ------------------------------------------------------------------ content fusion
    def _projected(self, train: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
        """p_m for every used modality (zero for missing items) and the (N, n_items) mask."""
        projected, masks = [], []
        for m in self.modalities:
            mask = getattr(self, f"mask_{m}")
            p = self.projections[m](getattr(self, f"feat_{m}"))
            if train:
                p = self.dropout(p)
            projected.append(p * mask.unsqueeze(1))
            masks.append(mask)
        return projected, torch.stack(masks) if masks else torch.zeros(0, self.n_items, dtype=torch.bool)

    def _gate_weights(self, projected: list[torch.Tensor], masks: torch.Tensor) -> torch.Tensor:
        """Modality weights (N, n_items, d or 1) that sum to 1 over the modalities an item has."""
        n_mod = len(projected)
        if self.fusion == "gate" and self.gate is not None:
            logits = self.gate(torch.cat(projected, dim=1))
            if n_mod == 2:
                g = torch.sigmoid(logits)
                weights = torch.stack([g, 1.0 - g])
            else:
                weights = torch.softmax(logits.view(self.n_items, n_mod, -1).transpose(0, 1), dim=0)
        else:
            weights = torch.ones(n_mod, self.n_items, 1, device=masks.device)
        if self.fusion == "gate":
            weights = weights * masks.unsqueeze(2)
            total = weights.sum(dim=0, keepdim=True)
            weights = torch.where(total > 0, weights / total.clamp_min(1e-12), torch.zeros_like(weights))
        else:
            weights = weights * masks.unsqueeze(2)
        return weights

    def _content(self, train: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fused content f (n_items, d), each modality's share (N, n_items, 1) and has-any mask.

        Shares sum to 1 over the modalities an item has (0 for an item with none): the gate's
        mean value per item for ``gate``, equal shares for the other fusions.
        """
        projected, masks = self._projected(train)
        has_any = masks.any(dim=0)
        if self.fusion == "concat":
            fused = self.concat_proj(torch.cat(projected, dim=1)) * has_any.unsqueeze(1)
            weights = masks.unsqueeze(2).float()
        else:
            weights = self._gate_weights(projected, masks)
            fused = (weights * torch.stack(projected)).sum(dim=0)
        shares = weights.mean(dim=2, keepdim=True)
        shares = shares / shares.sum(dim=0, keepdim=True).clamp_min(1e-12)
        return fused, shares, has_any

    def fused_content(self, train: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused content f (n_items, d) and the mask of items that have any modality."""
        if not self.modalities:
            empty = torch.zeros(self.n_items, self.embedding_size, device=self.item_embedding.weight.device)
            return empty, torch.zeros(self.n_items, dtype=torch.bool, device=empty.device)
        fused, _, has_any = self._content(train)
        return fused, has_any

    @torch.no_grad()
    def gate_values(self, per_dimension: bool = False) -> dict[str, torch.Tensor]:
        """Each item's share given to each modality (0 where the item lacks it).

        Returns ``{modality: tensor}``: (n_items,) shares averaged over dimensions, or
        (n_items, d) when ``per_dimension``. For ``fusion`` other than ``gate`` the shares
        are the fixed ones the fusion implies (equal for ``sum``, 1 for a single modality).
        """
        if not self.modalities or self.fusion == "concat":
            return {}
        # train=False: no dropout, and no train()/eval() toggling (train() re-prunes the graph)
        projected, masks = self._projected(train=False)
        weights = self._gate_weights(projected, masks)
        if self.fusion != "gate":
            total = weights.sum(dim=0, keepdim=True)
            weights = torch.where(total > 0, weights / total.clamp_min(1e-12), torch.zeros_like(weights))
        weights = weights.expand(-1, -1, self.embedding_size)
        return {
            m: (weights[i] if per_dimension else weights[i].mean(dim=1)).cpu()
            for i, m in enumerate(self.modalities)
        }

    # ------------------------------------------------------------------ propagation
    def get_ego_embeddings(
        self, train: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Layer-0 user and item embeddings, the fused content f and the modality shares."""
        item_e = self.item_embedding.weight
        if not self.modalities:
            return self.user_embedding.weight, item_e, None, None
        fused, shares, _ = self._content(train)
        if self.fusion_stage == "early":
            item_e = item_e + self.content_scale * fused
        return self.user_embedding.weight, item_e, fused, shares

    def train(self, mode: bool = True) -> RLMultimodalRec:
        """RecBole's trainer calls ``model.train()`` once per epoch: prune a new graph then."""
        if mode:
            self.pruned_adj = None
        return super().train(mode)

    def _user_item_graph(self, train: bool) -> torch.Tensor:
        """The normalised training graph, or this epoch's pruned one (``edge_dropout``)."""
        if not (train and self.edge_dropout > 0):
            return self.norm_adj_matrix
        if self.pruned_adj is None:
            with torch.no_grad():
                self.pruned_adj = prune_edges(
                    self.edge_index, self.edge_weights, self.edge_dropout, self.n_users, self.n_items
                )
        return self.pruned_adj

    @staticmethod
    def _smooth(graph: torch.Tensor, x: torch.Tensor, steps: int) -> torch.Tensor:
        for _ in range(steps):
            x = torch.sparse.mm(graph, x)
        return x

    def forward(self, train: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        user_e, item_e, fused, shares = self.get_ego_embeddings(train=train)
        self._ego = (user_e, item_e)
        self._fused_train = fused
        adj = self._user_item_graph(train)
        # XSimGCL: perturbed layers while training, layer 1 is the contrastive view
        noisy = train and self.cl_weight > 0
        layers = lightgcn_layers(adj, user_e, item_e, self.n_layers, self.cl_noise if noisy else 0.0)
        sizes = [self.n_users, self.n_items]
        user_all, item_all = torch.split(torch.stack(layers, dim=1).mean(dim=1), sizes)
        self._cl_view = torch.split(layers[min(1, self.n_layers)], sizes) if noisy else None
        if self.fusion_stage == "late" and fused is not None:
            item_all = item_all + self.content_scale * fused
        if self.item_graphs:
            # gated item-item propagation: sum_m share_m(i) * (S_m item_e)(i), so the gate
            # decides per item which modality's neighbours it listens to
            smoothed = sum(
                shares[i] * self._smooth(graph, item_e, self.item_graph_layers)
                for i, graph in enumerate(self.item_graphs)
            )
            item_all = item_all + self.item_graph_scale * smoothed
        if self.user_graph is not None:
            # DRAGON-style user-user smoothing: users who share items share preferences
            user_all = user_all + self.user_graph_weight * torch.sparse.mm(self.user_graph, user_e)
        return user_all, item_all

    # ------------------------------------------------------------------ RecBole API
    def calculate_loss(self, interaction: Any) -> torch.Tensor:
        user, pos_item, neg_item = self.pairwise_batch(interaction)

        user_all, item_all = self.forward(train=True)
        u_e, pos_e, neg_e = user_all[user], item_all[pos_item], item_all[neg_item]
        pos_scores = torch.mul(u_e, pos_e).sum(dim=1)
        neg_scores = torch.mul(u_e, neg_e).sum(dim=1)
        loss = self.mf_loss(pos_scores, neg_scores)

        # regularise the batch's layer-0 embeddings (ID + content for early fusion), as
        # RecBole's LightGCN does for its ID embeddings
        user_ego, item_ego = self._ego
        loss = loss + self.reg_weight * self.reg_loss(
            user_ego[user], item_ego[pos_item], item_ego[neg_item]
        )
        if self.content_bpr_weight > 0 and self._fused_train is not None:
            # the fused content must rank on its own (FREEDOM's auxiliary loss, on the gate's
            # output): gives the gate and projections a direct training signal
            f = self._fused_train
            loss = loss + self.content_bpr_weight * self.mf_loss(
                torch.mul(u_e, f[pos_item]).sum(dim=1), torch.mul(u_e, f[neg_item]).sum(dim=1)
            )
        if self._cl_view is not None:
            # XSimGCL's cross-layer contrast on the batch's distinct users and items
            view_u, view_i = self._cl_view
            users, items = torch.unique(user), torch.unique(pos_item)
            loss = loss + self.cl_weight * (
                info_nce(user_all[users], view_u[users], self.cl_temperature)
                + info_nce(item_all[items], view_i[items], self.cl_temperature)
            )
        if self.align_weight > 0 and self._fused_train is not None:
            # align the gated content of the batch's items with their collaborative vectors
            items = torch.unique(pos_item)
            items = items[self._has_content[items]]
            if len(items) > 1:
                loss = loss + self.align_weight * info_nce(
                    item_all[items], self._fused_train[items], self.cl_temperature
                )
        if self.proj_reg_weight > 0 and self.modalities:
            loss = loss + self.proj_reg_weight * sum(
                p.weight.pow(2).sum() for p in self.projections.values()
            )
        return loss
