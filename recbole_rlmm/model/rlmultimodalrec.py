r"""RLMultimodalRec: gated multimodal graph learning for personalized recommendation.

Reference: "Gated Multimodal Graph Learning for Personalized Recommendation",
arXiv:2506.00107. Only the abstract is public; the model below follows it and the
project's specification (README, "How the model maps to the paper"):

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

Extensions chosen on validation data (docs/RESULTS.md, docs/MODELS.md):

* **Gated item graphs** (``item_graph_k``, ``item_graph_weight``): a frozen kNN item graph
  S_m per modality from the raw features; the final item vector gains
  ``item_graph_weight * sum_m share_m(i) (S_m E_0)(i)`` with the gate's own shares.
* **Edge dropout** (``edge_dropout``): FREEDOM's degree-sensitive pruning of the training
  graph, resampled every epoch.
* **Content alignment** (``align_weight``, ``align_temperature``; off by default, in the
  tuning grid): InfoNCE between each batch item's fused content f and its final vector.

With ``fusion: none`` and ``edge_dropout: 0`` the model is RecBole's LightGCN exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from recbole.model.init import xavier_uniform_initialization
from recbole.model.loss import EmbLoss
from torch import nn

# ``gate``/``sum``/``concat`` mix the modalities; ``image``/``text`` use one; ``none`` none.
# Every key's type and range: recbole_rlmm/checks/keys.py (checked before the model is built).
from recbole_rlmm.checks.keys import FUSION_STAGES, FUSIONS  # noqa: F401  (re-exported)
from recbole_rlmm.data.features import FeatureFileError, ModalityFeatures, configured_modalities
from recbole_rlmm.model.abstract import EmbeddingRecommender, Embeddings, coverage_text
from recbole_rlmm.model.graph import EdgeDropout, norm_adj_matrix
from recbole_rlmm.model.graph.sparse import sparse_mm
from recbole_rlmm.model.layers import (
    RECBOLE_BPR_GAMMA,
    GatedFusion,
    dot_scores,
    info_nce,
    lightgcn_propagate,
)
from recbole_rlmm.model.signal import ModalitySignal, modality_signal, probe_and_history

#: ``id_dropout: auto``: this rate when at least COLD_SHARE of the held-out interactions are on
#: cold items (validation, else the training hold-out), else 0 (chosen on movielens-cold's
#: validation split: 0.5 beat 0.2 in full ranking; docs/RESULTS.md, "Cold-start items").
AUTO_ID_DROPOUT = 0.5
COLD_SHARE = 0.05


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
        self.feature_norm: str = config["feature_norm"]  # none | l2 | standard (per modality)
        self.content_scale: float = config["content_scale"]  # weight of f next to the ID
        self.item_graph_k: int = config["item_graph_k"]  # 0 = off; >0: gated kNN item graphs
        self.item_graph_weight: float = config["item_graph_weight"]  # weight of their smoothing
        self.edge_dropout: float = config["edge_dropout"]  # share of user-item edges pruned/epoch
        self.align_weight: float = config["align_weight"]  # 0 = off; content-to-item InfoNCE
        self.align_temperature: float = config["align_temperature"]
        self.content_check: bool = config["content_check"]  # drop modalities without signal
        id_dropout = config["id_dropout"]  # auto | share of warm items scored as if cold / epoch

        # load dataset info
        self.interaction_matrix = dataset.inter_matrix(form="coo").astype("float32")
        self._check_single_modality(config)
        modal = (
            ModalityFeatures()  # ID only: no feature file is read
            if self.fusion == "none"
            else self.load_features(config, dataset, id_only="train ID-only with --fusion=none")
        )
        self.modalities: list[str] = modal.names  # the ones fusion uses (modalities_read)
        # do no harm: a modality whose content does not predict held-out interactions is dropped
        history, probe_users, probe_items, source = probe_and_history(self.interaction_matrix, self._seed)
        self.content_signal: dict[str, ModalitySignal] = {}
        if self.content_check and self.fusion in ("gate", "sum", "concat"):
            for m in self.modalities:
                self.content_signal[m] = modality_signal(
                    modal.features[m], modal.masks[m], history, probe_users, probe_items, self._seed, source
                )
            self.modalities = [m for m in self.modalities if self.content_signal[m].informative]
        # cold-start training (DropoutNet-style) when held-out interactions often hit cold items
        cold_share = float((~self.warm_items[torch.from_numpy(probe_items)]).float().mean()) if len(probe_items) else 0.0
        self.cold_share = cold_share
        self.id_dropout: float = (AUTO_ID_DROPOUT if cold_share >= COLD_SHARE else 0.0) if id_dropout == "auto" else float(id_dropout)

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
        has_content = torch.zeros(self.n_items, dtype=torch.bool)
        for m in self.modalities:
            has_content |= modal.masks[m]
        self.register_buffer("has_content", has_content, persistent=False)
        # neighbour borrowing: an item's vector as the mean of its k most similar warm items'
        # (a dense (n_items, k) table per modality: the batch's rows are gathered, not multiplied)
        self.cold_mode: str = str(config["cold_mode"]) if "cold_mode" in config else "replace"  # noqa: SIM401
        self.cold_weight: float = float(config["cold_weight"]) if "cold_weight" in config else 1.0  # noqa: SIM401
        self.register_buffer("borrow_index", None, persistent=False)
        self.register_buffer("borrow_weight", None, persistent=False)
        self.borrow_scale: nn.Parameter | None = None
        self.borrow_content: nn.Parameter | None = None
        if self.modalities:
            from recbole_rlmm.model.graph.knn import knn_neighbours

            k = max(1, self.item_graph_k)
            index = torch.zeros(len(self.modalities), self.n_items, k, dtype=torch.long)
            weight = torch.zeros(len(self.modalities), self.n_items, k)
            for n, m in enumerate(self.modalities):
                mask = modal.masks[m]
                rows, cols = knn_neighbours(
                    modal.features[m], k, mask, include_self=False, candidates=mask & self.warm_items
                )
                if len(rows):
                    slot = torch.arange(len(rows)) - torch.searchsorted(rows, rows)  # rank within the row
                    index[n, rows, slot] = cols
                    weight[n, rows, slot] = 1.0
            weight = weight / weight.sum(dim=2, keepdim=True).clamp_min(1.0)
            self.register_buffer("borrow_index", index, persistent=False)
            self.register_buffer("borrow_weight", weight, persistent=False)
            # calibration of borrowed vectors: per-dimension scale of the neighbours' mean and
            # the weight of the item's own fused content (trained where id_dropout > 0)
            self.borrow_scale = nn.Parameter(torch.ones(self.embedding_size))
            self.borrow_content = nn.Parameter(torch.tensor(float(self.content_scale)))
            if self.cold_mode.startswith("calib"):
                self.borrow_offset = nn.Parameter(torch.zeros(()))
        # items scored through the borrowed path in evaluation: those without training interactions
        self.register_buffer("cold_items", (~self.warm_items & self.has_content).nonzero().view(-1), persistent=False)

        # parameters initialization
        self.apply(xavier_uniform_initialization)

    # ------------------------------------------------------------------ set-up helpers
    @classmethod
    def modalities_read(cls, config: Any) -> list[str] | None:
        """``fusion: none`` reads no feature file, ``image``/``text`` only that one."""
        fusion = config["fusion"] if "fusion" in config else "gate"  # noqa: SIM401 (Config has no .get)
        if fusion == "none":
            return []
        return [fusion] if fusion in ("image", "text") else None

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
        items), text (100%)`` or ``fusion: none (ID only)``, and the content check's verdicts."""
        checked = "; ".join(f"content check {m}: {sig}" for m, sig in self.content_signal.items())
        cold = f"; cold-start training: id_dropout {self.id_dropout}" if self.id_dropout > 0 else ""
        if not self.modalities:
            dropped = " (no modality carries signal)" if self.content_signal else ""
            return f"fusion: none (ID only){dropped}" + (f"; {checked}" if checked else "")
        how = {"gate": f"gate ({self.gate_type})", "image": "image only", "text": "text only"}.get(self.fusion, self.fusion)
        used = {m: self.coverage[m] for m in self.modalities if m in self.coverage}
        return f"fusion: {how} over {coverage_text(used)}, {self.fusion_stage} stage" + (f"; {checked}" if checked else "") + cold

    # ------------------------------------------------------------------ 1-3. item content
    def project(self) -> tuple[list[torch.Tensor], torch.Tensor]:
        """p_m of every item for every used modality (zero where missing) and the masks (N, n_items)."""
        projected = [self.encoders[m]() for m in self.modalities]
        masks = [self.encoders[m].mask for m in self.modalities]
        return projected, torch.stack(masks) if masks else torch.zeros(0, self.n_items, dtype=torch.bool)

    def content(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Fused content f (n_items, d) and each modality's share (N, n_items, 1); None, None
        without modalities."""
        if not self.modalities:
            return None, None
        return self.fusion_layer(*self.project())

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
        fused, shares = self.content()
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
            # gated item-item propagation: sum_m share_m(i) * (S_m E_0)(i), so the gate
            # decides per item which modality's neighbours it listens to
            smoothed = sum(shares[m] * sparse_mm(graph, item_e) for m, graph in enumerate(graphs))
            item_all = item_all + self.item_graph_weight * smoothed
        if self.borrow_index is not None:
            replaced = None
            if not self.training:
                replaced = self.cold_items
            elif self.id_dropout > 0 and self.cold_mode == "replace":
                gen = self.epoch_generator(item_all.device)
                drawn = (torch.rand(self.n_items, generator=gen, device=item_all.device) < self.id_dropout) & self.warm_items & self.has_content
                replaced = drawn.nonzero().view(-1)
            if replaced is not None and len(replaced):
                item_all = item_all.index_copy(0, replaced, self.borrow(replaced, item_all, shares, fused))
            if not self.training and self.cold_mode.startswith("calib"):
                # the borrowed items' learned score offset, as one more dimension of the dot product
                offset = torch.zeros(self.n_items, 1, device=item_all.device)
                offset[self.cold_items] = self.borrow_offset.detach()
                item_all = torch.cat([item_all, offset], dim=1)
                user_all = torch.cat([user_all, torch.ones(user_all.shape[0], 1, device=user_all.device)], dim=1)
        return Embeddings(user_all, item_all, user_e, item_e, fused, shares)

    def borrow(
        self, items: torch.Tensor, item_all: torch.Tensor, shares: torch.Tensor, fused: torch.Tensor,
        detach_neighbours: bool = False, detach_content: bool = False,
    ) -> torch.Tensor:
        """Borrowed vectors of ``items``: per modality the mean of the item's warm neighbours'
        final vectors, mixed by the gate's shares, scaled per dimension, plus the item's own
        fused content."""
        neighbours = item_all.detach() if detach_neighbours else item_all
        gathered = neighbours[self.borrow_index[:, items]]  # (N, B, k, d)
        mean = (self.borrow_weight[:, items].unsqueeze(3) * gathered).sum(dim=2)  # (N, B, d)
        item_shares, content = shares[:, items], fused[items]
        if detach_content:
            item_shares, content = item_shares.detach(), content.detach()
        mixed = (item_shares * mean).sum(dim=0)
        return self.borrow_scale * mixed + self.borrow_content * content

    def cold_loss(self, out: Embeddings, user: torch.Tensor, pos_item: torch.Tensor, neg_item: torch.Tensor) -> torch.Tensor:
        """Cold-start term: the batch's warm items scored through the borrowed path against
        their ordinary vectors (borrowed positive vs ordinary negative, ordinary positive vs
        borrowed negative, borrowed vs borrowed)."""
        full = self.cold_mode == "loss_full"
        frozen = self.cold_mode in ("loss_frozen", "calib_frozen")
        items = torch.cat([pos_item, neg_item])
        borrowed = self.borrow(items, out.item, out.shares, out.content, detach_neighbours=not full, detach_content=frozen)
        b_pos, b_neg = borrowed[: len(pos_item)], borrowed[len(pos_item):]
        u = out.user[user] if full else out.user[user].detach()
        e_pos = out.item[pos_item] if full else out.item[pos_item].detach()
        e_neg = out.item[neg_item] if full else out.item[neg_item].detach()
        usable = (self.has_content[pos_item] & self.has_content[neg_item]).float()
        if self.cold_mode.startswith("calib"):
            # pairs as full ranking meets them: a cold positive with the validation's cold share s,
            # a cold negative with the catalogue's share of cold items rho
            s, rho = self.cold_share, float(len(self.cold_items)) / max(1, self.n_items - 1)
            w = torch.tensor([s * (1 - rho), (1 - s) * rho, s * rho], device=u.device)
            w = w / w.sum().clamp_min(1e-12)
            beta = self.borrow_offset
            terms = (
                -w[0] * torch.log(RECBOLE_BPR_GAMMA + torch.sigmoid(dot_scores(u, b_pos) + beta - dot_scores(u, e_neg)))
                - w[1] * torch.log(RECBOLE_BPR_GAMMA + torch.sigmoid(dot_scores(u, e_pos) - dot_scores(u, b_neg) - beta))
                - w[2] * torch.log(RECBOLE_BPR_GAMMA + torch.sigmoid(dot_scores(u, b_pos) - dot_scores(u, b_neg)))
            )
            return self.cold_weight * (terms * usable).sum() / usable.sum().clamp_min(1.0)
        terms = (
            -torch.log(RECBOLE_BPR_GAMMA + torch.sigmoid(dot_scores(u, b_pos) - dot_scores(u, e_neg)))
            - torch.log(RECBOLE_BPR_GAMMA + torch.sigmoid(dot_scores(u, e_pos) - dot_scores(u, b_neg)))
            - torch.log(RECBOLE_BPR_GAMMA + torch.sigmoid(dot_scores(u, b_pos) - dot_scores(u, b_neg)))
        ) / 3
        return self.cold_weight * (terms * usable).sum() / usable.sum().clamp_min(1.0)
        return Embeddings(user_all, item_all, user_e, item_e, fused)

    # ------------------------------------------------------------------ 5. objective
    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, ...]:
        """(BPR, L2 on the batch's layer-0 embeddings[, content alignment])."""
        user, pos_item, neg_item = self.begin_batch(interaction)
        out = self.forward()
        # RecBole's BPRLoss form, as its LightGCN
        bpr, _ = self.batch_bpr(out, user, pos_item, neg_item, gamma=RECBOLE_BPR_GAMMA)
        # layer-0 embeddings: ID + content for early fusion, as RecBole's LightGCN does for IDs
        reg = self.reg_weight * self.reg_loss(
            out.user_ego[user], out.item_ego[pos_item], out.item_ego[neg_item]
        )
        terms = [bpr, reg]
        if self.id_dropout > 0 and self.cold_mode != "replace" and self.borrow_index is not None:
            terms.append(self.cold_loss(out, user, pos_item, neg_item))
        if self.align_weight <= 0 or out.content is None:
            return tuple(terms)
        # align the gated content of the batch's items with their collaborative vectors
        items = torch.unique(pos_item)
        items = items[self.has_content[items]]
        align = bpr.new_zeros(())
        if len(items) > 1:
            align = self.align_weight * info_nce(
                out.item[items], out.content[items], self.align_temperature
            )
        return (*terms, align)
