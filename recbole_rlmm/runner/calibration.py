"""Cold items among warm ones: the score offset of cold items, chosen on validation.

A model that scores items without training interactions (cold items) from their content, as
RLMultimodalRec does, gives them scores on another scale than its warm items'. In full ranking
that decides everything: too high, and cold items crowd the warm items a user will interact with
out of the top K; too low, and no cold item is ever recommended. How many held-out interactions
fall on cold items differs from one dataset to the next (none to all), so no fixed scale fits.

:func:`calibrate_cold_offset` scores the validation users once, keeps each user's top-K warm and
top-K cold items, and picks the offset added to every cold item's score that gives the best
validation metric (``valid_metric``: Recall, NDCG, Hit, Precision or MRR at its cut-off), the
lowest of equally good ones. With no cold item in validation, or when no offset beats ranking
cold items last, cold items stay last. Our runner's trainer calls it before every validation
evaluation (so early stopping sees the calibrated metric); the offset lives in the model
(``cold_offset``) and is saved with the checkpoint. In your own RecBole code, call it after
training (``calibrate_cold_offset(model, valid_data, config["valid_metric"])``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: Offsets tried between "cold items last" and "cold items first": quantiles of the gaps
#: between users' warm top-K scores and their best cold score.
GRID = 129
#: Metrics the offset can be chosen for (RecBole's names, lower case).
METRICS = ("recall", "ndcg", "hit", "precision", "mrr")


@dataclass(frozen=True)
class ColdCalibration:
    """What :func:`calibrate_cold_offset` chose and why."""

    offset: float  # added to every cold item's score; ``last`` for "after every warm item"
    last: float  # the model's "cold items last" offset
    metric: str  # e.g. recall@20
    value: float  # validation metric with the offset
    value_last: float  # ... with cold items last
    cold_share: float  # share of validation interactions on cold items
    cold_slots: float  # share of the top-K slots that go to cold items with the offset

    def __str__(self) -> str:
        if self.cold_share == 0:
            return "cold items rank last (no validation interaction is on a cold item)"
        where = "last" if self.offset == self.last else f"offset {self.offset:.4g}"
        return (
            f"cold items: {where}, {100 * self.cold_slots:.1f}% of the top-{self.metric.split('@')[1]} slots "
            f"({100 * self.cold_share:.1f}% of validation interactions are cold); validation {self.metric} "
            f"{self.value:.4f} (cold items last: {self.value_last:.4f})"
        )


def parse_metric(valid_metric: str) -> tuple[str, int]:
    """``Recall@20`` -> (``recall``, 20); a metric without a cut-off or another metric is
    calibrated for Recall at its cut-off (20 without one)."""
    match = re.fullmatch(r"\s*([A-Za-z]+)\s*@\s*(\d+)\s*", str(valid_metric))
    if not match:
        return "recall", 20
    name, k = match.group(1).lower(), int(match.group(2))
    return (name if name in METRICS else "recall"), k


def _per_user(name: str, hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """RecBole's per-user value of metric ``name`` from the top-k hit flags."""
    if name == "recall":
        return hits.sum(axis=1) / n_pos
    if name == "precision":
        return hits.sum(axis=1) / k
    if name == "hit":
        return hits.any(axis=1).astype(float)
    if name == "mrr":
        first = np.where(hits.any(axis=1), hits.argmax(axis=1), -1)
        return np.where(first >= 0, 1.0 / (first + 1), 0.0)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(n_pos, k).astype(int) - 1]
    return (hits * discount).sum(axis=1) / ideal


@dataclass
class _Lists:
    """Each validation user's top-k warm and cold scores and whether they are positives."""

    warm_scores: np.ndarray
    warm_hits: np.ndarray
    cold_scores: np.ndarray
    cold_hits: np.ndarray
    n_pos: np.ndarray
    n_cold_pos: np.ndarray

    def value(self, name: str, k: int, offset: float) -> tuple[float, float]:
        """(metric, share of the top-k slots taken by cold items) with ``offset``."""
        if name in ("recall", "precision", "hit") and self.warm_scores.shape[1] == k:
            return self._count_value(name, k, offset)
        values = np.concatenate([self.warm_scores, self.cold_scores + offset], axis=1)
        hits = np.concatenate([self.warm_hits, self.cold_hits], axis=1)
        order = np.argsort(-values, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(hits, order, axis=1)
        cold = (order >= self.warm_scores.shape[1]) & np.isfinite(np.take_along_axis(values, order, axis=1))
        return float(_per_user(name, top, self.n_pos, k).mean()), float(cold.mean())

    def _count_value(self, name: str, k: int, offset: float) -> tuple[float, float]:
        """The same for metrics that count hits, without sorting: both lists are sorted, so the
        merged top k is the first ``k - c`` warm and the first ``c`` cold items, where cold item
        ``j`` is in when its score beats warm item ``k - 1 - j`` (ties go to warm items, as in
        the stable sort above)."""
        k_cold = self.cold_scores.shape[1]
        c = (self.cold_scores + offset > self.warm_scores[:, k - 1 : k - 1 - k_cold : -1] if k_cold < k
             else self.cold_scores + offset > self.warm_scores[:, ::-1]).sum(axis=1)
        warm_cum = np.concatenate([np.zeros((len(c), 1)), np.cumsum(self.warm_hits, axis=1)], axis=1)
        cold_cum = np.concatenate([np.zeros((len(c), 1)), np.cumsum(self.cold_hits, axis=1)], axis=1)
        rows = np.arange(len(c))
        n_hits = warm_cum[rows, k - c] + cold_cum[rows, c]
        if name == "recall":
            per_user = n_hits / self.n_pos
        elif name == "precision":
            per_user = n_hits / k
        else:
            per_user = (n_hits > 0).astype(float)
        return float(per_user.mean()), float((c / k).mean())


#: Scores held at once by the calibration pass (users x items).
SCORE_BLOCK = 1 << 24


def _batches(model: Any, valid_data: Any) -> Any:
    """(scores, history mask rows/cols, positive rows/cols) per block of validation users.

    A RecBole full-sort dataloader is read through its per-user tables, in blocks of
    :data:`SCORE_BLOCK` scores (its own batches hold one user when there are more than
    ``eval_batch_size`` items); any other iterable of RecBole's ``(interaction, history,
    positive_u, positive_i)`` batches is read as it is.
    """
    uids = getattr(valid_data, "uid_list", None)
    if uids is None or getattr(valid_data, "uid2history_item", None) is None:
        for interaction, history, positive_u, positive_i in valid_data:
            scores = model.full_sort_predict(interaction.to(model.device)).view(-1, model.n_items)
            yield scores, history, (positive_u, positive_i)
        return
    from recbole.data.interaction import Interaction

    step = max(1, SCORE_BLOCK // max(1, model.n_items))
    for start in range(0, len(uids), step):
        users = uids[start : start + step]
        scores = model.full_sort_predict(Interaction({valid_data.uid_field: users}).to(model.device))
        scores = scores.view(len(users), -1)
        index = users.numpy()
        history = [valid_data.uid2history_item[u] for u in index]
        positive = [valid_data.uid2positive_item[u] for u in index]

        def pairs(lists: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            rows = torch.cat([torch.full((len(x),), j, dtype=torch.long) for j, x in enumerate(lists)])
            return rows, torch.cat(list(lists)).long()

        yield scores, pairs(history), pairs(positive)


@torch.no_grad()
def _collect(model: Any, valid_data: Any, k: int) -> _Lists:
    n_items = model.n_items
    cold = torch.zeros(n_items, dtype=torch.bool, device=model.device)
    cold[model.cold_items] = True
    cold_columns = cold.nonzero().view(-1)
    k_cold = min(k, len(cold_columns))
    parts: list[tuple[np.ndarray, ...]] = []
    for raw, history, (positive_u, positive_i) in _batches(model, valid_data):
        scores = raw.clone()
        scores[:, 0] = -math.inf
        if history is not None:
            scores[history] = -math.inf
        # positives as sorted keys (row * n_items + item): hit flags of the top lists by lookup,
        # without a users x items mask
        keys = torch.unique(positive_u.long().to(scores.device) * n_items + positive_i.long().to(scores.device))
        pos_rows, pos_items = keys // n_items, keys % n_items
        n_pos = torch.bincount(pos_rows, minlength=scores.shape[0])
        n_cold_pos = torch.bincount(pos_rows[cold[pos_items]], minlength=scores.shape[0])

        def hits(columns: torch.Tensor, keys: torch.Tensor = keys) -> torch.Tensor:
            rows = torch.arange(columns.shape[0], device=columns.device).unsqueeze(1)
            return torch.isin(rows * n_items + columns, keys)

        cold_v, cold_at = scores[:, cold_columns].topk(k_cold, dim=1)
        cold_i = cold_columns[cold_at]
        scores[:, cold_columns] = -math.inf
        warm_v, warm_i = scores.topk(k, dim=1)
        parts.append(
            tuple(x.cpu().numpy() for x in (warm_v, hits(warm_i), cold_v, hits(cold_i), n_pos, n_cold_pos))
        )
    joined = [np.concatenate([p[i] for p in parts]) for i in range(6)] if parts else [np.zeros((0, 0))] * 6
    return _Lists(*joined)


def calibrate_cold_offset(model: Any, valid_data: Any, valid_metric: str) -> ColdCalibration | None:
    """Choose ``model``'s cold-item score offset on ``valid_data`` (full-ranking validation
    dataloader) for ``valid_metric`` and set it (``model.set_cold_offset``). None when the model
    has no cold item to place. Every validation user is scored, also in each process of a
    distributed run (whose dataloaders hold a share of the users each), so that every process
    chooses the same offset."""
    if not len(getattr(model, "cold_items", ())):
        return None
    name, k = parse_metric(valid_metric)
    last = float(model.cold_last)
    was_training = model.training
    model.eval()
    model.set_cold_offset(0.0)  # raw scores
    try:
        lists = _collect(model, valid_data, k)
    finally:
        model.train(was_training)
    n_pos = lists.n_pos.sum()
    share = float(lists.n_cold_pos.sum() / n_pos) if n_pos else 0.0
    value_last, _ = lists.value(name, k, -math.inf) if len(lists.n_pos) else (0.0, 0.0)
    best, best_value, best_slots = last, value_last, 0.0
    if share > 0 and lists.cold_scores.shape[1]:
        gaps = (lists.warm_scores - lists.cold_scores[:, :1]).ravel()
        gaps = gaps[np.isfinite(gaps)]
        for offset in np.unique(np.quantile(gaps, np.linspace(0.0, 1.0, GRID))) if gaps.size else ():
            value, slots = lists.value(name, k, float(offset) + 1e-6)
            if value > best_value:
                best, best_value, best_slots = float(offset) + 1e-6, value, slots
    model.set_cold_offset(best)
    return ColdCalibration(best, last, f"{name}@{k}", best_value, value_last, share, best_slots)
