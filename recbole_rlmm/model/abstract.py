"""The contract every plugin model follows.

A model is a RecBole ``GeneralRecommender`` trained pairwise (BPR) whose scores are dot
products of user and item vectors:

* ``forward()`` returns an :class:`Embeddings`: the final user and item vectors, plus what
  ``calculate_loss`` needs from the same pass (layer-0 embeddings, fused content). Nothing is
  stashed on ``self`` between ``forward`` and ``calculate_loss``.
* Training and evaluation differ only through ``self.training`` (PyTorch's convention).
* Per-epoch work (edge-dropout pruning, LATTICE's learned-graph refresh) lives in
  :meth:`EmbeddingRecommender.pre_epoch`, which runs once per epoch, in the epoch's first
  training forward (MMRec's ``pre_epoch_processing`` is the anchor). RecBole's trainer (with
  :mod:`recbole_rlmm.compat`) tells the model each epoch's number through :meth:`set_epoch`;
  without a trainer, switching to training mode (``model.train()``) starts an epoch.
* Items without training interactions (cold items: in the vocabulary because valid or test
  holds them) are marked by ``warm_items``: item-item graphs are built over warm items while
  training and gain rows for cold items only for scoring.
* ``calculate_loss`` returns its terms as a tuple (BPR, regulariser, ...): RecBole's trainer
  sums them for the gradient and logs each one.
* ``full_sort_predict`` caches the final vectors (as RecBole's LightGCN does in
  ``restore_user_e``/``restore_item_e``); every training batch drops the cache.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType
from torch import nn

from recbole_rlmm.data.features import (
    FeatureFileError,
    ModalityFeatures,
    load_modalities,
    normalize_features,
)
from recbole_rlmm.graph.knn import EdgeGraph, knn_graph_edges
from recbole_rlmm.keys.schema import model_defaults
from recbole_rlmm.model.layers import ModalityEncoder, bpr_loss, dot_scores


class Embeddings(NamedTuple):
    """What one forward pass computes.

    ``user``/``item``: final vectors, scored by dot product. ``user_ego``/``item_ego``:
    layer-0 embeddings (for the L2 regulariser). ``content``: the fused item content.
    ``views``: other named intermediate vectors of the same pass that a model's loss reads
    (BM3's online vectors, MGCN's two views, ...).
    """

    user: torch.Tensor
    item: torch.Tensor
    user_ego: torch.Tensor | None = None
    item_ego: torch.Tensor | None = None
    content: torch.Tensor | None = None
    shares: torch.Tensor | None = None
    views: dict[str, torch.Tensor] | None = None


class EmbeddingRecommender(GeneralRecommender):
    """Base class of the plugin models (see the module docstring for the contract)."""

    input_type = InputType.PAIRWISE

    def __init__(self, config: Any, dataset: Any) -> None:
        self.fill_defaults(config)
        super().__init__(config, dataset)
        self.coverage: dict[str, float] = {}  # share of items with each modality it reads
        # storage variables for full sort evaluation acceleration
        self.restore_user_e: torch.Tensor | None = None
        self.restore_item_e: torch.Tensor | None = None
        self.other_parameter_name = ["restore_user_e", "restore_item_e"]
        self._epoch_started = False
        self._trainer_epoch: int | None = None  # set by the trainer (set_epoch)
        self._seed = int(config["seed"] if config["seed"] is not None else 0)
        # precision the features are kept in (float32 | float16 | bfloat16)
        dtype = str(config["feature_dtype"] if "feature_dtype" in config else "float32")  # noqa: SIM401
        self.feature_dtype: torch.dtype = getattr(torch, dtype)
        # how frozen kNN item graphs are searched (torch | faiss | auto: the graph code picks)
        self.knn_backend: str = str(config["knn_backend"] if "knn_backend" in config else "torch")  # noqa: SIM401
        # items with at least one training interaction (never the padding item 0)
        degree = np.bincount(dataset.inter_feat[dataset.iid_field].numpy(), minlength=self.n_items)
        self.item_degree = torch.from_numpy(degree[: self.n_items])
        self.register_buffer("warm_items", self.item_degree > 0, persistent=False)
        # epochs started so far; saved with the weights, so a resumed run draws what the
        # uninterrupted one would have drawn
        self.register_buffer("epochs_started", torch.zeros((), dtype=torch.long))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The model's default config values (declared in :mod:`recbole_rlmm.keys.schema`) of
        this class and of its plugin base classes (a subclass's override its base's)."""
        values: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if isinstance(klass, type) and issubclass(klass, EmbeddingRecommender):
                values.update(model_defaults(klass.__name__))
        return values

    @classmethod
    def fill_defaults(cls, config: Any) -> None:
        """Give ``config`` the model's defaults for the keys it lacks.

        RecBole's own ``Config(model=RLMultimodalRec, ...)`` knows nothing of our defaults; with
        this, such a config trains the model with its declared defaults (our runner's config
        already holds every key and has checked their values, so nothing changes there).
        """
        for key, value in cls.defaults().items():
            if key not in config:
                config[key] = value

    # ------------------------------------------------------------------ per-epoch work
    def pre_epoch(self) -> None:
        """Work done once per training epoch, before its first batch (none by default)."""

    def train(self, mode: bool = True) -> EmbeddingRecommender:
        """PyTorch's ``train``; without a trainer's :meth:`set_epoch`, switching to training
        mode starts a new epoch."""
        if mode and self._trainer_epoch is None:
            self._epoch_started = False
        return super().train(mode)

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer when epoch ``epoch`` starts: the next training batch runs
        :meth:`pre_epoch` (once, however often the model is switched between modes)."""
        if epoch != self._trainer_epoch:
            self._trainer_epoch = epoch
            self._epoch_started = False

    @property
    def has_cold_items(self) -> bool:
        """Whether some real items have no training interaction."""
        return bool((~self.warm_items[1:]).any())

    def start_epoch(self) -> None:
        """Run :meth:`pre_epoch` if this epoch has not run it yet (called by every training
        batch, and by ``forward`` in training mode where a model's forward needs its result)."""
        if not self._epoch_started:
            self._epoch_started = True
            self.pre_epoch()
            self.epochs_started += 1

    def epoch_generator(self, device: torch.device | str | None = None) -> torch.Generator:
        """A random generator for this epoch's draws, seeded by ``seed`` and the epoch number
        only: every process of a distributed run draws the same (edge dropout must prune the
        same graph on every rank), and a resumed run draws what the uninterrupted run did."""
        generator = torch.Generator(device=device or "cpu")
        generator.manual_seed(self._seed * 1_000_003 + int(self.epochs_started))
        return generator

    # ------------------------------------------------------------------ features
    @classmethod
    def modalities_read(cls, config: Any) -> list[str] | None:  # noqa: ARG003 (subclasses read it)
        """The modalities a model with ``config`` reads (None: every configured one); the
        runner checks their files before loading the dataset."""
        return None

    def load_features(
        self, config: Any, dataset: Any, id_only: str = "use an ID-only model such as LightGCN"
    ) -> ModalityFeatures:
        """The modalities this model reads (:meth:`modalities_read`), aligned to the
        dataset's item ids.

        A dataset without ``modalities`` is a :class:`FeatureFileError` naming the config key
        and the way out (``id_only`` says how to train without features).
        """
        modal = load_modalities(config, dataset, self.modalities_read(config))
        self.coverage = modal.coverage()
        if not modal.names:
            name = config["dataset"]
            raise FeatureFileError(
                f"{type(self).__name__} is a multimodal model and needs item features, but "
                f"dataset '{name}' has no `modalities` configured. Add e.g. `modalities: "
                f"{{image: {name}.image.npy, text: {name}.text.npy}}` to the dataset yaml (files "
                f"are made by `recbole-rlmm prepare`), or {id_only}."
            )
        return modal

    def content_summary(self) -> str:
        """The item content this model actually uses, e.g. ``content: image (94.7% of
        items), text (100%)``; logged and printed by the runner."""
        if not self.coverage:
            return "content: none (ID only)"
        return "content: " + coverage_text(self.coverage)

    def modality_encoders(
        self,
        modal: ModalityFeatures,
        names: list[str],
        feature_norm: str,
        out_dim: int | None = None,
    ) -> nn.ModuleDict:
        """One :class:`ModalityEncoder` per modality in ``names`` (features normalised by
        ``feature_norm``, then stored as ``feature_dtype``; projected to ``out_dim`` when
        given)."""
        encoders = {}
        for m in names:
            features = normalize_features(modal.features[m], modal.masks[m], feature_norm, dtype=self.feature_dtype)
            encoders[m] = ModalityEncoder(features, modal.masks[m], out_dim)
        return nn.ModuleDict(encoders)

    def knn_graphs(
        self,
        features: list[torch.Tensor],
        masks: list[torch.Tensor],
        k: int,
        weighted: bool,
        normalize: bool = True,
    ) -> tuple[list[EdgeGraph], list[EdgeGraph]]:
        """Per-modality kNN item graphs: for training (warm items only: cold items are
        unknown while the model trains) and for scoring (every item with the modality gets a
        row; neighbours stay warm). The two are the same lists when no item is cold."""
        warm = self.warm_items.to(masks[0].device) if masks else self.warm_items
        training = [
            knn_graph_edges(x, k, m & warm, weighted, normalize=normalize, backend=self.knn_backend)
            for x, m in zip(features, masks, strict=True)
        ]
        scoring = training
        if any(bool((m & ~warm).any()) for m in masks):
            scoring = [
                knn_graph_edges(x, k, m, weighted, normalize=normalize, candidates=m & warm, backend=self.knn_backend)
                for x, m in zip(features, masks, strict=True)
            ]
        return training, scoring

    # ------------------------------------------------------------------ RecBole API
    def forward(self) -> Embeddings:  # pragma: no cover - abstract
        raise NotImplementedError

    def clear_cache(self) -> None:
        """Drop the cached full-sort embeddings (they are stale once parameters move)."""
        self.restore_user_e, self.restore_item_e = None, None

    def begin_batch(self, interaction: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Users, positive and negative items of a training batch; drops the full-sort cache
        and, in the epoch's first batch, runs :meth:`pre_epoch`."""
        self.clear_cache()
        if self.training:
            self.start_epoch()
        return interaction[self.USER_ID], interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]

    @staticmethod
    def batch_bpr(
        out: Embeddings,
        user: torch.Tensor,
        pos_item: torch.Tensor,
        neg_item: torch.Tensor,
        gamma: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """BPR of the batch's (user, positive, negative) triples scored on ``out``
        (:func:`~recbole_rlmm.model.layers.bpr_loss`; ``gamma`` picks RecBole's form), and
        the batch's user vectors (reuse them: a second gather changes the gradient's
        summation order)."""
        u_e = out.user[user]
        pos_scores, neg_scores = dot_scores(u_e, out.item[pos_item]), dot_scores(u_e, out.item[neg_item])
        return bpr_loss(pos_scores, neg_scores, gamma), u_e

    def predict(self, interaction: Any) -> torch.Tensor:
        user = interaction[self.USER_ID]
        item = interaction[self.ITEM_ID]
        out = self.forward()
        return torch.mul(out.user[user], out.item[item]).sum(dim=1)

    def full_sort_predict(self, interaction: Any) -> torch.Tensor:
        user = interaction[self.USER_ID]
        if self.restore_user_e is None or self.restore_item_e is None:
            out = self.forward()
            # detached: a Parameter returned by forward must not be registered as a module attribute
            self.restore_user_e, self.restore_item_e = out.user.detach(), out.item.detach()
        scores = torch.matmul(self.restore_user_e[user], self.restore_item_e.transpose(0, 1))
        return scores.view(-1)


def coverage_text(coverage: dict[str, float]) -> str:
    """``image (94.7% of items), text (100%)``."""
    parts = []
    for i, (m, share) in enumerate(coverage.items()):
        pct = f"{100 * share:.1f}".rstrip("0").rstrip(".") + "%"
        parts.append(f"{m} ({pct}{' of items' if i == 0 else ''})")
    return ", ".join(parts)
