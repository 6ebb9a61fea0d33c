"""Do ``recommend``'s lists equal the ranking of RecBole's own full-sort evaluator?

:func:`evaluator_topk` runs RecBole's ``Trainer._full_sort_batch_eval`` (the model's scores,
the padding item and the history mask of the split's full-sort dataloader, exactly as the
evaluator computes them) and orders each user's top K as
:func:`~recbole_rlmm.inference.recommender.select_topk` does: score descending, then item id.
:func:`compare_with_evaluator` puts :meth:`Recommender.topk_ids` next to it, for the test split
with ``exclude_valid=True`` (the evaluator's test mask covers training and validation items),
for the validation split without.

Scores are computed in other batches than the evaluator's, and a matrix product's last bits
can depend on the batch, so two items whose scores differ by float noise may swap places;
such swaps are counted (``reordered``), not failed: the scores must agree position by
position and, within every run of near-equal scores except the last (cut at K), the items must
be the same. Users whose held-out items were also seen in training are skipped (the evaluator
leaves those items unmasked; ``recommend`` never recommends seen items).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from recbole_rlmm.inference.errors import InferenceError
from recbole_rlmm.inference.recommender import Recommender, select_topk

#: Scores closer than this (times the largest absolute score, at least 1) are float noise.
RELATIVE_TOLERANCE = 1e-5


@dataclass
class EvaluatorList:
    items: np.ndarray
    scores: np.ndarray
    positives: np.ndarray


@torch.no_grad()
def evaluator_topk(loaded: Any, k: int, split: str = "test") -> dict[int, EvaluatorList]:
    """Top ``k`` of every user of ``split`` as RecBole's evaluator ranks them (see the module
    docstring), without building a trainer (nothing is written). ``{internal user id:
    EvaluatorList}``; the scores equal ``torch.topk``'s values, which RecBole's metrics use."""
    from functools import partial
    from types import SimpleNamespace

    from recbole.data.dataloader import FullSortEvalDataLoader
    from recbole.trainer import Trainer

    data = loaded.test_data if split == "test" else loaded.valid_data
    if not isinstance(data, FullSortEvalDataLoader):
        raise InferenceError(
            f"the checkpoint's {split} evaluation is not full-ranking ({type(data).__name__}); "
            "the comparison needs `eval_args: {mode: full}`."
        )
    config = loaded.config
    evaluator = SimpleNamespace(
        model=loaded.model,
        device=config["device"],
        test_batch_size=config["eval_batch_size"],
        tot_item_num=data._dataset.item_num,
        item_tensor=data._dataset.get_item_feature().to(config["device"]),
    )
    evaluator._spilt_predict = partial(Trainer._spilt_predict, evaluator)
    loaded.model.eval()
    out: dict[int, EvaluatorList] = {}
    for batch in data:
        interaction, scores, positive_u, positive_i = Trainer._full_sort_batch_eval(
            evaluator, batch
        )
        values, items = select_topk(scores, k)
        reference = torch.topk(scores, min(k, scores.shape[1]), dim=1).values
        if not torch.equal(values, reference):  # pragma: no cover - would be a bug in select_topk
            raise AssertionError("select_topk disagrees with torch.topk's scores")
        users = interaction[loaded.dataset.uid_field].tolist()
        positive_u, positive_i = positive_u.cpu().numpy(), positive_i.cpu().numpy()
        for row, (uid, row_items, row_values) in enumerate(
            zip(users, items.cpu().numpy(), values.double().cpu().numpy())
        ):
            out[int(uid)] = EvaluatorList(row_items, row_values, positive_i[positive_u == row])
    return out


def agreement(
    mine: np.ndarray, mine_scores: np.ndarray, ref: np.ndarray, ref_scores: np.ndarray
) -> str:
    """``exact`` (same items), ``ties`` (same up to swaps among near-equal scores) or ``differ``."""
    finite = np.abs(ref_scores[np.isfinite(ref_scores)])
    tol = RELATIVE_TOLERANCE * max(1.0, float(finite.max()) if len(finite) else 1.0)
    if not np.allclose(mine_scores, ref_scores, rtol=0.0, atol=tol):
        return "differ"
    if np.array_equal(mine, ref):
        return "exact"
    k, start = len(ref), 0
    for end in range(1, k + 1):
        if end == k or ref_scores[end - 1] - ref_scores[end] > tol:
            if end < k and set(mine[start:end].tolist()) != set(ref[start:end].tolist()):
                return "differ"
            start = end
    return "ties"


@dataclass
class Comparison:
    split: str
    k: int
    users: int = 0
    exact: int = 0
    reordered: int = 0
    skipped: int = 0
    failures: list[tuple[str, list[str], list[str]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and self.users > 0

    def summary(self) -> str:
        text = (
            f"{self.split} split, top {self.k}: {self.users} users compared with RecBole's evaluator: "
            f"{self.exact} identical, {self.reordered} identical up to swaps of float-noise ties, "
            f"{len(self.failures)} different"
        )
        if self.skipped:
            text += f"; {self.skipped} skipped (a held-out item also seen in training)"
        for user, mine, ref in self.failures[:3]:
            text += f"\n  {user}: recommend {mine} vs evaluator {ref}"
        return text


def compare_with_evaluator(
    recommender: Recommender,
    k: int = 20,
    split: str = "test",
    users: np.ndarray | None = None,
    batch_size: int | None = None,
) -> Comparison:
    """Compare :meth:`Recommender.topk_ids` with :func:`evaluator_topk` for ``users`` (internal
    ids; default: every user of ``split``)."""
    if split not in ("test", "valid"):
        raise InferenceError(f"split={split!r}; choose 'test' or 'valid'.")
    k = recommender.check_k(k)
    reference = evaluator_topk(recommender.loaded, k, split)
    exclude_valid = split == "test"
    seen = recommender.seen_matrix(exclude_valid)
    chosen = np.asarray(sorted(reference) if users is None else users, dtype=np.int64)
    chosen = np.asarray([u for u in chosen if int(u) in reference], dtype=np.int64)
    result = Comparison(split, k)
    kept = []
    for uid in chosen:
        positives = reference[int(uid)].positives
        if seen[int(uid), positives].sum() > 0:
            result.skipped += 1
        else:
            kept.append(uid)
    if not kept:
        return result
    kept_ids = np.asarray(kept, dtype=np.int64)
    items, scores = recommender.topk_ids(
        kept_ids, k, exclude_valid=exclude_valid, batch_size=batch_size
    )
    tokens = np.asarray(recommender.dataset.field2id_token[recommender.iid_field])
    user_tokens = np.asarray(recommender.dataset.field2id_token[recommender.uid_field])
    for row, uid in enumerate(kept_ids):
        ref = reference[int(uid)]
        verdict = agreement(items[row], scores[row], ref.items, ref.scores)
        result.users += 1
        if verdict == "exact":
            result.exact += 1
        elif verdict == "ties":
            result.reordered += 1
        else:
            result.failures.append(
                (
                    str(user_tokens[uid]),
                    [str(tokens[i]) if i >= 0 else "-" for i in items[row]],
                    [str(tokens[i]) for i in ref.items],
                )
            )
    return result
