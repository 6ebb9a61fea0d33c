"""Top-K recommendations for raw user tokens, from a checkpoint.

    from recbole_rlmm.inference import Recommender   # or: from recbole_rlmm import Recommender
    rec = Recommender.from_checkpoint("saved/RLMultimodalRec-....pth")
    rec.recommend(["u1", "u2"], k=10)      # DataFrame: user, rank, item, score

**Scores** are the model's own: ``full_sort_predict`` on RecBole ``Interaction`` batches of
internal user ids, joined with the user features as RecBole's full-sort dataloader joins them.
Models without ``full_sort_predict`` (RecBole's NeuMF, ConvNCF, NNCF) are scored with
``predict`` over every item, as RecBole's trainer does in ``_full_sort_batch_eval``. This
works for our models and every RecBole general recommender.

**Excluded items** get score -inf and are never listed: the padding item, each user's
training items, and with ``exclude_valid`` the user's validation items too. (RecBole's
evaluator masks the same items: on the validation split, the training items; on the test
split, training and validation items, less any item that is also one of the user's test
items.) A user with fewer than K items left gets a shorter list.

**Order** (deterministic): score descending; equal scores by internal item id ascending, i.e.
the order of the dataset's item tokens. RecBole's evaluator takes ``torch.topk``, whose order
among equal scores is unspecified; :mod:`recbole_rlmm.inference.check` applies this order to
the evaluator's own masked scores and compares the two lists item for item.

**Data**: loading refuses a checkpoint whose data files changed since training
(``changed_data="recompute"`` accepts them); no cached embedding is stored in a checkpoint,
so scores are always computed from the weights and today's files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recbole_rlmm.checkpoint import (
    FORMAT,
    CheckpointError,
    check_data,
    config_from_dict,
    read_checkpoint,
)
from recbole_rlmm.inference.errors import InferenceError
from recbole_rlmm.inference.vectors import dot_product_vectors
from recbole_rlmm.runner import load_for_inference, silence_recbole_warnings

#: Scores of one batch are at most this many numbers (users per batch = this / items).
BATCH_SCORES = 1 << 22
#: Rows per ``predict`` call when a model has no ``full_sort_predict``.
PREDICT_ROWS = 1 << 16
#: How many unknown tokens an error message shows.
SHOWN = 5


class UnknownTokenError(InferenceError):
    """User tokens that are not in the checkpoint's dataset."""


def quoted(tokens: Iterable[Any]) -> str:
    return ", ".join(repr(str(t)) for t in tokens)


def select_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` of each row: score descending, equal scores by column ascending.

    Returns ``(values, columns)``, each ``(rows, k)``. ``torch.topk`` picks the candidates;
    rows where scores tie at the K-th place are fully sorted (stable), so the lowest columns
    among equal scores win, whatever ``torch.topk`` would have picked.
    """
    k = min(int(k), scores.shape[1])
    values, columns = torch.topk(scores, k, dim=1)
    # within the selection: by column, then stably by score descending
    order = torch.argsort(columns, dim=1)
    values, columns = values.gather(1, order), columns.gather(1, order)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices
    values, columns = values.gather(1, order), columns.gather(1, order)
    tied = (scores >= values[:, -1:]).sum(dim=1) > k
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        ranked = torch.sort(scores[rows], dim=1, descending=True, stable=True)
        values[rows], columns[rows] = ranked.values[:, :k], ranked.indices[:, :k]
    return values, columns


def _interaction_matrix(dataset: Any, n_users: int, n_items: int) -> Any:
    """Users x items CSR matrix of a split's interactions (1 where the user has the item)."""
    import scipy.sparse as sp

    users = dataset.inter_feat[dataset.uid_field].numpy()
    items = dataset.inter_feat[dataset.iid_field].numpy()
    matrix = sp.csr_matrix(
        (np.ones(len(users), dtype=np.int32), (users, items)), shape=(n_users, n_items)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


def saved_dataset_files(config: Any) -> list[Path]:
    """RecBole's saved (pickled) datasets that ``create_dataset`` would read for ``config``
    instead of the data files (``dataset_save_path``, or ``<checkpoint_dir>/<dataset>-<class>.pth``
    as ``save_dataset: True`` writes it)."""
    names = [config["dataset_save_path"]] if config["dataset_save_path"] else []
    names += [
        os.path.join(config["checkpoint_dir"], f"{config['dataset']}-{cls}.pth")
        for cls in (f"{config['model']}Dataset", "Dataset")
    ]
    return [Path(name) for name in dict.fromkeys(names) if Path(name).is_file()]


def check_no_stale_dataset(
    path: str | os.PathLike[str], trust_checkpoint: bool, device: str | torch.device | None
) -> None:
    """With changed data files, refuse a RecBole saved dataset that would be read in their place
    (it was built from the old files, so the scores would not be today's)."""
    state = read_checkpoint(path, trust_checkpoint=trust_checkpoint)
    if state["format"] != FORMAT:
        return  # a RecBole pickle holds no data fingerprint
    config = config_from_dict(
        state["config"], torch.device(device) if isinstance(device, str) else device
    )
    saved = saved_dataset_files(config)
    if saved and check_data(state, config, Path(path), "recompute"):
        raise CheckpointError(
            f"{path}: the data files changed since training, but RecBole would read its saved "
            f"dataset {saved[0]} (built from the old files) instead of them; delete that file to "
            "score today's data."
        )


def load_checkpoint(
    path: str | os.PathLike[str],
    trust_checkpoint: bool = False,
    changed_data: str = "error",
    device: str | torch.device | None = None,
) -> Any:
    """:func:`recbole_rlmm.runner.load_for_inference`, with weights that do not fit
    today's data (after ``changed_data="recompute"``) reported in one line."""
    if changed_data not in ("error", "recompute"):
        raise InferenceError(f"changed_data={changed_data!r}; choose 'error' or 'recompute'.")
    silence_recbole_warnings()
    if changed_data == "recompute":
        check_no_stale_dataset(path, trust_checkpoint, device)
    try:
        return load_for_inference(
            path, trust_checkpoint=trust_checkpoint, changed_data=changed_data, device=device
        )
    except RuntimeError as exc:
        if "size mismatch" not in str(exc) and "Error(s) in loading state_dict" not in str(exc):
            raise
        first = next(
            (line.strip() for line in str(exc).splitlines() if "size mismatch" in line),
            str(exc)[:200],
        )
        raise CheckpointError(
            f"{path}: the trained weights do not fit today's data ({first}); the dataset's "
            "users or items changed since training. Retrain on today's data."
        ) from exc


class Recommender:
    """Top-K lists, scores and vectors of a trained model (see the module docstring)."""

    def __init__(self, loaded: Any) -> None:
        from recbole.model.abstract_recommender import GeneralRecommender

        self.loaded = loaded
        self.model = loaded.model
        self.config = loaded.config
        self.dataset = loaded.dataset
        self.model_name = str(self.config["model"])
        if not isinstance(self.model, GeneralRecommender):
            raise InferenceError(
                f"{self.model_name} is not a general recommender (user -> items); recommend, "
                "export and gates serve RecBole general recommenders and recbole-rlmm's models."
            )
        self.model.eval()
        self.device = torch.device(self.config["device"])
        self.uid_field = self.dataset.uid_field
        self.iid_field = self.dataset.iid_field
        #: internal ids (row/column counts), padding id 0 included
        self.user_num = int(self.dataset.user_num)
        self.item_num = int(self.dataset.item_num)
        self._user_tokens = np.asarray(self.dataset.field2id_token[self.uid_field])
        self._item_tokens = np.asarray(self.dataset.field2id_token[self.iid_field])
        self._user_index: dict[str, int] = dict(self.dataset.field2token_id[self.uid_field])
        train, valid = loaded.train_data._dataset, loaded.valid_data._dataset
        train_seen = _interaction_matrix(train, self.user_num, self.item_num)
        all_seen = (train_seen + _interaction_matrix(valid, self.user_num, self.item_num)).tocsr()
        all_seen.data[:] = 1
        self._seen = {False: train_seen, True: all_seen}
        self._degree = np.bincount(
            train.inter_feat[self.iid_field].numpy(), minlength=self.item_num
        )
        self._full_sort = True
        self._item_tensor: Any = None
        self._vectors: tuple[np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        trust_checkpoint: bool = False,
        changed_data: str = "error",
        device: str | torch.device | None = None,
    ) -> Recommender:
        """Load ``path`` (:func:`recbole_rlmm.runner.load_for_inference`): a checkpoint
        whose data files changed since training is refused unless ``changed_data="recompute"``;
        RecBole's own pickled checkpoints need ``trust_checkpoint=True``."""
        return cls(load_checkpoint(path, trust_checkpoint, changed_data, device))

    @property
    def path(self) -> Path:
        return Path(self.loaded.path)

    @property
    def n_users(self) -> int:
        """Users of the dataset (padding excluded)."""
        return self.user_num - 1

    @property
    def n_items(self) -> int:
        """Items of the dataset (padding excluded)."""
        return self.item_num - 1

    @property
    def user_tokens(self) -> list[str]:
        """Raw user tokens; token ``j`` has internal id ``j + 1`` (padding excluded)."""
        return [str(t) for t in self._user_tokens[1:]]

    @property
    def item_tokens(self) -> list[str]:
        """Raw item tokens; token ``j`` has internal id ``j + 1`` (padding excluded)."""
        return [str(t) for t in self._item_tokens[1:]]

    def item_degree(self) -> np.ndarray:
        """Training interactions of every item, by internal id (padding included, 0)."""
        return self._degree.astype(np.int64)

    # ------------------------------------------------------------------ tokens
    def user_ids(self, users: Iterable[Any], source: str = "users") -> np.ndarray:
        """Internal ids of raw user tokens; unknown tokens are an :class:`UnknownTokenError`
        naming them (``source`` says where they came from, e.g. ``--users``)."""
        tokens = [str(u) for u in users]
        unknown = [t for t in tokens if self._user_index.get(t, 0) == 0]  # 0: padding
        if unknown:
            unknown = list(dict.fromkeys(unknown))
            shown = quoted(unknown[:SHOWN])
            if len(unknown) > SHOWN:
                shown += f" (first {SHOWN} of {len(unknown)} shown)"
            raise UnknownTokenError(
                f"unknown user token(s) {shown} in {source}; the checkpoint's dataset has "
                f"{self.n_users} users, e.g. {quoted(self._user_tokens[1:3])}"
            )
        return np.fromiter((self._user_index[t] for t in tokens), dtype=np.int64, count=len(tokens))

    def check_k(self, k: int) -> int:
        if isinstance(k, bool) or int(k) != k or not 1 <= int(k) <= self.n_items:
            raise InferenceError(
                f"top-K must lie between 1 and the {self.n_items} items of the dataset; got {k}."
            )
        return int(k)

    # ------------------------------------------------------------------ scores
    def seen_matrix(self, exclude_valid: bool = False) -> Any:
        """Users x items CSR matrix of the items :meth:`recommend` excludes (padding aside)."""
        return self._seen[bool(exclude_valid)]

    @torch.no_grad()
    def scores(self, users: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """The model's raw scores, ``(len(users), item_num)``, of internal user ids (column =
        internal item id; column 0 is the padding item). Nothing is masked."""
        from recbole.data.interaction import Interaction

        users = torch.as_tensor(np.asarray(users, dtype=np.int64))
        interaction = self.dataset.join(Interaction({self.uid_field: users})).to(self.device)
        if self._full_sort:
            try:
                return self.model.full_sort_predict(interaction).reshape(len(users), -1).clone()
            except NotImplementedError:
                self._full_sort = False
        # as RecBole's trainer: every (user, item) pair through predict
        if self._item_tensor is None:
            self._item_tensor = self.dataset.get_item_feature().to(self.device)
        pairs = interaction.repeat_interleave(self.item_num)
        pairs.update(self._item_tensor.repeat(len(users)))
        parts = []
        for start in range(0, len(pairs), PREDICT_ROWS):
            part = self.model.predict(pairs[start : start + PREDICT_ROWS])
            parts.append(part.reshape(-1))
        return torch.cat(parts).reshape(len(users), self.item_num)

    def batch_size(self) -> int:
        """Users scored at once by default (about :data:`BATCH_SCORES` scores per batch)."""
        return max(1, BATCH_SCORES // self.item_num)

    @torch.no_grad()
    def topk_ids(
        self,
        users: Sequence[int] | np.ndarray,
        k: int,
        exclude_valid: bool = False,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-K of internal user ids: ``(items, scores)``, each ``(len(users), k)``; internal
        item ids ranked as the module docstring says, -1 (score -inf) where a user has fewer
        than K items left."""
        k = self.check_k(k)
        users = np.asarray(users, dtype=np.int64)
        seen = self.seen_matrix(exclude_valid)
        step = self.batch_size() if batch_size is None else int(batch_size)
        if step < 1:
            raise InferenceError(f"batch_size must be at least 1; got {batch_size}.")
        items = np.full((len(users), k), -1, dtype=np.int64)
        values = np.full((len(users), k), -np.inf, dtype=np.float64)
        for start in range(0, len(users), step):
            batch = users[start : start + step]
            scores = self.scores(batch)
            scores[:, 0] = -torch.inf
            rows = seen[batch]
            scores[
                torch.from_numpy(np.repeat(np.arange(len(batch)), np.diff(rows.indptr))).to(
                    scores.device
                ),
                torch.from_numpy(rows.indices.astype(np.int64)).to(scores.device),
            ] = -torch.inf
            top_values, top_items = select_topk(scores, k)
            top_values = top_values.double().cpu().numpy()
            top_items = top_items.cpu().numpy()
            top_items[np.isneginf(top_values)] = -1
            items[start : start + len(batch)] = top_items
            values[start : start + len(batch)] = top_values
        return items, values

    def recommend(
        self,
        users: Iterable[Any],
        k: int = 20,
        exclude_valid: bool = False,
        batch_size: int | None = None,
        source: str = "users",
    ) -> Any:
        """Top-``k`` items of each raw user token, as a pandas DataFrame with columns
        ``user``, ``rank`` (1 = best), ``item`` (raw tokens) and ``score``; each user once,
        in the order first given. Training items (with ``exclude_valid``, validation items
        too) are excluded; unknown tokens are an :class:`UnknownTokenError`."""
        import pandas as pd

        tokens = list(dict.fromkeys(str(u) for u in users))
        if not tokens:
            raise InferenceError(f"no users given in {source}.")
        uids = self.user_ids(tokens, source)
        items, values = self.topk_ids(uids, k, exclude_valid, batch_size)
        kept = items >= 0
        counts = kept.sum(axis=1)
        return pd.DataFrame(
            {
                "user": np.repeat(np.asarray(tokens, dtype=object), counts),
                "rank": np.concatenate([np.arange(1, c + 1) for c in counts])
                if len(counts)
                else [],
                "item": self._item_tokens[items[kept]].astype(object),
                "score": values[kept],
            }
        )

    # ------------------------------------------------------------------ vectors
    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Final user and item vectors (float32; row ``j`` = token ``j`` of
        :attr:`user_tokens` / :attr:`item_tokens`): score = dot product. Models whose scores
        are no dot product raise :class:`~recbole_rlmm.inference.vectors.NotDotProductError`."""
        if self._vectors is None:
            user, item = dot_product_vectors(self.model, check_users=self._check_users())
            self._vectors = user[1:], item[1:]
        return self._vectors

    def user_embeddings(self) -> np.ndarray:
        return self.vectors()[0]

    def item_embeddings(self) -> np.ndarray:
        return self.vectors()[1]

    def _check_users(self, count: int = 64) -> np.ndarray:
        """Users spread over the id range, for checking vectors against the model's scores."""
        return np.unique(
            np.linspace(1, self.user_num - 1, num=min(count, self.n_users)).astype(np.int64)
        )
