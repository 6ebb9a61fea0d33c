"""Wall time of ``recommend`` (top-20 for N users) and a check that its lists equal the ranking
of RecBole's own full-sort evaluator for those users.

    python bench/recommend_timing.py CHECKPOINT [--users N] [--k 20] [--device cpu]

The users are N test users (default 1000, all of them when there are fewer), drawn with a
fixed seed. Times: loading the checkpoint (dataset and dataloaders included), the first
``recommend`` call (includes the model's forward pass, whose vectors the model then caches as
RecBole's full-sort evaluation does) and a second call. Training and validation items are
excluded, as the evaluator's test-split mask does; the check compares item for item
(:mod:`recbole_rlmm.inference.check`). Exit status 1 when the check fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import recbole_rlmm  # noqa: F401  (applies the RecBole compatibility patches)
from recbole_rlmm.errors import UserError
from recbole_rlmm.inference.check import compare_with_evaluator
from recbole_rlmm.inference.recommender import Recommender


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--users", type=int, default=1000, help="test users to recommend for")
    parser.add_argument("--k", type=int, default=20, help="items per user")
    parser.add_argument(
        "--batch-size", dest="batch_size", type=int, default=None, help="users scored at once"
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0, help="seed of the user draw")
    parser.add_argument("--trust-checkpoint", dest="trust_checkpoint", action="store_true")
    parser.add_argument(
        "--changed-data", dest="changed_data", choices=("error", "recompute"), default="error"
    )
    args = parser.parse_args()
    if args.users < 1:
        parser.error("--users must be at least 1")
    try:
        start = time.perf_counter()
        rec = Recommender.from_checkpoint(
            args.checkpoint, args.trust_checkpoint, args.changed_data, args.device
        )
        load_s = time.perf_counter() - start
        test_users = np.unique(rec.loaded.test_data._dataset.inter_feat[rec.uid_field].numpy())
        rng = np.random.default_rng(args.seed)
        chosen = np.sort(
            rng.choice(test_users, size=min(args.users, len(test_users)), replace=False)
        )
        tokens = [rec.user_tokens[u - 1] for u in chosen]
        times = []
        for _ in range(2):
            start = time.perf_counter()
            frame = rec.recommend(tokens, args.k, exclude_valid=True, batch_size=args.batch_size)
            times.append(time.perf_counter() - start)
        check = compare_with_evaluator(
            rec, args.k, "test", users=chosen, batch_size=args.batch_size
        )
    except UserError as exc:
        print(f"recommend_timing.py: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{rec.model_name} on {rec.config['dataset']} ({rec.n_users} users, {rec.n_items} items), "
        f"device {rec.device}, {torch.get_num_threads()} torch threads"
    )
    print(f"load checkpoint + data: {load_s:.2f} s")
    print(
        f"recommend top-{args.k} for {len(tokens)} users ({len(frame)} rows, batch "
        f"{min(args.batch_size or rec.batch_size(), len(tokens))} users): first call {times[0]:.3f} s "
        f"(model forward included), second call {times[1]:.3f} s "
        f"({1000 * times[1] / len(tokens):.3f} ms per user)"
    )
    print(("OK: " if check.ok else "MISMATCH: ") + check.summary())
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
