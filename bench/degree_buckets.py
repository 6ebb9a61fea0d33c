"""Test (or validation) Recall@K per training degree of the target item, from checkpoints.

    python bench/degree_buckets.py CHECKPOINT [CHECKPOINT ...] [--split test] [--k 20] [--labels ...]

Each checkpoint is a best-model file written by ``run_recbole_rlmm`` / ``compare`` (it holds
its own config, so the dataset and model are rebuilt exactly as trained; it is loaded without
unpickling anything, and refused if the data files changed since). Ranking uses
RecBole's own full-sort dataloader and history masking, as the evaluator does; hits are then
grouped by how many training interactions the target item has. Used in docs/RESULTS.md to
see where two models' test Recall@20 differ.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

import recbole_rlmm  # noqa: F401  (applies the RecBole compatibility patches)
from recbole_rlmm.errors import UserError
from recbole_rlmm.runner import load_for_inference, silence_recbole_warnings

BUCKETS = [(0, 2), (3, 5), (6, 10), (11, 25), (26, 10**9)]


def bucket_name(lo: int, hi: int) -> str:
    return f"{lo}+" if hi >= 10**9 else f"{lo}-{hi}"


@torch.no_grad()
def hits_by_degree(checkpoint: Path, split: str, k: int) -> tuple[str, dict[str, list[float]]]:
    loaded = load_for_inference(checkpoint, device="cpu")
    config, model, dataset = loaded.config, loaded.model, loaded.dataset
    train, valid, test = loaded.train_data, loaded.valid_data, loaded.test_data
    degree = np.bincount(train._dataset.inter_feat[dataset.iid_field].numpy(), minlength=dataset.item_num)
    out: dict[str, list[float]] = defaultdict(list)
    for interaction, history, positive_u, positive_i in test if split == "test" else valid:
        scores = model.full_sort_predict(interaction).view(-1, dataset.item_num)
        scores[:, 0] = -float("inf")
        if history is not None:
            scores[history] = -float("inf")
        top = scores.topk(k, dim=1).indices
        hit = (top[positive_u] == positive_i.unsqueeze(1)).any(dim=1)
        for i, h in zip(positive_i.tolist(), hit.tolist(), strict=True):
            lo, hi = next(b for b in BUCKETS if b[0] <= degree[i] <= b[1])
            out[bucket_name(lo, hi)].append(float(h))
            out["all"].append(float(h))
    return f"{config['model']} seed {config['seed']}", out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--split", choices=["valid", "test"], default="test")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--labels", nargs="*", default=None, help="one row label per checkpoint")
    args = parser.parse_args()
    if args.labels and len(args.labels) != len(args.checkpoints):
        parser.error(f"--labels: {len(args.labels)} labels for {len(args.checkpoints)} checkpoints")
    silence_recbole_warnings()
    try:
        rows = [hits_by_degree(path, args.split, args.k) for path in args.checkpoints]
    except UserError as exc:
        raise SystemExit(f"degree_buckets.py: error: {exc}") from None
    if args.labels:
        rows = [(label, out) for label, (_, out) in zip(args.labels, rows, strict=True)]
    names = ["all"] + [bucket_name(lo, hi) for lo, hi in BUCKETS]
    _, first = rows[0]
    print(
        f"{args.split}: share of target items ranked in the top {args.k} (= Recall@{args.k} when "
        "every user has one target), by the target item's number of training interactions"
    )
    print("| run | " + " | ".join(f"{n} (n={len(first[n])})" for n in names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for label, out in rows:
        print(f"| {label} | " + " | ".join(f"{np.mean(out[n]):.4f}" for n in names) + " |")


if __name__ == "__main__":
    main()
