"""Robustness to missing modalities: test Recall@20 as a share of the items lose their images
(then, separately, their texts), at training and at test time.

    python bench/missing_modalities.py [--rates 0 0.25 0.5 0.75] [--models RLMultimodalRec FREEDOM]
        [--seeds 2020] [--data /tmp/rlmm-data] [--out results/missing] [--png docs/missing_modalities.png]

For each modality and rate, a copy of ``dataset/movielens-mm`` is written to
``<data>/movielens-mm-no-<modality>-<pct>`` (one shared ``movielens-mm-copy`` for 0%) in which a
seeded random ``rate`` share of the items that have the modality get an all-zero row (= missing,
the loader's rule); interactions and splits are unchanged. Every model is trained and tested on
each copy with ``recbole-rlmm compare`` (resumable: finished runs are reused), with its shipped
defaults and the dataset's schedule. The script prints a Markdown table and draws test Recall@20 against the rate.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mm_variant import REPO, write_variant

from recbole_rlmm.data.format import present_rows


def build(data: Path, modality: str, rate: float, seed: int = 0) -> str:
    # rate 0 is the same copy for every modality: trained once, its runs reused
    name = "movielens-mm-copy" if rate <= 0 else f"movielens-mm-no-{modality}-{round(rate * 100)}"

    def drop(m: str, real: np.ndarray) -> np.ndarray:
        if m != modality or rate <= 0:
            return real
        x = real.copy()
        have = np.flatnonzero(present_rows(x))
        x[
            np.random.default_rng(seed).choice(
                have, size=int(round(rate * len(have))), replace=False
            )
        ] = 0
        return x

    write_variant(
        data,
        name,
        drop,
        f"bench/missing_modalities.py: movielens-mm with {rate:.0%} of the items' {modality} removed",
    )
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75])
    parser.add_argument("--modalities", nargs="+", default=["image", "text"])
    parser.add_argument("--models", nargs="+", default=["RLMultimodalRec", "FREEDOM"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020])
    parser.add_argument("--data", type=Path, default=Path("/tmp/rlmm-data"))
    parser.add_argument("--out", type=Path, default=REPO / "results" / "missing")
    parser.add_argument("--png", type=Path, default=REPO / "docs" / "missing_modalities.png")
    args = parser.parse_args()
    rows = []
    for modality in args.modalities:
        for rate in args.rates:
            name = build(args.data, modality, rate)
            out = args.out / name
            cmd = [
                sys.executable,
                "-m",
                "recbole_rlmm.cli",
                "compare",
                "-d",
                name,
                "--models",
                *args.models,
                "--seeds",
                *map(str, args.seeds),
                "--out",
                str(out),
                "--set",
                f"data_path={args.data}",
                "log_dir=None",
                "tensorboard_dir=None",
            ]
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            for run in json.loads((out / "results.json").read_text())["runs"]:
                rows.append(
                    (
                        modality,
                        rate,
                        run["model"],
                        run["seed"],
                        run["test_result"]["recall@20"],
                        run["best_valid_result"]["recall@20"],
                    )
                )
    print("| missing | share | model | seed | valid R@20 | test R@20 |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for modality, rate, model, seed, test, valid in rows:
        print(f"| {modality} | {rate:.0%} | {model} | {seed} | {valid:.4f} | {test:.4f} |")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("PNG skipped: matplotlib is missing (pip install 'recbole-rlmm[plot]')")
        return
    fig, axes = plt.subplots(
        1, len(args.modalities), figsize=(5 * len(args.modalities), 3.6), sharey=True
    )
    for ax, modality in zip(np.atleast_1d(axes), args.modalities, strict=True):
        for model in args.models:
            pts = sorted((r[1], r[4]) for r in rows if r[0] == modality and r[2] == model)
            rates = sorted({p[0] for p in pts})
            means = [np.mean([p[1] for p in pts if p[0] == x]) for x in rates]
            ax.plot([100 * x for x in rates], means, marker="o", label=model)
        ax.set_title(f"items without their {modality}")
        ax.set_xlabel("% of items missing the modality (train and test)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("test Recall@20 (movielens-mm)")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png, dpi=120)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
