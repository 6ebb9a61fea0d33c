"""Fold-in for new users, measured: each test user treated as new, against their trained vector.

    python bench/foldin.py CHECKPOINT [CHECKPOINT ...] [--k 20] [--folds 2] [--out foldin.json]

For every checkpoint (a dot-product model trained by ``recbole-rlmm run``) and every user of the
test split:

* **trained**: the user's own trained vector, ranked by RecBole's full-sort evaluator on the test
  split (:func:`recbole_rlmm.inference.check.evaluator_topk`: training and validation items
  masked), i.e. the run's test metrics;
* **fold-in**: the user treated as new: a vector folded in from their *training* items only
  (:class:`recbole_rlmm.inference.foldin.FoldIn`, the way ``recbole-rlmm serve`` answers ``POST
  /recommendations``), ranked over the same items with the same mask. The maps the fold-in fits
  on trained users are fitted *without* the users being scored (``--folds`` cross-fitting: the
  users are split at random into folds; each fold is folded in with maps fitted on every other
  trained user), so no user's own trained vector enters their fold-in.

Recall@K and NDCG@K as RecBole computes them (Recall: hits / held-out items; NDCG: DCG over the
ideal DCG of min(held-out, K) hits), averaged over the test users; the ratio is fold-in /
trained. For LightGCN-style models (propagation fold-in) the linear fold-in is measured too.

Caveat (inherent to measuring fold-in on users who exist): the trained item vectors saw these
users' training interactions. A user who really arrives after training did not shape them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def recall_ndcg(top: list[np.ndarray], positives: list[np.ndarray], k: int) -> tuple[float, float]:
    """Mean Recall@k and NDCG@k over users (RecBole's definitions)."""
    recalls, ndcgs = [], []
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    for items, pos in zip(top, positives):
        hits = np.isin(np.asarray(items[:k]), pos).astype(np.float64)
        recalls.append(hits.sum() / len(pos))
        ideal = discount[: min(len(pos), k)].sum()
        ndcgs.append((hits * discount[: len(hits)]).sum() / ideal)
    return float(np.mean(recalls)), float(np.mean(ndcgs))


def fold_in_topk(rec, foldin_cls, users: np.ndarray, k: int, folds: int, seed: int, method: str | None):
    """Top-k of ``users`` folded in from their training items (cross-fitted maps), training and
    validation items left out as the evaluator's test mask does; and the fold-in method used."""
    train = rec.seen_matrix(False)
    masked = rec.seen_matrix(True)
    trained_users = np.flatnonzero(np.asarray(train.sum(axis=1)).ravel() > 0)
    order = np.random.default_rng(seed).permutation(len(users))
    tops: dict[int, np.ndarray] = {}
    used = None
    for part in np.array_split(order, folds):
        fold_users = users[part]
        fold_in = foldin_cls(rec, fit_users=np.setdiff1d(trained_users, fold_users), method=method)
        used = fold_in.method
        items, _ = fold_in.topk(train[fold_users], k, exclude=masked[fold_users])
        tops.update(zip(fold_users.tolist(), items))
    return [tops[u] for u in users.tolist()], used


def measure(path: str, k: int, folds: int, seed: int, changed_data: str) -> list[dict]:
    from recbole_rlmm.inference.check import evaluator_topk
    from recbole_rlmm.inference.foldin import FoldIn, fold_in_method
    from recbole_rlmm.inference.recommender import Recommender

    rec = Recommender.from_checkpoint(path, changed_data=changed_data)
    reference = evaluator_topk(rec.loaded, k, "test")
    users = np.array(sorted(reference), dtype=np.int64)
    positives = [reference[u].positives for u in users.tolist()]
    trained = recall_ndcg([reference[u].items for u in users.tolist()], positives, k)
    train = rec.seen_matrix(False)
    base = {
        "checkpoint": str(path),
        "model": rec.model_name,
        "dataset": str(rec.config["dataset"]),
        "test_users": len(users),
        "train_items_per_user": float(np.asarray(train[users].sum(axis=1)).mean()),
        "k": k,
        "trained_recall": trained[0],
        "trained_ndcg": trained[1],
    }
    methods = [None] + (["linear"] if fold_in_method(rec.model) == "propagation" else [])
    rows = []
    for method in methods:
        top, used = fold_in_topk(rec, FoldIn, users, k, folds, seed, method)
        recall, ndcg = recall_ndcg(top, positives, k)
        rows.append({
            **base,
            "method": used,
            "foldin_recall": recall,
            "foldin_ndcg": ndcg,
            "recall_ratio": recall / trained[0] if trained[0] else float("nan"),
            "ndcg_ratio": ndcg / trained[1] if trained[1] else float("nan"),
        })
    return rows


def markdown(rows: list[dict]) -> str:
    k = rows[0]["k"] if rows else 20
    lines = [
        f"| dataset | model | test users | train items / user | trained Recall@{k} | trained NDCG@{k} "
        f"| fold-in | fold-in Recall@{k} (x trained) | fold-in NDCG@{k} (x trained) |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['test_users']:,} | {r['train_items_per_user']:.1f} "
            f"| {r['trained_recall']:.4f} | {r['trained_ndcg']:.4f} | {r['method']} "
            f"| {r['foldin_recall']:.4f} ({r['recall_ratio']:.2f}) "
            f"| {r['foldin_ndcg']:.4f} ({r['ndcg_ratio']:.2f}) |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT")
    parser.add_argument("--k", type=int, default=20, help="cut-off of Recall and NDCG")
    parser.add_argument("--folds", type=int, default=2, help="cross-fitting folds (>= 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold split")
    parser.add_argument("--changed-data", dest="changed_data", default="error", choices=("error", "recompute"))
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2 (the users scored are never fitted on)")
    sys.path.insert(0, str(REPO))
    rows = []
    for path in args.checkpoints:
        rows += measure(path, args.k, args.folds, args.seed, args.changed_data)
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    from report_rows import finish

    return finish(rows, markdown, args.out)


if __name__ == "__main__":
    sys.exit(main())
