"""Fusion ablation of RLMultimodalRec with its tuned config (docs/RESULTS.md, section 4).

    python bench/ablation.py [--dataset movielens-mm] [--tuned results/tuned/RLMultimodalRec-movielens-mm.yaml]
                             [--seeds 2020] [--out results/ablation]

One `compare` per variant (resumable), all with the same tuned yaml, seeds and evaluator;
prints a Markdown table of validation and test Recall@20 / NDCG@20. Variants: the fusion
switch (gate, sum, concat, image, text, none), and the default with each extension off.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recbole_rlmm.experiment.compare import compare
from recbole_rlmm.runner import silence_recbole_warnings

VARIANTS: dict[str, dict[str, object]] = {
    "gate (default)": {},
    "sum": {"fusion": "sum"},
    "concat": {"fusion": "concat"},
    "image only": {"fusion": "image"},
    "text only": {"fusion": "text"},
    "none (ID only)": {"fusion": "none"},
    "gate, no item graph": {"item_graph_k": 0},
    "gate, no edge dropout": {"edge_dropout": 0.0},
    "gate, content_scale 1.0": {"content_scale": 1.0},
    "gate, scalar gate": {"gate_type": "scalar"},
    "gate, late fusion": {"fusion_stage": "late"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens-mm")
    parser.add_argument("--tuned", default=None, help="tuned yaml for RLMultimodalRec")
    parser.add_argument("--config_files", nargs="*", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020])
    parser.add_argument("--out", type=Path, default=Path("results/ablation"))
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run")
    args = parser.parse_args()
    silence_recbole_warnings()
    tuned = args.tuned or f"results/tuned/RLMultimodalRec-{args.dataset}.yaml"
    rows = []
    for name, overrides in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        slug = name.split(" (")[0].replace(", ", "-").replace(" ", "_")
        table = compare(
            args.dataset,
            ["RLMultimodalRec"],
            args.seeds,
            config_files=args.config_files,
            model_configs={"RLMultimodalRec": tuned},
            out=args.out / args.dataset / slug,
            overrides=overrides,
        )
        rows.append((name, table.iloc[0]))
    cols = [c for c in rows[0][1].index if c.startswith(("valid", "test"))]
    print("| variant | " + " | ".join(cols) + " |")
    print("| --- |" + " ---: |" * len(cols))
    for name, row in rows:
        print(f"| {name} | " + " | ".join(str(row[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
