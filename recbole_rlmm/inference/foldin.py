"""Fold-in: a vector for a user who was not in training, from the items they interacted with,
without retraining. The vector lives in the model's own scoring space, so its scores are dot
products with the same item vectors that rank known users (:meth:`Recommender.vectors`).

Two ways, chosen by the model (:func:`fold_in_method`):

* **propagation** (LightGCN-style models: recbole-rlmm's RLMultimodalRec and FREEDOM; RecBole's
  LightGCN, SGL and NCL). Such a model builds a user as the mean of LightGCN layers
  ``e_u = (e_u^0 + e_u^1 + ... + e_u^L) / (L + 1)`` with ``e_u^l = sum_i e_i^(l-1) /
  sqrt(d_u d_i)`` over the user's items. For a new user every term but the first is computed
  exactly that way: over the user's own edges (``d_u`` = their items, ``d_i`` = the item's
  training degree plus this new edge), with the trained item layers ``e_i^0 .. e_i^(L-1)`` of
  the trained graph (the new user does not change them). The first term is the user's own
  layer-0 embedding, a free parameter learned for each trained user; a new user has none, so it
  is predicted from the propagated part by a linear map fitted by ridge least squares on the
  trained users (``e_u^0 ~ (e_u^1 + ... + e_u^L) W``). At start-up the propagation is checked
  against the model: with a trained user's own layer-0 embedding it must give that user's
  trained vector (:func:`check_propagation`).
* **linear** (every other dot-product model: BPR, VBPR, MMGCN, LATTICE (whose user-item graph has
  self-loops and row normalisation), NGCF, DGCF, LINE, ...): the
  user's vector is predicted from the mean of their items' final vectors by a linear map fitted
  by ridge least squares on the trained users (trained user vector ~ mean of their training
  items' vectors times W): a least-squares fold-in that needs nothing of the model but its
  vectors.

RLMultimodalRec's scoring vectors carry one extra last column when the dataset has cold items
(1 for users, the cold-score offset for cold items, 0 for warm ones); a folded-in user gets the 1
too, so cold items are placed as they are for known users. With ``item_graph_users`` its users
also add their items' item-graph vectors with first-layer weights, ``(R^ h)(u)``; propagation
rebuilds that term over the new user's edges the same way.

``bench/foldin.py`` measures both against the same users' trained vectors (docs/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recbole_rlmm.inference.errors import InferenceError
from recbole_rlmm.inference.recommender import select_topk

#: Ridge penalty of the fitted maps, relative to the mean eigenvalue of the inputs' Gram matrix.
RIDGE = 0.1
#: Largest relative difference between a trained user's vector and its propagation with the
#: user's own layer-0 embedding before the propagation is declared not to match the model.
CHECK_TOLERANCE = 1e-3
#: LightGCN's (and RecBole's) epsilon on node degrees.
DEGREE_EPS = 1e-7


Layers = tuple[torch.Tensor, torch.Tensor, int, "torch.Tensor | None"]


def _recbole_lightgcn(model: Any) -> Layers:
    return model.user_embedding.weight, model.item_embedding.weight, int(model.n_layers), None


def _ours_id_tables(model: Any) -> Layers:
    return model.user_embedding.weight, model.item_id_embedding.weight, int(model.n_ui_layers), None


def _rlmultimodalrec(model: Any) -> Layers:
    out = model.forward()  # layer-0: ID (warm items) + content, as the model propagates it
    # users also add their items' item-graph vectors with first-layer weights (item_graph_users)
    return out.user_ego, out.item_ego, int(model.n_layers), model.user_side(out.item_ego)


#: LightGCN-style models -> (user layer-0, item layer-0, layers, item vectors every user adds
#: with LightGCN's first-layer weights, or None) of the trained model.
LAYER_ZERO = {
    ("recbole_rlmm", "RLMultimodalRec"): _rlmultimodalrec,
    ("recbole_rlmm", "FREEDOM"): _ours_id_tables,
    ("recbole", "LightGCN"): _recbole_lightgcn,
    ("recbole", "SGL"): _recbole_lightgcn,
    ("recbole", "NCL"): _recbole_lightgcn,
}


def _package(model: Any) -> str:
    return type(model).__module__.split(".")[0]


def fold_in_method(model: Any) -> str:
    """``propagation`` for the LightGCN-style models of :data:`LAYER_ZERO`, else ``linear``."""
    return "propagation" if (_package(model), type(model).__name__) in LAYER_ZERO else "linear"


def ridge_fit(inputs: np.ndarray, targets: np.ndarray, ridge: float | None = None) -> np.ndarray:
    """``W`` minimising ``|inputs W - targets|^2 + lambda |W|^2``, lambda = ``ridge`` (default
    :data:`RIDGE`) x the mean eigenvalue of ``inputs^T inputs``."""
    ridge = RIDGE if ridge is None else ridge
    x = inputs.astype(np.float64)
    gram = x.T @ x
    lam = ridge * max(float(np.trace(gram)) / max(gram.shape[0], 1), 1e-12)
    return np.linalg.solve(gram + lam * np.eye(gram.shape[0]), x.T @ targets.astype(np.float64))


def mask_items(scores: torch.Tensor, rows: sp.csr_matrix) -> torch.Tensor:
    """Scores -inf for the padding item (column 0) and, in row r, the items of ``rows[r]``."""
    scores[:, 0] = -torch.inf
    scores[
        torch.from_numpy(np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))),
        torch.from_numpy(rows.indices.astype(np.int64)),
    ] = -torch.inf
    return scores


def top_items(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(items, scores)`` of each row's top ``k`` (:func:`select_topk`'s order), item -1 where the
    score is -inf (fewer than ``k`` items left)."""
    values, items = select_topk(scores, k)
    values = values.double().cpu().numpy()
    items = items.cpu().numpy()
    items[np.isneginf(values)] = -1
    return items, values


@dataclass
class PropagationCheck:
    users: int
    largest_difference: float

    @property
    def ok(self) -> bool:
        return self.largest_difference <= CHECK_TOLERANCE


class FoldIn:
    """Scoring vectors for new users (see the module docstring).

    ``rec`` is a :class:`~recbole_rlmm.inference.recommender.Recommender` of a dot-product model;
    ``fit_users`` (internal ids) are the trained users the maps are fitted on (default: every
    user with a training item). ``method`` forces ``linear`` for a propagation model.
    """

    def __init__(
        self, rec: Any, fit_users: np.ndarray | None = None, method: str | None = None
    ) -> None:
        users, items = rec.vectors()  # checked against the model's own scores
        self.rec = rec
        self.model_name = rec.model_name
        self.train = sp.csr_matrix(rec.seen_matrix(False), dtype=np.float64)  # user_num x item_num
        self.user_degree = np.asarray(self.train.sum(axis=1)).ravel()
        self.item_degree = np.asarray(self.train.sum(axis=0)).ravel()
        pad = np.zeros((1, items.shape[1]), dtype=np.float32)
        #: scoring vectors by internal id (row 0: padding)
        self.item_vectors = np.vstack([pad, items])
        self.user_vectors_trained = np.vstack([pad, users])
        # RLMultimodalRec with cold items: one more column, 1 for every user
        self.cold_column = bool(users.shape[0] and np.all(users[:, -1] == 1.0))
        self.dim = items.shape[1] - int(self.cold_column)
        if fit_users is None:
            fit_users = np.flatnonzero(self.user_degree > 0)
        self.fit_users = np.asarray(fit_users, dtype=np.int64)
        if not len(self.fit_users):
            raise InferenceError("fold-in needs trained users to fit on; the dataset has none.")
        wanted = method or fold_in_method(rec.model)
        if wanted == "propagation" and fold_in_method(rec.model) != "propagation":
            raise InferenceError(
                f"{self.model_name} is not a LightGCN-style model; its fold-in is 'linear'."
            )
        self.note = ""
        if wanted == "propagation":
            self._set_up_propagation()
            check = self.check_propagation()
            if not check.ok:  # a model whose propagation differs from LightGCN's
                self.note = (
                    f"propagation does not reproduce {self.model_name}'s user vectors (largest "
                    f"relative difference {check.largest_difference:.2g}); linear fold-in used"
                )
                wanted = "linear"
        if wanted == "linear":
            self._set_up_linear()
        elif wanted != "propagation":
            raise InferenceError(f"fold-in method {wanted!r}; choose 'propagation' or 'linear'.")
        self.method = wanted

    # ------------------------------------------------------------------ propagation
    @torch.no_grad()
    def _set_up_propagation(self) -> None:
        user0, item0, layers, side = LAYER_ZERO[(_package(self.rec.model), type(self.rec.model).__name__)](
            self.rec.model
        )
        self.layers = layers
        self.user0 = user0.detach().double().cpu().numpy()
        item0 = item0.detach().double().cpu().numpy()
        # trained graph: R_hat = D_u^-1/2 R D_i^-1/2; item layers 0 .. L-1
        du = np.power(self.user_degree + DEGREE_EPS, -0.5)
        di = np.power(self.item_degree + DEGREE_EPS, -0.5)
        norm = sp.csr_matrix(sp.diags(du) @ self.train @ sp.diags(di))
        item_layers, user_layer, item_layer = [item0], self.user0, item0
        for _ in range(max(layers - 1, 0)):
            user_layer, item_layer = norm @ item_layer, norm.T @ user_layer
            item_layers.append(item_layer)
        self.item_layers = item_layers
        #: sum over l of item layer l-1, for a user's layers 1..L: (item_num, d)
        self.item_layer_sum = np.sum(item_layers, axis=0) if layers else np.zeros_like(item0)
        if side is not None:  # (R^ side)(u) outside the layer mean: (L + 1) side inside it
            self.item_layer_sum = self.item_layer_sum + (layers + 1) * side.detach().double().cpu().numpy()
        self.map = None
        if layers:
            propagated = self._propagated(self.train[self.fit_users], trained=True)
            self.map = ridge_fit(propagated, self.user0[self.fit_users])

    def _propagated(self, rows: sp.csr_matrix, trained: bool) -> np.ndarray:
        """``e_u^1 + ... + e_u^L`` of users with item rows ``rows`` (binary CSR over internal
        item ids): trained users keep the trained degrees, new users add their edge to each."""
        du = np.asarray(rows.sum(axis=1)).ravel()
        di = self.item_degree + (0.0 if trained else 1.0)
        weights = sp.diags(np.power(du + DEGREE_EPS, -0.5)) @ rows @ sp.diags(
            np.power(di + DEGREE_EPS, -0.5)
        )
        return np.asarray(sp.csr_matrix(weights) @ self.item_layer_sum)

    def check_propagation(self, count: int = 64) -> PropagationCheck:
        """Trained users' vectors rebuilt by propagation from their own layer-0 embedding."""
        users = self.fit_users[np.linspace(0, len(self.fit_users) - 1, min(count, len(self.fit_users))).astype(int)]
        rebuilt = (self.user0[users] + self._propagated(self.train[users], trained=True)) / (
            self.layers + 1
        )
        trained = self.user_vectors_trained[users, : self.dim].astype(np.float64)
        scale = max(float(np.abs(trained).max()), 1e-12)
        diff = float(np.abs(rebuilt - trained).max()) / scale if rebuilt.shape == trained.shape else np.inf
        return PropagationCheck(len(users), diff)

    # ------------------------------------------------------------------ linear
    def _set_up_linear(self) -> None:
        inputs = self._item_mean(self.train[self.fit_users])
        self.map = ridge_fit(inputs, self.user_vectors_trained[self.fit_users, : self.dim])

    def _item_mean(self, rows: sp.csr_matrix) -> np.ndarray:
        count = np.asarray(rows.sum(axis=1)).ravel()
        mean = sp.diags(1.0 / np.maximum(count, 1)) @ rows
        return np.asarray(sp.csr_matrix(mean) @ self.item_vectors[:, : self.dim].astype(np.float64))

    # ------------------------------------------------------------------ use
    def history_matrix(self, histories: Sequence[Sequence[int] | np.ndarray]) -> sp.csr_matrix:
        """Binary CSR (len(histories) x item_num) of internal item ids (repeats count once)."""
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        cols = (
            np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
            if len(histories)
            else np.zeros(0, dtype=np.int64)
        )
        matrix = sp.csr_matrix(
            (np.ones(len(cols)), (rows, cols)), shape=(len(histories), len(self.item_vectors))
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    def user_vectors(self, histories: Sequence[Sequence[int] | np.ndarray] | sp.csr_matrix) -> np.ndarray:
        """Scoring vectors (float32, one row per history) of new users with these internal item
        ids; score an item by the dot product with :attr:`item_vectors`."""
        rows = histories if sp.issparse(histories) else self.history_matrix(histories)
        rows = sp.csr_matrix(rows, dtype=np.float64)
        if self.method == "propagation":
            propagated = self._propagated(rows, trained=False)
            layer0 = propagated @ self.map if self.map is not None else np.zeros_like(propagated)
            vectors = (layer0 + propagated) / (self.layers + 1)
        else:
            vectors = self._item_mean(rows) @ self.map
        if self.cold_column:
            vectors = np.hstack([vectors, np.ones((len(vectors), 1))])
        return vectors.astype(np.float32)

    @torch.no_grad()
    def topk(
        self, rows: sp.csr_matrix, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (:func:`top_items`) of new users with these history rows, their own items
        (or the rows of ``exclude``) left out."""
        vectors = torch.from_numpy(self.user_vectors(rows))
        scores = mask_items(vectors @ torch.from_numpy(self.item_vectors).T, rows if exclude is None else exclude)
        return top_items(scores, k)

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` says about the fold-in."""
        text = {
            "propagation": f"LightGCN propagation over the new user's edges ({self.layers} layers, "
            "trained item layers); layer-0 embedding from a ridge map fitted on "
            f"{len(self.fit_users)} trained users",
            "linear": "mean of the user's item vectors times a ridge map fitted on "
            f"{len(self.fit_users)} trained users",
        }[self.method]
        out = {"method": self.method, "how": text}
        if self.note:
            out["note"] = self.note
        return out
