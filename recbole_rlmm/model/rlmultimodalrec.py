r"""RLMultimodalRec: gated multimodal graph learning for personalized recommendation.

Reference: "Gated Multimodal Graph Learning for Personalized Recommendation",
arXiv:2506.00107. Only the abstract is public; the model below follows it and the
project's specification (docs/RLMULTIMODALREC.md maps each part to the paper):

1. **Modality encoders.** For each modality m with item features X_m (normalised per
   ``feature_norm``): p_m = X_m W_m + b_m, a linear map to d = ``embedding_size``.
2. **Adaptive gate.** Two modalities: g = sigmoid([p_a ; p_b] W_g + b_g), one value per
   dimension (``gate_type: vector``) or per item (``scalar``), and f = g * p_a + (1 - g) * p_b;
   N modalities: a per-dimension softmax over N logits. Modalities an item lacks get weight
   0; an item with none has f = 0. ``fusion`` replaces the gate for ablations: ``sum``,
   ``concat``, a single modality (``image``, ``text``) or ``none`` (no content: LightGCN).
3. **Item encoding.** Layer-0 item embedding = ID embedding + ``content_scale`` * f
   (``fusion_stage: early``), or f added after propagation (``late``).
4. **Graph-based user modelling.** LightGCN over the symmetric-normalised training graph,
   ``n_layers`` steps, final embedding = mean of layers 0..n_layers; score = dot product.
5. **Objective.** BPR plus ``reg_weight`` x L2 of the batch's layer-0 embeddings.
6. **Cold items** (no training interaction) have no learned ID. For scoring, an item with
   content borrows ``sum_m share_m(c) (B_m E)(c) + content_scale f(c)``: the final vectors of
   its ``cold_borrow_k`` most content-similar warm items per modality, mixed by its gate
   shares, plus its own content; every cold item's score is shifted by ``cold_offset``, which
   our runner chooses on validation (``cold_offset: auto``; cold items rank last until then).

Extensions chosen on validation data (docs/RLMULTIMODALREC.md, docs/RESULTS.md):

* **Gated item graphs** (``item_graph_k``, ``item_graph_weight``): a frozen kNN item graph
  S_m per modality from the raw features; the final item vector gains
  ``h(i) = item_graph_weight * sum_m share_m(i) (S_m X_m)(i)`` with the gate's own shares, where
  X_m is the item's ID embedding gated by its own content, ``E_id * sigmoid(W_m p_m + b_m)``
  (MGCN's behaviour purifier, ``item_graph_purify``; off: the layer-0 vectors E_0), and each
  user gains the same vectors of their items, ``(R^ h)(u)``, with LightGCN's first-layer
  weights (MGCN's user side view, ``item_graph_users``).
* **Edge dropout** (``edge_dropout``): FREEDOM's degree-sensitive pruning of the training
  graph, resampled every epoch.
* **Content alignment** (``align_weight``, ``align_temperature``; off by default, in the
  tuning grid): InfoNCE between each batch item's fused content f and its final vector.
* **Content BPR** (``content_bpr_weight``; off by default, in the tuning space): FREEDOM's
  auxiliary loss, the BPR of each batch triple scored by the user's final vector against each
  modality's projection p_m of the two items, summed over modalities.

With ``fusion: none`` and ``edge_dropout: 0`` the model is RecBole's LightGCN exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from recbole.model.init import xavier_uniform_initialization
from recbole.model.loss import EmbLoss
from torch import nn

from recbole_rlmm.data.features import FeatureFileError, ModalityFeatures, configured_modalities
from recbole_rlmm.graph import EdgeDropout, norm_adj_matrix, user_item_block
from recbole_rlmm.graph.knn import knn_neighbours
from recbole_rlmm.graph.sparse import sparse_mm
from recbole_rlmm.keys.choices import MIXING_FUSIONS
from recbole_rlmm.model.abstract import EmbeddingRecommender, Embeddings, coverage_text
from recbole_rlmm.model.layers import (
    RECBOLE_BPR_GAMMA,
    GatedFusion,
    bpr_loss,
    dot_scores,
    info_nce,
    lightgcn_propagate,
    sigmoid_gate,
)

#: ``cold_offset`` before it is chosen on validation: cold items rank after every warm item.
COLD_LAST = -1.0e4


class RLMultimodalRec(EmbeddingRecommender):
    """Gated image/text fusion + ID embedding, propagated by a LightGCN, trained with BPR."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)

        # load parameters info (each key's meaning, range and default: recbole_rlmm/keys/schema.py)
        self.embedding_size: int = config["embedding_size"]
        self.n_layers: int = config["n_layers"]
        self.reg_weight: float = config["reg_weight"]
        self.fusion: str = config["fusion"]
        self.gate_type: str = config["gate_type"]
        self.fusion_stage: str = config["fusion_stage"]
        self.feature_norm: str = config["feature_norm"]
        self.content_scale: float = config["content_scale"]
        self.item_graph_k: int = config["item_graph_k"]
        self.item_graph_weight: float = config["item_graph_weight"]
        self.item_graph_purify: bool = config["item_graph_purify"]
        self.item_graph_users: bool = config["item_graph_users"]
        self.edge_dropout: float = config["edge_dropout"]
        self.align_weight: float = config["align_weight"]
        self.align_temperature: float = config["align_temperature"]
        self.content_bpr_weight: float = config["content_bpr_weight"]
        self.cold_borrow_k: int = config["cold_borrow_k"]
        cold_offset = config["cold_offset"]

        # load dataset info
        self.interaction_matrix = dataset.inter_matrix(form="coo").astype("float32")
        self._check_single_modality(config)
        used = self.modalities_read(config)  # our runner's plan keeps only modalities with signal
        modal = (
            ModalityFeatures()  # ID only: no feature file is read
            if used == []
            else self.load_features(config, dataset, id_only="train ID-only with --fusion=none")
        )
        self.modalities: list[str] = modal.names  # the ones fusion uses
        self.dropped_modalities: list[str] = (
            [m for m in configured_modalities(config) if m not in self.modalities] if self.fusion in MIXING_FUSIONS else []
        )

        # define layers and loss
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)
        # 1. one encoder per modality: frozen features, mask, projection p_m = X_m W_m + b_m
        self.encoders = self.modality_encoders(
            modal, self.modalities, self.feature_norm, self.embedding_size
        )
        # 2. the gate (or the ablation's fusion); ``image``/``text`` sum a single modality
        mode = self.fusion if self.fusion in ("gate", "concat") else "sum"
        self.fusion_layer = GatedFusion(len(self.modalities), self.embedding_size, mode, self.gate_type)
        self.reg_loss = EmbLoss()

        # generate intermediate data
        self.norm_adj_matrix = norm_adj_matrix(
            self.interaction_matrix, self.n_users, self.n_items
        ).to(self.device)
        self.edge_sampler: EdgeDropout | None = (
            EdgeDropout(self.interaction_matrix, self.n_users, self.n_items, self.edge_dropout)
            if self.edge_dropout > 0
            else None
        )
        self.pruned_adj: torch.Tensor | None = None  # this epoch's graph when edge_dropout > 0
        # frozen kNN graph per modality, from the raw features' cosine similarity (FREEDOM's
        # and LATTICE's construction: the encoders' own geometry, not the standardised copy);
        # over warm items while training, with rows for cold items when scoring
        self.item_graphs: list[torch.Tensor] = []
        self.scoring_item_graphs: list[torch.Tensor] = []
        if self.item_graph_k > 0 and self.modalities:
            training, scoring = self.knn_graphs(
                [modal.features[m] for m in self.modalities],
                [modal.masks[m] for m in self.modalities],
                self.item_graph_k,
                weighted=False,
            )
            self.item_graphs = [g.to_sparse().to(self.device) for g in training]
            self.scoring_item_graphs = (
                self.item_graphs if scoring is training else [g.to_sparse().to(self.device) for g in scoring]
            )
        # the item graph's input per modality: ID * sigmoid(W_m p_m + b_m) (MGCN's purifier)
        self.purifiers = nn.ModuleList(
            [sigmoid_gate(self.embedding_size) for _ in self.modalities]
            if self.item_graph_purify and self.item_graphs
            else []
        )
        # ... and R^, the user-item block of the normalised training graph, for the users' share
        self.user_item_adj: torch.Tensor | None = (
            user_item_block(self.norm_adj_matrix, self.n_users, self.n_items)
            if self.item_graph_users and self.item_graphs
            else None
        )
        has_content = torch.zeros(self.n_items, dtype=torch.bool)
        for m in self.modalities:
            has_content |= modal.masks[m]
        self.register_buffer("has_content", has_content, persistent=False)
        # 6. cold items (no training interaction): a vector borrowed from content neighbours
        self.borrow_graphs: list[torch.Tensor] = []
        if self.modalities and self.cold_borrow_k > 0:
            self.borrow_graphs = [
                self.borrow_graph(modal.features[m], modal.masks[m]).to(self.device) for m in self.modalities
            ]
        cold = ~self.warm_items
        cold[0] = False  # RecBole's padding item
        self.register_buffer("cold_items", cold.nonzero().view(-1), persistent=False)
        # ... and their place among warm items: a score offset, chosen on validation by our runner
        # (``cold_offset: auto``); until then cold items rank after every warm item
        self.calibrate_cold = cold_offset == "auto" and len(self.cold_items) > 0
        self.cold_last = COLD_LAST
        offset = COLD_LAST if cold_offset == "auto" else float(cold_offset)
        self.register_buffer("cold_offset", torch.tensor(offset, dtype=torch.float32))

        # parameters initialization
        self.apply(xavier_uniform_initialization)

    # ------------------------------------------------------------------ set-up helpers
    @classmethod
    def modalities_read(cls, config: Any) -> list[str] | None:
        """``fusion: none`` reads no feature file, ``image``/``text`` only that one, the others
        ``use_modalities`` (None: every configured one)."""
        fusion = config["fusion"] if "fusion" in config else "gate"  # noqa: SIM401 (Config has no .get)
        if fusion == "none":
            return []
        if fusion in ("image", "text"):
            return [fusion]
        used = config["use_modalities"] if "use_modalities" in config else None  # noqa: SIM401
        return None if used is None else list(used)

    @classmethod
    def content_check_applies(cls, config: Any) -> bool:
        """Whether our runner's plan checks the modalities' signal for this configuration
        (``content_check`` on, a fusion that mixes modalities)."""
        fusion = config["fusion"] if "fusion" in config else "gate"  # noqa: SIM401
        return bool(config["content_check"]) and fusion in MIXING_FUSIONS

    def _check_single_modality(self, config: Any) -> None:
        if self.fusion in ("image", "text"):
            available = configured_modalities(config)
            if self.fusion not in available:
                raise FeatureFileError(
                    f"fusion={self.fusion!r} uses only the '{self.fusion}' modality, but dataset "
                    f"'{config['dataset']}' lists {available}. Add a '{self.fusion}' entry to "
                    f"`modalities`."
                )

    def content_summary(self) -> str:
        """Which fusion ran over which modalities, e.g. ``fusion: gate over image (94.7% of
        items), text (100%)`` or ``fusion: none (ID only)``, the modalities left out and how cold
        items are scored."""
        checked = f"left out: {', '.join(self.dropped_modalities)} (use_modalities)" if self.dropped_modalities else ""
        n_cold = len(self.cold_items)
        borrowed = f"borrowed from {self.cold_borrow_k} content neighbours" if self.borrow_graphs else "no borrowed vectors"
        offset = "score offset chosen on validation" if self.calibrate_cold else f"score offset {float(self.cold_offset):g}"
        cold = f"; {n_cold} cold items: {borrowed}, {offset}" if n_cold else ""
        if not self.modalities:
            dropped = " (no modality carries signal)" if self.dropped_modalities else ""
            return f"fusion: none (ID only){dropped}" + (f"; {checked}" if checked else "") + cold
        how = {"gate": f"gate ({self.gate_type})", "image": "image only", "text": "text only"}.get(self.fusion, self.fusion)
        used = {m: self.coverage[m] for m in self.modalities if m in self.coverage}
        return f"fusion: {how} over {coverage_text(used)}, {self.fusion_stage} stage" + (f"; {checked}" if checked else "") + cold

    # ------------------------------------------------------------------ 1-3. item content
    def project(self) -> tuple[list[torch.Tensor], torch.Tensor]:
        """p_m of every item for every used modality (zero where missing) and the masks (N, n_items)."""
        projected = [self.encoders[m]() for m in self.modalities]
        masks = [self.encoders[m].mask for m in self.modalities]
        return projected, torch.stack(masks) if masks else torch.zeros(0, self.n_items, dtype=torch.bool)

    def content(
        self, projected: tuple[list[torch.Tensor], torch.Tensor] | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Fused content f (n_items, d) and each modality's share (N, n_items, 1) from
        ``projected`` (:meth:`project`'s output; computed when not given); None, None without
        modalities."""
        if not self.modalities:
            return None, None
        return self.fusion_layer(*(projected if projected is not None else self.project()))

    @torch.no_grad()
    def gate_values(self, per_dimension: bool = False) -> dict[str, torch.Tensor]:
        """Each item's share given to each modality (0 where the item lacks it).

        Returns ``{modality: tensor}``: (n_items,) shares averaged over dimensions, or
        (n_items, d) when ``per_dimension``. For ``fusion`` other than ``gate`` the shares
        are the fixed ones the fusion implies (equal for ``sum``, 1 for a single modality);
        ``concat`` has none (empty dict).
        """
        if not self.modalities:
            return {}
        shares = self.fusion_layer.shares(*self.project())
        if shares is None:
            return {}
        shares = shares.expand(-1, -1, self.embedding_size)
        return {
            m: (shares[i] if per_dimension else shares[i].mean(dim=1)).cpu()
            for i, m in enumerate(self.modalities)
        }

    # ------------------------------------------------------------------ 4. propagation
    def pre_epoch(self) -> None:
        """Edge dropout: draw this epoch's pruned training graph."""
        if self.edge_sampler is not None:
            self.pruned_adj = self.edge_sampler.sample(self.epoch_generator(self.edge_sampler.edges.device))

    def forward(self) -> Embeddings:
        user_e, item_e = self.user_embedding.weight, self.item_embedding.weight
        projected = self.project() if self.modalities else None
        fused, shares = self.content(projected)
        if fused is not None:
            # an item without training interactions has no learned ID: content speaks for it
            item_e = item_e * self.warm_items.unsqueeze(1)
        if fused is not None and self.fusion_stage == "early":
            item_e = item_e + self.content_scale * fused
        adj = self.norm_adj_matrix
        if self.training:
            self.start_epoch()
            if self.pruned_adj is not None:
                adj = self.pruned_adj
        user_all, item_all = lightgcn_propagate(adj, user_e, item_e, self.n_layers)
        if fused is not None and self.fusion_stage == "late":
            item_all = item_all + self.content_scale * fused
        graphs = self.item_graphs if self.training else self.scoring_item_graphs
        if graphs:
            # gated item-item propagation: sum_m share_m(i) * (S_m X_m)(i), so the gate
            # decides per item which modality's neighbours it listens to
            smoothed = self.item_graph_vectors(item_e, shares, graphs, projected)
            item_all = item_all + smoothed
            if self.user_item_adj is not None:
                user_all = user_all + sparse_mm(self.user_item_adj, smoothed)
        if not self.training and len(self.cold_items):
            user_all, item_all = self.score_cold_items(user_all, item_all, shares, fused)
        return Embeddings(user_all, item_all, user_e, item_e, fused)

    def item_graph_vectors(
        self,
        item_e: torch.Tensor,
        shares: torch.Tensor,
        graphs: list[torch.Tensor],
        projected: tuple[list[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """h = ``item_graph_weight * sum_m share_m (S_m X_m)`` of every item. X_m, what the item
        graph of modality m smooths: the warm items' ID embeddings gated by their own content
        ``p_m`` (from ``projected``), ``E_id * sigmoid(W_m p_m + b_m)`` (``item_graph_purify``),
        or the layer-0 vectors ``item_e``."""
        if self.purifiers:
            ids = self.item_embedding.weight * self.warm_items.unsqueeze(1)
            inputs = [ids * gate(p) for gate, p in zip(self.purifiers, projected[0], strict=True)]
        else:
            inputs = [item_e] * len(graphs)
        return self.item_graph_weight * sum(
            shares[m] * sparse_mm(graph, inputs[m]) for m, graph in enumerate(graphs)
        )

    def user_side(self, item_ego: torch.Tensor) -> torch.Tensor | None:
        """h of every item over the training graph, from :meth:`forward`'s layer-0 item vectors
        ``item_ego``: the vectors whose R^-weighted sum each user adds (``item_graph_users``);
        None without."""
        if self.user_item_adj is None:
            return None
        projected = self.project()
        _, shares = self.content(projected)
        return self.item_graph_vectors(item_ego, shares, self.item_graphs, projected)

    # ------------------------------------------------------------------ 5. objective
    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, ...]:
        """(BPR, L2 on the batch's layer-0 embeddings[, content alignment][, content BPR])."""
        user, pos_item, neg_item = self.begin_batch(interaction)
        out = self.forward()
        # RecBole's BPRLoss form, as its LightGCN
        bpr, u_e = self.batch_bpr(out, user, pos_item, neg_item, gamma=RECBOLE_BPR_GAMMA)
        # layer-0 embeddings: ID + content for early fusion, as RecBole's LightGCN does for IDs
        reg = self.reg_weight * self.reg_loss(
            out.user_ego[user], out.item_ego[pos_item], out.item_ego[neg_item]
        )
        losses = [bpr, reg]
        if self.align_weight > 0 and out.content is not None:
            # align the gated content of the batch's items with their collaborative vectors
            items = torch.unique(pos_item)
            items = items[self.has_content[items]]
            align = bpr.new_zeros(())
            if len(items) > 1:
                align = self.align_weight * info_nce(
                    out.item[items], out.content[items], self.align_temperature
                )
            losses.append(align)
        if self.content_bpr_weight > 0 and self.modalities:
            # FREEDOM's auxiliary loss: each modality's projection alone ranks the triple
            projected, _ = self.project()
            losses.append(self.content_bpr_weight * sum(
                bpr_loss(dot_scores(u_e, p[pos_item]), dot_scores(u_e, p[neg_item]), RECBOLE_BPR_GAMMA)
                for p in projected
            ))
        return tuple(losses)

    # ------------------------------------------------------------------ 6. cold items (scoring)
    def borrow_graph(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """A cold item's ``cold_borrow_k`` most cosine-similar warm items with this modality,
        each weighted 1/k (a frozen, row-normalised sparse matrix; warm rows are empty)."""
        rows, cols = knn_neighbours(features, self.cold_borrow_k, mask, include_self=False, candidates=mask & self.warm_items)
        keep = ~self.warm_items[rows]  # cold rows only: warm items keep their own vectors
        rows, cols = rows[keep], cols[keep]
        degree = torch.bincount(rows, minlength=self.n_items).clamp_min(1).float()
        index = torch.stack([rows, cols])
        return torch.sparse_coo_tensor(index, 1.0 / degree[rows], (self.n_items, self.n_items)).coalesce()

    def score_cold_items(
        self, user_all: torch.Tensor, item_all: torch.Tensor, shares: torch.Tensor | None, fused: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scoring vectors with cold items in them. A cold item with content gets a borrowed
        vector: its neighbours' final vectors mixed by its own gate shares, plus its own content,
        as a warm item's layer-0 gets it: ``sum_m share_m(c) (B_m E)(c) + content_scale f(c)``.
        Every cold item's score is then shifted by ``cold_offset``: one more dimension, 1 for
        users, ``cold_offset`` for cold items and 0 for warm ones."""
        if self.borrow_graphs and fused is not None:
            borrowed = sum(shares[m] * sparse_mm(g, item_all) for m, g in enumerate(self.borrow_graphs))
            borrowed = borrowed + self.content_scale * fused
            has = self.cold_items[self.has_content[self.cold_items]]
            item_all = item_all.index_copy(0, has, borrowed[has])
        column = torch.zeros(self.n_items, 1, device=item_all.device, dtype=item_all.dtype)
        column[self.cold_items] = self.cold_offset.to(item_all.dtype)
        ones = torch.ones(user_all.shape[0], 1, device=user_all.device, dtype=user_all.dtype)
        return torch.cat([user_all, ones], dim=1), torch.cat([item_all, column], dim=1)

    def set_cold_offset(self, value: float) -> None:
        """Shift every cold item's score by ``value`` from now on (the cached scoring vectors
        are updated in place: their last column holds the offset)."""
        self.cold_offset.fill_(float(value))
        if self.restore_item_e is not None and len(self.cold_items):
            self.restore_item_e[self.cold_items, -1] = float(value)
