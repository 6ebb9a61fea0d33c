"""Base class of the plugin models: dot-product scoring with cached full-sort embeddings."""

from __future__ import annotations

from typing import Any

import torch
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType


class EmbeddingRecommender(GeneralRecommender):
    """A pairwise (BPR) recommender whose ``forward()`` returns all user and item vectors.

    Scores are dot products. ``full_sort_predict`` caches the final embeddings (as RecBole's
    LightGCN does in ``restore_user_e``/``restore_item_e``, saved with the checkpoint through
    ``other_parameter_name``); subclasses read training batches with :meth:`pairwise_batch`,
    which drops that cache at every ``calculate_loss``.
    """

    input_type = InputType.PAIRWISE

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)
        # storage variables for full sort evaluation acceleration
        self.restore_user_e: torch.Tensor | None = None
        self.restore_item_e: torch.Tensor | None = None
        self.other_parameter_name = ["restore_user_e", "restore_item_e"]

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def clear_cache(self) -> None:
        """Drop the cached full-sort embeddings (they are stale once parameters move)."""
        self.restore_user_e, self.restore_item_e = None, None

    def pairwise_batch(self, interaction: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Users, positive and negative items of a training batch; drops the full-sort cache."""
        self.clear_cache()
        return interaction[self.USER_ID], interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]

    def predict(self, interaction: Any) -> torch.Tensor:
        user = interaction[self.USER_ID]
        item = interaction[self.ITEM_ID]
        user_all, item_all = self.forward()
        return torch.mul(user_all[user], item_all[item]).sum(dim=1)

    def full_sort_predict(self, interaction: Any) -> torch.Tensor:
        user = interaction[self.USER_ID]
        if self.restore_user_e is None or self.restore_item_e is None:
            user_e, item_e = self.forward()
            # detached: a Parameter returned by forward must not be registered as a module attribute
            self.restore_user_e, self.restore_item_e = user_e.detach(), item_e.detach()
        scores = torch.matmul(self.restore_user_e[user], self.restore_item_e.transpose(0, 1))
        return scores.view(-1)
