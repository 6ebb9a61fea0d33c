"""Does a modality carry signal? A check on held-out interactions, made by the run plan.

For each held-out (user, item) pair — the validation split when the runner provides it
(:func:`validation_probe`), else a seeded tenth of the training interactions — the item's
content is compared with the user's training items: ``pos`` is the mean cosine similarity
between the item's features and those of the user's training items; ``neg`` the same for a
training item the user has not interacted with, drawn with the training popularity (so
popularity alone cannot make a modality look informative). The modality's AUC is the share of
pairs with ``pos > neg`` (ties count half). It carries signal when the lower end of its 95%
confidence interval lies above 0.5; with fewer than ``MIN_PAIRS`` usable pairs the check is
inconclusive and the modality is kept.

On pure-noise features the AUC is 0.50 +- 0.01; on the embedded movielens-mm posters 0.60-0.61
and plots 0.67-0.68; on Amazon Scientific's text 0.76 (validation pairs, 3 seeds; docs/RESULTS.md,
"Do no harm").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
import torch

#: Pairs below which the check cannot decide (the modality is kept).
MIN_PAIRS = 1000
#: Pairs used at most (a seeded sample), which bounds the check's cost on large datasets.
MAX_PAIRS = 20000


@dataclass(frozen=True)
class ModalitySignal:
    """The check's result for one modality."""

    auc: float
    low: float  # lower end of the 95% confidence interval
    pairs: int
    source: str  # "validation" or "training hold-out"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "informative": self.informative}

    @property
    def conclusive(self) -> bool:
        return self.pairs >= MIN_PAIRS

    @property
    def informative(self) -> bool:
        """Kept: signal above chance, or too few pairs to tell."""
        return not self.conclusive or self.low > 0.5

    def __str__(self) -> str:
        if not self.conclusive:
            return f"inconclusive ({self.pairs} pairs < {MIN_PAIRS}; kept)"
        verdict = "signal" if self.informative else "no signal"
        return f"AUC {self.auc:.3f} (95% low {self.low:.3f}, {self.pairs} {self.source} pairs): {verdict}"


def probe_and_history(
    interactions: sp.spmatrix, seed: int, validation: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, str]:
    """(training history, probe users, probe items, source): the ``validation`` pairs (users,
    items) when given, else a seeded tenth of the training pairs held out."""
    history = sp.csr_matrix(interactions, dtype=np.float32)
    history.data[:] = 1.0
    if validation is not None:
        return history, np.asarray(validation[0]), np.asarray(validation[1]), "validation"
    coo = history.tocoo()
    rng = np.random.default_rng(seed)
    held = rng.random(len(coo.row)) < 0.1
    kept = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=history.shape)
    return kept, coo.row[held], coo.col[held], "training hold-out"


@torch.no_grad()
def modality_signal(
    features: torch.Tensor,
    mask: torch.Tensor,
    history: sp.csr_matrix,
    users: np.ndarray,
    items: np.ndarray,
    seed: int,
    source: str = "validation",
) -> ModalitySignal:
    """The AUC check of the module docstring for one modality's (n_items, d) features."""
    present = mask.cpu().numpy()
    rows = history.tocsr()
    rows = rows.multiply(present[np.newaxis, :]).tocsr()  # history items with this modality
    counts = np.asarray(rows.sum(axis=1)).ravel()
    usable = (items < len(present)) & present[np.clip(items, 0, len(present) - 1)] & (counts[users] > 0)
    users, items = users[usable], items[usable]
    rng = np.random.default_rng(seed)
    if len(users) > MAX_PAIRS:
        pick = rng.choice(len(users), MAX_PAIRS, replace=False)
        users, items = users[pick], items[pick]
    if len(users) == 0:
        return ModalitySignal(0.5, 0.0, 0, source)
    xn = torch.nn.functional.normalize(features.float(), dim=1).numpy()
    pool = rows.indices  # training items with this modality, with their popularity
    n_items = rows.shape[1]
    coo = rows.tocoo()
    seen = np.sort(coo.row.astype(np.int64) * n_items + coo.col)
    negatives = pool[rng.integers(0, len(pool), len(users))]
    for _ in range(50):  # redraw negatives the user has seen, or the positive itself
        codes = users.astype(np.int64) * n_items + negatives
        where = np.searchsorted(seen, codes).clip(0, max(len(seen) - 1, 0))
        clash = (negatives == items) | (seen[where] == codes)
        if not clash.any():
            break
        negatives[clash] = pool[rng.integers(0, len(pool), int(clash.sum()))]
    unique_users, inverse = np.unique(users, return_inverse=True)
    profile = (rows[unique_users] @ xn) / counts[unique_users][:, np.newaxis]  # mean history vector
    pos = np.einsum("ij,ij->i", xn[items], profile[inverse])
    neg = np.einsum("ij,ij->i", xn[negatives], profile[inverse])
    wins = np.where(pos > neg, 1.0, np.where(pos == neg, 0.5, 0.0))
    auc = float(wins.mean())
    se = math.sqrt(max(auc * (1 - auc), 1e-12) / len(wins))
    return ModalitySignal(auc, auc - 1.96 * se, int(len(wins)), source)
