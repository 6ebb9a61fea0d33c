"""Final user and item vectors of the models whose scores are dot products.

* recbole-rlmm's models: ``forward()`` returns :class:`~recbole_rlmm.model.abstract.Embeddings`
  (``user``, ``item``); scores are ``user @ item.T``.
* RecBole built-ins: LightGCN, NGCF, DGCF, SpectralCF, NCL (``forward()`` returns the final
  user and item vectors), SGL (``forward(train_graph)``), BPR and LINE (the embedding tables),
  ENMF (the user table scaled by its output weights ``H_i``), NCEPLRec (its factor matrices)
  and SimpleX (cosine: the normalised aggregated user vector and normalised item table).

Every export checks the vectors against the model's own ``full_sort_predict`` for a sample of
users, so a model whose scoring differs from the product of these vectors is refused rather
than exported wrongly. Other models (ItemKNN, Pop, EASE, MultiVAE, NeuMF, DMF, ...) have no
such vectors: :class:`NotDotProductError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from recbole_rlmm.inference.errors import InferenceError
from recbole_rlmm.model.abstract import EmbeddingRecommender


class NotDotProductError(InferenceError):
    """The model's scores are not a dot product of user and item vectors."""


def _pair(model: Any) -> tuple[torch.Tensor, torch.Tensor]:
    out = model.forward()
    return out[0], out[1]


def _tables(model: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return model.user_embedding.weight, model.item_embedding.weight


def _simplex(model: Any) -> tuple[torch.Tensor, torch.Tensor]:
    users = torch.arange(model.n_users, device=model.device)
    parts = []
    for batch in users.split(4096):
        history = model.history_item_id[batch]
        aggregated = model.get_UI_aggregation(
            model.user_emb(batch), model.item_emb(history), model.history_item_len[batch]
        )
        parts.append(torch.nn.functional.normalize(aggregated, dim=1))
    return torch.cat(parts), torch.nn.functional.normalize(model.item_emb.weight, dim=1)


#: RecBole built-in (class name) -> its final (user, item) vectors.
RECBOLE_VECTORS: dict[str, Callable[[Any], tuple[torch.Tensor, torch.Tensor]]] = {
    "LightGCN": _pair,
    "NGCF": _pair,
    "DGCF": _pair,
    "SpectralCF": _pair,
    "NCL": _pair,
    "SGL": lambda m: tuple(m.forward(m.train_graph)[:2]),
    "BPR": _tables,
    "LINE": _tables,
    "ENMF": lambda m: (m.user_embedding.weight * m.H_i.weight.view(1, -1), m.item_embedding.weight),
    "NCEPLRec": lambda m: (m.user_embeddings, m.item_embeddings.T),
    "SimpleX": _simplex,
}


def vector_getter(model: Any) -> Callable[[Any], tuple[torch.Tensor, torch.Tensor]] | None:
    """How to get ``model``'s vectors, or None when its scores are no dot product."""
    if isinstance(model, EmbeddingRecommender):
        return lambda m: tuple(m.forward()[:2])
    cls = type(model)
    if cls.__module__.startswith("recbole.model."):
        return RECBOLE_VECTORS.get(cls.__name__)
    return None


def supports_vectors(model: Any) -> bool:
    return vector_getter(model) is not None


@torch.no_grad()
def dot_product_vectors(
    model: Any, check_users: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(user, item)`` float32 arrays indexed by internal id (row 0: padding) with
    ``scores = user @ item.T``, checked against ``full_sort_predict`` for ``check_users``."""
    name = type(model).__name__
    getter = vector_getter(model)
    if getter is None:
        raise NotDotProductError(
            f"{name}'s scores are not a dot product of user and item vectors, so it has no "
            "vectors to export; use `recommend` for its lists."
        )
    model.eval()
    user, item = getter(model)
    user = user.detach().float()
    item = item.detach().float()
    if check_users is not None and len(check_users):
        from recbole.data.interaction import Interaction

        uids = torch.as_tensor(check_users, dtype=torch.long, device=user.device)
        expected = model.full_sort_predict(Interaction({model.USER_ID: uids}).to(model.device))
        expected = expected.reshape(len(uids), -1).float().to(user.device)
        got = user[uids] @ item.T
        scale = max(float(expected.abs().max()), 1e-6)
        if got.shape != expected.shape or not torch.allclose(
            got, expected, rtol=1e-4, atol=1e-5 * scale
        ):
            raise NotDotProductError(
                f"{name}'s scores differ from the dot product of its vectors (largest difference "
                f"{float((got - expected).abs().max()) if got.shape == expected.shape else 'shape'}); "
                "refusing to export vectors that would rank differently."
            )
    return user.cpu().numpy().astype(np.float32), item.cpu().numpy().astype(np.float32)
