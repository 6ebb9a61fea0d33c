"""Cold-start metrics from checkpoints: ranking among the cold items only, and in full ranking.

    python bench/cold_start.py CHECKPOINT [CHECKPOINT ...] [--k 20] [--labels ...]

For each checkpoint (written by ``run``/``compare`` on a dataset whose valid/test items never
occur in training, e.g. ``movielens-cold`` from ``bench/build_cold.py``), for the valid and the
test split: Recall@K and NDCG@K when every user's items of that split are ranked

* among the items of that split only ("cold-only", the protocol of CLCRec and GAR), and
* among all items, training items of the user masked ("full", RecBole's evaluator's ranking).

Scores come from the model's own ``full_sort_predict`` on RecBole's evaluation dataloaders;
checkpoints load without unpickling anything. Equal scores are ordered at random, a new seeded
draw for every user (``--tie-seed``), not by item id: RecBole numbers items in order of first
appearance in the files, so breaking ties by id would rank the cold items that appear early
(the popular ones) first and credit a model that cannot tell cold items apart (Pop, say).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

import recbole_rlmm  # noqa: F401  (RecBole patches)
from recbole_rlmm.errors import UserError
from recbole_rlmm.runner import load_for_inference, silence_recbole_warnings


def _tie_broken(raw: torch.Tensor, tie_break: torch.Tensor) -> torch.Tensor:
    """Scores with the same order as ``raw`` where ``raw`` differs, and ordered by
    ``tie_break`` (values in [0, 1)) where ``raw`` is equal: rank among the row's values
    (equal values share a rank, ranks of different values differ by >= 1) plus the tie break."""
    ordered = raw.sort(dim=1).values
    rank = torch.searchsorted(ordered.contiguous(), raw.contiguous()).double()
    return rank + tie_break


def _metrics(scores: torch.Tensor, positives: list[np.ndarray], k: int) -> tuple[list[float], list[float]]:
    top = scores.topk(k, dim=1).indices.numpy()
    recalls, ndcgs = [], []
    for row, pos in zip(top, positives, strict=True):
        hits = np.isin(row, pos)
        recalls.append(hits.sum() / len(pos))
        dcg = (hits / np.log2(np.arange(2, k + 2))).sum()
        idcg = (1.0 / np.log2(np.arange(2, min(len(pos), k) + 2))).sum()
        ndcgs.append(dcg / idcg)
    return recalls, ndcgs


@torch.no_grad()
def cold_metrics(checkpoint: Path, k: int, tie_seed: int = 0) -> tuple[str, dict[str, float]]:
    loaded = load_for_inference(checkpoint, device="cpu")
    model, dataset = loaded.model, loaded.dataset
    ties = torch.Generator().manual_seed(tie_seed)
    iid, uid = dataset.iid_field, dataset.uid_field
    train_items = set(loaded.train_data._dataset.inter_feat[iid].numpy().tolist())
    out: dict[str, float] = {}
    for split, data in (("valid", loaded.valid_data), ("test", loaded.test_data)):
        split_items = np.unique(data._dataset.inter_feat[iid].numpy())
        assert not train_items & set(split_items.tolist()), "this split holds warm items"
        cold_only = torch.full((dataset.item_num,), True)
        cold_only[torch.from_numpy(split_items)] = False  # True = excluded from cold-only ranking
        per = {"cold": ([], []), "full": ([], [])}
        for interaction, history, positive_u, positive_i in data:
            raw = model.full_sort_predict(interaction).view(-1, dataset.item_num)
            scores = _tie_broken(raw, torch.rand(raw.shape, generator=ties, dtype=torch.float64))
            scores[:, 0] = -math.inf
            users = interaction[uid].numpy()
            positives = [positive_i[positive_u == j].numpy() for j in range(len(users))]
            full = scores.clone()
            if history is not None:
                full[history] = -math.inf
            cold = scores.masked_fill(cold_only, -math.inf)
            for name, s in (("full", full), ("cold", cold)):
                r, n = _metrics(s, positives, k)
                per[name][0].extend(r)
                per[name][1].extend(n)
        for name, (r, n) in per.items():
            out[f"{split} {name} recall@{k}"] = float(np.mean(r))
            out[f"{split} {name} ndcg@{k}"] = float(np.mean(n))
    return f"{loaded.config['model']} seed {loaded.config['seed']}", out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--labels", nargs="*", default=None)
    parser.add_argument("--tie-seed", dest="tie_seed", type=int, default=0, help="seed of the tie order")
    args = parser.parse_args()
    silence_recbole_warnings()
    try:
        rows = [cold_metrics(path, args.k, args.tie_seed) for path in args.checkpoints]
    except UserError as exc:
        raise SystemExit(f"cold_start.py: error: {exc}") from None
    if args.labels:
        rows = [(label, out) for label, (_, out) in zip(args.labels, rows, strict=True)]
    keys = list(rows[0][1])
    print("| run | " + " | ".join(keys) + " |")
    print("| --- |" + " ---: |" * len(keys))
    for label, out in rows:
        print(f"| {label} | " + " | ".join(f"{out[key]:.4f}" for key in keys) + " |")


if __name__ == "__main__":
    main()
