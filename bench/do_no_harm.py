"""Do no harm: RLMultimodalRec with its shipped defaults against RecBole's LightGCN, everywhere.

    python bench/do_no_harm.py [--seeds 2020 2021 2022] [--out results/cold_curve] [--data /tmp/rlmm-data]
                               [--datasets movielens-mm scientific movielens-noise family] [--shares ...]

For every dataset we have (the embedded movielens-mm, Amazon Scientific, movielens-noise with
pure-noise features, and every member of the cold-share family of ``bench/build_cold.py --family``
on both bases), trains LightGCN and RLMultimodalRec with their shipped defaults through
``recbole-rlmm compare`` (RecBole's dataloaders, sampler, trainer and full-ranking evaluator;
resumable: finished runs are reused, so the family runs of ``bench/cold_curve.py train`` with the
same ``--out`` are not trained again), and prints, per dataset, the ratio of RLMultimodalRec's
mean validation Recall@20 to LightGCN's over the seeds.

It exits with status 1 when, on some dataset, RLMultimodalRec is below LightGCN beyond the seed
spread: its mean is lower than LightGCN's by more than the sum of the two standard deviations.
Validation metrics decide (they are what a user can see before testing); the test ratio is
printed too. Missing data is built first (``build_scientific.py``, ``build_noise.py``,
``build_cold.py --family``); one training at a time, one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from build_cold import SHARES, family_name  # noqa: E402

MODELS = ("LightGCN", "RLMultimodalRec")
METRIC = "recall@20"


def _ensure_data(data: Path, datasets: list[str], shares: list[int]) -> None:
    def run(*args: str) -> None:
        subprocess.run([sys.executable, *args, "--out", str(data)], check=True, cwd=REPO)

    if ("scientific" in datasets or "family" in datasets) and not (data / "scientific" / "scientific.text.npy").is_file():
        run("bench/build_scientific.py")
    if "movielens-noise" in datasets and not (data / "movielens-noise" / "movielens-noise.text.npy").is_file():
        run("bench/build_noise.py")
    if "family" in datasets:
        missing = [s for s in shares for base in ("movielens", "scientific") if not (data / family_name(base, s)).is_dir()]
        if missing:
            run("bench/build_cold.py", "--family", "--shares", *map(str, sorted(set(missing))))


def _members(datasets: list[str], shares: list[int]) -> list[tuple[str, list[str]]]:
    """(dataset, extra compare arguments) of every dataset to check."""
    out = []
    for name in datasets:
        if name == "movielens-mm":
            out.append((name, []))
        elif name == "scientific":
            out.append((name, ["--config_files", str(REPO / "bench" / "configs" / "scientific.yaml")]))
        elif name == "movielens-noise":
            out.append((name, []))
        elif name == "family":
            out += [(family_name(base, s), []) for base in ("movielens", "scientific") for s in shares]
    return out


def train(name: str, extra: list[str], args: argparse.Namespace) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    data_path = [] if name == "movielens-mm" else [f"data_path={args.data}"]
    for model in MODELS:
        cmd = [
            sys.executable, "-m", "recbole_rlmm.cli", "compare", "-d", name, "-m", model,
            "--seeds", *map(str, args.seeds), "--out", str(args.out / name / model), "--threads", "1",
            *extra, "--set", "log_dir=None", "tensorboard_dir=None", *data_path,
        ]
        subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def scores(folder: Path, seeds: list[int]) -> tuple[list[float], list[float]]:
    """Validation and test Recall@20 of the runs of ``seeds`` in a compare folder."""
    valid, test = [], []
    for seed in seeds:
        path = next(iter(folder.glob(f"runs/*-{seed}.json")), None)
        if path is None:
            continue
        result = json.loads(path.read_text())["result"]
        valid.append(float(result["best_valid_result"][METRIC]))
        test.append(float(result["test_result"][METRIC]))
    return valid, test


def verdict(ours: list[float], base: list[float]) -> tuple[float, bool]:
    """(ratio of the means, harmed): harmed when our mean is below the baseline's by more than
    the sum of the two standard deviations."""
    mo, mb = float(np.mean(ours)), float(np.mean(base))
    spread = float(np.std(ours)) + float(np.std(base))
    ratio = mo / mb if mb > 0 else float("inf") if mo > 0 else 1.0
    return ratio, mo < mb - spread


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--out", type=Path, default=Path("results/cold_curve"))
    parser.add_argument("--data", type=Path, default=Path("/tmp/rlmm-data"))
    parser.add_argument("--datasets", nargs="+", default=["movielens-mm", "scientific", "movielens-noise", "family"],
                        choices=["movielens-mm", "scientific", "movielens-noise", "family"])
    parser.add_argument("--shares", nargs="+", type=int, default=list(SHARES))
    parser.add_argument("--no-train", dest="no_train", action="store_true", help="report the finished runs only")
    args = parser.parse_args()
    args.out = args.out.resolve()
    if not args.no_train:
        _ensure_data(args.data, args.datasets, args.shares)
    rows, harmed = [], []
    for name, extra in _members(args.datasets, args.shares):
        if not args.no_train:
            print(f"== {name}", flush=True)
            train(name, extra, args)
        (rv, rt), (lv, lt) = (scores(args.out / name / m, args.seeds) for m in ("RLMultimodalRec", "LightGCN"))
        if not rv or not lv:
            rows.append(f"| {name} | | | | | not run |")
            continue
        ratio, hurt = verdict(rv, lv)
        test_ratio = float(np.mean(rt)) / float(np.mean(lt)) if np.mean(lt) > 0 else float("inf")
        if hurt:
            harmed.append(name)
        rows.append(
            f"| {name} | {np.mean(lv):.4f} ± {np.std(lv):.4f} | {np.mean(rv):.4f} ± {np.std(rv):.4f} | "
            f"{ratio:.3f} | {test_ratio:.3f} | {'HARM' if hurt else 'ok'} ({len(rv)}/{len(lv)} seeds) |"
        )
    print("\n| dataset | LightGCN valid R@20 | RLMultimodalRec valid R@20 | valid x | test x | verdict |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    print("\n".join(rows))
    if harmed:
        print(f"\nRLMultimodalRec is below LightGCN beyond the seed spread on: {', '.join(harmed)}")
        return 1
    print("\nRLMultimodalRec is at or above LightGCN (within the seed spread) on every dataset.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
