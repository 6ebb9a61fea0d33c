"""Cold items: items that valid or test hold but training does not.

RecBole puts every item of every split into its vocabulary, so a cold item (one that "does
not exist yet" when the model trains) is drawn as a training negative by its uniform sampler,
every epoch, and its untrained embedding is pushed down. Our runner trains every model, ours
and RecBole's, with negatives drawn from the warm items only (:func:`restrict_negatives`),
unless ``cold_items_as_negatives: true`` asks for RecBole's behaviour. The training graph is
built from the training split, so cold items have no edges in it anyway; our content models
also keep cold items out of their item-item graphs while training
(:meth:`recbole_rlmm.model.abstract.EmbeddingRecommender.knn_graphs`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from recbole_rlmm.errors import UserError

logger = logging.getLogger(__name__)


def warm_item_ids(train_dataset: Any) -> np.ndarray:
    """Sorted internal ids of the items with at least one training interaction."""
    items = np.unique(train_dataset.inter_feat[train_dataset.iid_field].numpy())
    return items[items > 0]


def restrict_negatives(train_data: Any) -> int:
    """Make a RecBole training dataloader draw its negatives from the warm items only.

    Returns the number of cold items excluded (0: nothing changed, RecBole's sampler is kept
    as it is, so results on a dataset without cold items are RecBole's exactly).
    """
    sampler = getattr(train_data, "_sampler", None)
    if sampler is None or getattr(sampler, "phase", None) != "train":
        return 0
    dataset = train_data._dataset
    warm = warm_item_ids(dataset)
    cold = int(sampler.item_num - 1 - len(warm))
    if cold <= 0:
        return 0
    longest = max((len(used) for used in sampler.used_ids), default=0)
    if longest >= len(warm):
        raise UserError(
            f"a user has interacted with every one of the {len(warm)} training items, so no "
            "training negative can be drawn for them; filter such users (user_inter_num_interval) "
            "or set cold_items_as_negatives: true."
        )
    if sampler.distribution == "uniform":
        sampler._uni_sampling = lambda n, warm=warm: warm[np.random.randint(0, len(warm), n)]
    elif sampler.distribution == "popularity":
        items = dataset.inter_feat[dataset.iid_field].numpy()
        sampler._get_candidates_list = lambda items=items: list(items)
        sampler._build_alias_table()
    return cold
